"""Classification (定性): which matter (事项) an incident is, from the source's own category code.

Routing's step 2: the bundle's source mappings (来源编码映射) turn a 12345 诉求分类,
a 数字城管 大类-小类 or a grid worker's 事件类型 into a matter; no mapping → triage
``uncategorised``. 来源编码 → 事项；无映射则转人工（无法定性）。Pure code: no I/O. 纯计算。
"""

from __future__ import annotations

import re

from shared.events import IncidentReported
from shared.jurisdiction import JurisdictionSnapshot, Matter

__all__ = ["cityops_key_candidates", "classify", "matter_for_cityops", "matter_for_source"]


def cityops_key_candidates(code: str) -> list[str]:
    """Keys to try for a 数字城管 ``major-minor`` code, most exact first. 数字城管编码候选键。

    Accepts ``01-01`` (older scheme), ``01-001`` (GB/T 47678.5-2026), ``1-1``,
    ``01/001``, ``01_001`` and run-together ``0101``/``01001``; yields the given
    form normalised, then the 2-digit and 3-digit minor forms.
    兼容旧版两位小类与 2026 版三位小类，并尝试互相转换。
    """
    raw = code.strip()
    s = re.sub(r"[\s_/.]+", "-", raw)
    if "-" in s:
        major, _, minor = s.partition("-")
    elif s.isdigit() and len(s) in (4, 5):
        major, minor = s[:2], s[2:]
    else:
        return [raw]
    if not (major.isdigit() and minor.isdigit()) or len(major) > 2 or len(minor) > 3:
        return [raw]
    major = major.zfill(2)
    number = int(minor)
    out = [raw, f"{major}-{minor.zfill(2)}"]
    if number < 100:
        out.append(f"{major}-{number:02d}")
    out.append(f"{major}-{number:03d}")
    return list(dict.fromkeys(out))


def matter_for_source(snapshot: JurisdictionSnapshot, source: str, code: str) -> str | None:
    """Matter code for a source's own category code, or ``None``. 来源编码 → 事项编码。

    ``12345``: 诉求分类 code; ``cityops``: ``major-minor`` (2- or 3-digit minor,
    see :func:`cityops_key_candidates`); ``gridworker``: 事件类型 (case-insensitive).
    """
    mapping = snapshot.source_mapping(source)
    if not mapping or code is None:
        return None
    if code in mapping:
        return mapping[code]
    if source == "cityops":
        for key in cityops_key_candidates(code):
            if key in mapping:
                return mapping[key]
        return None
    stripped = code.strip()
    if stripped in mapping:
        return mapping[stripped]
    if source == "gridworker":
        upper = stripped.upper()
        for key, matter in mapping.items():
            if key.upper() == upper:
                return matter
    return None


def matter_for_cityops(snapshot: JurisdictionSnapshot, major: str, minor: str) -> str | None:
    """Matter for a 数字城管 大类/小类 pair. 数字城管大类/小类 → 事项。"""
    return matter_for_source(snapshot, "cityops", f"{major.strip()}-{minor.strip()}")


def classify(event: IncidentReported, snapshot: JurisdictionSnapshot) -> Matter | None:
    """Step 2 (What 定性): the matter mapped from the source's category code, or ``None``. 来源编码 → 事项。"""
    code = matter_for_source(snapshot, event.source, event.category_key)
    return snapshot.matter(code) if code is not None else None
