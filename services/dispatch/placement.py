"""Placement (定位): where an incident is — routing's step 1.

The finest grid whose polygon contains the (already WGS-84) point; else the
division / grid / cell code the source sent (the finest known division that code
names or starts with); else a point that fell only in a village or township
polygon; else division names found in the address text (longest wins); else
``None`` (triage ``unlocated``). A report whose point lies in another township
than the code it carries (a grid worker reporting outside their grid) is placed
by the point and the mismatch is kept visible.
坐标落格 → 上报编码 → 坐标落村/镇 → 地址文本 → 无法定位；坐标与上报编码不在同一乡镇时按坐标定位，
并保留不一致记录。Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from shared.events import IncidentReported
from shared.jurisdiction import CODE_LENGTHS, Division, JurisdictionSnapshot
from shared.jurisdiction.limits import LEVEL_RANK
from shared.locator import LocateResult
from shared.vocabulary import DivisionLevel

__all__ = [
    "CODE_FIELDS",
    "Mismatch",
    "Placement",
    "PlacementMethod",
    "PointLookup",
    "division_name",
    "locate_event",
    "where_zh",
]

PlacementMethod = Literal["point", "code", "address"]

#: Code fields an incident may carry, in the order they are tried. 事件可能携带的区划编码字段。
CODE_FIELDS: tuple[str, ...] = ("grid_code", "cell_code", "division_code")
_FIELD_LABELS = {"grid_code": "网格编码", "cell_code": "单元网格编码", "division_code": "区划编码"}
_LEVEL_LABELS = {"grid": "网格", "village": "村/社区", "township": "乡镇/街道", "county": "区县"}
_ALL_CODE_LENGTHS: tuple[int, ...] = tuple(
    sorted({n for lengths in CODE_LENGTHS.values() for n in lengths}, reverse=True)
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The point lies in another township than the code the source sent. 坐标与上报编码乡镇不一致。"""

    code_field: str  # grid_code / cell_code / division_code
    code: str
    code_township: str | None
    point_township: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. 可序列化形式。"""
        return {
            "code_field": self.code_field,
            "code": self.code,
            "code_township": self.code_township,
            "point_township": self.point_township,
        }


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an incident is (定位结果): codes of grid/village/township/county and how it was found."""

    method: PlacementMethod
    level: DivisionLevel  # finest level found: grid / village / township
    code: str  # finest code found
    grid: str | None
    village: str | None
    township: str | None
    county: str | None
    #: point: "grid" / "village" / "township" polygon; code: the field used; address: the matched name.
    detail: str = ""
    mismatch: Mismatch | None = None

    @classmethod
    def of(cls, where: LocateResult, *, method: PlacementMethod, detail: str) -> Placement:
        """The placement of a locator answer (a point hit or a known code's chain). 由定位结果得定位。"""
        return cls(
            method=method,
            level=where.level,
            code=where.code,
            grid=where.grid,
            village=where.village,
            township=where.township,
            county=where.county,
            detail=detail,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. 可序列化形式。"""
        return {
            "method": self.method,
            "level": self.level,
            "code": self.code,
            "grid": self.grid,
            "village": self.village,
            "township": self.township,
            "county": self.county,
            "detail": self.detail,
            "mismatch": self.mismatch.to_dict() if self.mismatch else None,
        }


class PointLookup(Protocol):
    """Point lookups of one snapshot, e.g. a batch located at once (routing's memo). 坐标定位来源。"""

    @property
    def snapshot(self) -> JurisdictionSnapshot: ...

    def locate(self, lng: float, lat: float) -> LocateResult | None: ...


def _placement_from_codes(
    snapshot: JurisdictionSnapshot, code: str, method: PlacementMethod, detail: str
) -> Placement | None:
    """A placement for a known division code; ``None`` unless it reaches a township. 由已知编码得定位。"""
    result = snapshot.codes_of(code)
    if result is None or result.township is None:
        return None
    return Placement.of(result, method=method, detail=detail)


def _known_prefix(snapshot: JurisdictionSnapshot, code: str) -> Division | None:
    """The finest known division whose code equals ``code`` or is a prefix of it. 最细的已知前缀区划。

    ``330127101000`` (a township padded to 12 digits) → 330127101; a 14-digit
    数字城管 cell code → its village; an unknown grid of a known village → the village.
    """
    code = code.strip()
    if not code.isdigit():
        return None
    exact = snapshot.division(code)
    if exact is not None:
        return exact
    for n in _ALL_CODE_LENGTHS:
        if n < len(code):
            division = snapshot.division(code[:n])
            if division is not None:
                return division
    return None


def _from_code(event: IncidentReported, snapshot: JurisdictionSnapshot) -> Placement | None:
    """Step 1b: the finest division named by the codes the source sent. 按上报编码定位。"""
    best: Placement | None = None
    for name in CODE_FIELDS:
        value = getattr(event, name)
        if not value:
            continue
        division = _known_prefix(snapshot, value)
        if division is None:
            continue
        placement = _placement_from_codes(snapshot, division.code, "code", name)
        if placement is not None and (best is None or LEVEL_RANK[placement.level] < LEVEL_RANK[best.level]):
            best = placement
    return best


def _from_address(text: str | None, snapshot: JurisdictionSnapshot) -> Placement | None:
    """Step 1c: the longest division name found in the address (below county level). 地址文本匹配。"""
    if not text:
        return None
    division = snapshot.match_address(text)
    if division is None or division.level == "county":
        # The county's own name says nothing about the township: look for the longest finer name.
        division = next(
            (
                d
                for name, code in snapshot.division_names
                if name in text and (d := snapshot.division(code)) is not None and d.level != "county"
            ),
            None,
        )
    if division is None:
        return None
    return _placement_from_codes(snapshot, division.code, "address", division.name)


def _code_township(event: IncidentReported, snapshot: JurisdictionSnapshot) -> tuple[str, str, str | None] | None:
    """(field, code, township) of the first code the source sent that names a township. 上报编码所属乡镇。"""
    for name in CODE_FIELDS:
        value = getattr(event, name)
        if not value:
            continue
        division = _known_prefix(snapshot, value)
        township = snapshot.township_of(division.code) if division is not None else None
        if township is not None:
            return name, value, township
    return None


def locate_event(
    event: IncidentReported, snapshot: JurisdictionSnapshot, points: PointLookup | None = None
) -> Placement | None:
    """Step 1 (Where 定位): point in a grid → sent code → point in a village/township → address.

    Returns ``None`` when nothing places the event in a township (→ triage ``unlocated``).
    无法定位到乡镇时返回 None（转人工：无法定位）。``points`` (of ``snapshot``, e.g. routing's
    memo) answers the point lookup from its primed batch. 可由记忆化对象按批给出坐标定位结果。
    """
    by_point: Placement | None = None
    if event.location is not None:
        if points is not None and points.snapshot is snapshot:
            hit = points.locate(event.location.lng, event.location.lat)
        else:
            hit = snapshot.locate(event.location.lng, event.location.lat)
        if hit is not None and hit.township is not None:
            by_point = Placement.of(hit, method="point", detail=hit.level)
    if by_point is not None and by_point.grid is not None:
        return _with_mismatch(by_point, event, snapshot)
    by_code = _from_code(event, snapshot)
    if by_code is not None:
        if by_point is not None and by_point.township != by_code.township:
            # The point is inside a township polygon (no grid) that disagrees with the code: the point wins.
            return _with_mismatch(by_point, event, snapshot)
        return by_code
    if by_point is not None:
        return _with_mismatch(by_point, event, snapshot)
    return _from_address(event.address, snapshot)


def _with_mismatch(placement: Placement, event: IncidentReported, snapshot: JurisdictionSnapshot) -> Placement:
    """Record a sent code whose township differs from the point's. 记录编码与坐标乡镇不一致。"""
    sent = _code_township(event, snapshot)
    if sent is None or placement.township is None or sent[2] == placement.township:
        return placement
    field_name, code, township = sent
    mismatch = Mismatch(code_field=field_name, code=code, code_township=township, point_township=placement.township)
    return replace(placement, mismatch=mismatch)


def division_name(snapshot: JurisdictionSnapshot, code: str | None) -> str:
    """The division's name, else its code, else 未知. 区划名称。"""
    division = snapshot.division(code) if code else None
    return division.name if division is not None else (code or "（未知）")


def where_zh(snapshot: JurisdictionSnapshot, placement: Placement) -> str:
    """The placement in plain Chinese, for a decision's explanation. 定位说明。"""
    finest = division_name(snapshot, placement.code)
    town = division_name(snapshot, placement.township)
    if placement.method == "point":
        inner = finest if finest != town else ""
        text = f"定位：坐标落在{town}{inner}（{_LEVEL_LABELS[placement.level]} {placement.code}）"
    elif placement.method == "code":
        label = _FIELD_LABELS.get(placement.detail, placement.detail)
        text = f"定位：按上报的{label}定位到{finest}（{placement.code}，属{town}）"
    else:
        text = f"定位：地址文本匹配「{placement.detail}」（{placement.code}，属{town}）"
    if placement.mismatch is not None:
        m = placement.mismatch
        label = _FIELD_LABELS.get(m.code_field, m.code_field)
        text += (
            f"；注意：上报的{label} {m.code}（属{division_name(snapshot, m.code_township)}）"
            f"与坐标所在的{town}不一致，按坐标派遣"
        )
    return text
