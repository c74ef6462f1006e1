"""Webhook signatures and backoff (services/dispatch/forces/signing.py)."""

from __future__ import annotations

import hashlib
import hmac

from services.dispatch.forces.signing import MAX_DELAY_S, next_delay_s, sign, signature_headers, verify


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"case_id":"c1"}'
    expected = hmac.new(b"s3cret", b'1733350000.{"case_id":"c1"}', hashlib.sha256).hexdigest()
    assert sign("s3cret", 1733350000, body) == "sha256=" + expected
    assert verify("s3cret", 1733350000, body, "sha256=" + expected)
    assert not verify("s3cret", 1733350001, body, "sha256=" + expected)  # another timestamp
    assert not verify("other", 1733350000, body, "sha256=" + expected)  # another secret
    assert not verify("s3cret", 1733350000, body + b" ", "sha256=" + expected)  # a changed body


def test_headers_name_the_delivery_and_the_event() -> None:
    h = signature_headers("k", 10, b"{}", delivery_id=7, event="case.member_assigned")
    assert h["X-ZHPT-Delivery"] == "7" and h["X-ZHPT-Event"] == "case.member_assigned"
    assert h["X-ZHPT-Timestamp"] == "10" and h["X-ZHPT-Signature"] == sign("k", 10, b"{}")


def test_backoff_doubles_up_to_an_hour() -> None:
    # base 5 s: 5, 10, 20, 40 … ; 5 × 2^10 = 5120 s > 3600 s → capped.
    assert [next_delay_s(n, 5.0) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert next_delay_s(11, 5.0) == MAX_DELAY_S == 3600.0
