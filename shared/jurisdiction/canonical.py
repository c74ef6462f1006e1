"""Canonical form and digest of a bundle 规范化与摘要: importing the same bundle twice is detectable.

Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shared.jurisdiction.model import JurisdictionBundle

__all__ = ["bundle_digest", "canonical_bundle", "canonical_json"]


def _floats(value: Any) -> Any:
    """Coordinates with every number as float (``119`` and ``119.0`` hash alike). 坐标统一为浮点。"""
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def canonical_bundle(bundle: JurisdictionBundle) -> dict[str, Any]:
    """Canonical plain-data form: defaults filled, ``version`` dropped, lists whose
    order carries no meaning sorted (features by code, units by id, matters by
    code, rules by priority, condition/devolution/covers lists, dated devolution entries by township,
    matter and dates), coordinates as floats; ``effective_date`` and ``devolution_entries`` left out
    when unset or empty.

    规范化形式：补全默认值、去掉 ``version``、对无序列表排序、坐标统一为浮点。
    Geometry coordinate order and ``cohandlers`` order are kept. 坐标与协办顺序保持原样。
    """
    data = bundle.model_dump(mode="json", exclude={"version"})
    features = data["divisions"]["features"]
    for feature in features:
        if feature.get("geometry"):
            feature["geometry"]["coordinates"] = _floats(feature["geometry"]["coordinates"])
    features.sort(key=lambda f: (f["properties"]["code"], f["properties"]["level"]))
    for unit in data["units"]:
        if unit.get("covers") is not None:
            unit["covers"] = sorted(unit["covers"])
    data["units"].sort(key=lambda u: u["id"])
    # Sections added with the approval and alarm sources leave no trace while unused, so the digest
    # of a bundle without them stays what it was. 未使用的新增字段不进入规范化形式，旧数据包摘要不变。
    for matter in data["matters"]:
        if matter.get("supervise_within_days") is None:
            matter.pop("supervise_within_days", None)
    if not data.get("alarm_types"):
        data.pop("alarm_types", None)
    data["matters"].sort(key=lambda m: m["code"])
    data["devolution"] = {t: sorted(codes) for t, codes in data["devolution"].items()}
    # The dated list: absent when empty, so bundles without it keep their digest. 空时省略，旧数据包摘要不变。
    if data["effective_date"] is None:
        del data["effective_date"]
    if data["devolution_entries"]:
        data["devolution_entries"].sort(
            key=lambda e: (e["township"], e["matter"], e["effective_from"] or "", e["effective_to"] or "")
        )
    else:
        del data["devolution_entries"]
    for rule in data["rules"]:
        rule["conditions"] = {k: (sorted(v) if v is not None else None) for k, v in rule["conditions"].items()}
    data["rules"].sort(key=lambda r: (r["priority"], r["id"]))
    return data


def canonical_json(bundle: JurisdictionBundle) -> bytes:
    """Canonical JSON bytes (sorted keys, compact, UTF-8). 规范化 JSON 字节串。"""
    text = json.dumps(
        canonical_bundle(bundle), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return text.encode("utf-8")


def bundle_digest(bundle: JurisdictionBundle) -> str:
    """SHA-256 hex digest of :func:`canonical_json` — equal digests mean nothing to import.

    规范化 JSON 的 SHA-256 摘要；摘要相同即内容相同，重复导入无需变更。
    """
    return hashlib.sha256(canonical_json(bundle)).hexdigest()
