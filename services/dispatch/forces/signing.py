"""Webhook signatures and retry delays 推送签名与重试间隔 (pure).

Every delivery is a ``POST`` of a JSON body with the headers

- ``X-ZHPT-Signature: sha256=<hex>`` — HMAC-SHA256 with the subscription's secret over
  ``<timestamp>.<body>`` (the exact bytes sent), so a receiver can check who sent it and that the
  body was not changed, and reject replays of old timestamps;
- ``X-ZHPT-Timestamp`` (Unix seconds), ``X-ZHPT-Delivery`` (the delivery id: deliveries are at least
  once, a receiver drops a delivery id it has seen), ``X-ZHPT-Event`` (the event type).

A failed attempt is retried after ``base × 2^(attempt−1)`` seconds, at most an hour; after
``max_attempts`` failures the delivery is dead-lettered. 签名：HMAC-SHA256(密钥, 时间戳.正文)；
失败后按指数退避重试，超过上限进入死信。
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["MAX_DELAY_S", "SIGNATURE_HEADER", "next_delay_s", "sign", "signature_headers", "verify"]

SIGNATURE_HEADER = "X-ZHPT-Signature"
#: The longest wait between two attempts 最长重试间隔.
MAX_DELAY_S = 3600.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``<timestamp>.<body>``). 计算签名。"""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is :func:`sign` of these (constant-time compare). 校验签名。"""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def signature_headers(secret: str, timestamp: int, body: bytes, *, delivery_id: int, event: str) -> dict[str, str]:
    """The headers of one delivery. 一次推送的请求头。"""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "X-ZHPT-Timestamp": str(timestamp),
        "X-ZHPT-Delivery": str(delivery_id),
        "X-ZHPT-Event": event,
    }


def next_delay_s(attempts: int, base_s: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: ``base × 2^(attempts−1)``, at most an hour."""
    return min(MAX_DELAY_S, base_s * 2 ** max(0, attempts - 1))
