"""Routing (派遣路由): which unit handles an incident, by when, and why.

A *pure* module: no I/O, no clock (``now`` is passed in), no database. It
implements the five steps of ``shared/domain/jurisdiction.md`` in order:
纯函数模块（无 I/O、无时钟、无数据库），按 jurisdiction.md 的五个步骤依次决策：

1. **Where 定位** — the finest grid whose polygon contains the (already WGS-84)
   point; else the division / grid / cell code the source sent (the finest known
   division that code names or starts with); else a point that fell only in a
   village or township polygon; else division names found in the address text
   (longest wins); else triage ``unlocated``. A report whose point lies in
   another township than the code it carries (a grid worker reporting outside
   their grid) is routed by the point and the mismatch is kept visible.
   坐标落格 → 上报编码 → 坐标落村/镇 → 地址文本 → 转人工（无法定位）；
   坐标与网格员所属网格不在同一乡镇时按坐标派遣，并保留不一致记录。
2. **What 定性** — the source's own category code → matter via the bundle's
   source mappings; no mapping → triage ``uncategorised``. 来源编码 → 事项。
3. **Override rules 派遣规则** — first matching rule by priority; the rule id
   and the rule-set version are recorded. 第一条命中的规则，记录规则 id 与版本。
4. **Default by jurisdiction 属地默认** — devolved (下放) → the township's unit
   for the matter's township function; not devolved → the stationed agency
   (派驻机构) of the holding department covering the township; none → the
   county department itself (吹哨报到). A unit that does not exist → triage
   ``no_unit``; never an exception. 单位不存在则转人工，绝不抛异常。
5. **Deadline 时限** — matter deadline for the urgency (a rule's
   ``deadline_hours`` overrides it), in working or natural time by the matter's
   basis (``critical`` always natural), plus the 签收 deadline (1 working day)
   and the 退单 window (2 working days). 办结期限、签收期限、退单时限。

:func:`candidates` gives the ordered list of units that may handle the case
(rule unit, then the jurisdiction chain); ``exclude_units`` (units that already
rejected the case, 退单单位) are skipped and the next candidate is taken.
候选单位有序列表；已退单单位跳过，取下一候选。

Every :class:`RoutingDecision` carries a plain-Chinese ``explanation_zh`` and a
structured ``explanation`` dict, so a dispatcher can see and an auditor can
replay why a case went where it went. 每个决策都有中文说明与结构化说明，可审计、可回放。
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

import numpy as np

from services.dispatch.deadlines import DeadlineFacts, deadline_facts, time_basis_for
from shared.calendar import SHANGHAI, WorkingCalendar
from shared.events import IncidentReported
from shared.jurisdiction import (
    CODE_LENGTHS,
    Division,
    JurisdictionSnapshot,
    Matter,
    Rule,
    RuleFacts,
    Unit,
)
from shared.locator import LocateResult

__all__ = [
    "Candidate",
    "DecidedBy",
    "Mismatch",
    "Outcome",
    "Placement",
    "PlacementMethod",
    "RoutingDecision",
    "RoutingMemo",
    "TriageReason",
    "candidates",
    "classify",
    "locate_event",
    "route",
    "rule_facts",
]

Outcome = Literal["dispatch", "triage", "self_handled"]
TriageReason = Literal["unlocated", "uncategorised", "no_unit", "no_candidate_left"]
DecidedBy = Literal["rule", "devolved", "stationed_agency", "county_department"]
PlacementMethod = Literal["point", "code", "address"]

#: Code fields an incident may carry, in the order they are tried. 事件可能携带的区划编码字段。
_CODE_FIELDS: tuple[str, ...] = ("grid_code", "cell_code", "division_code")
_FIELD_LABELS = {"grid_code": "网格编码", "cell_code": "单元网格编码", "division_code": "区划编码"}
_LEVEL_LABELS = {"grid": "网格", "village": "村/社区", "township": "乡镇/街道", "county": "区县"}
_DECIDED_LABELS: dict[str, str] = {
    "rule": "派遣规则",
    "devolved": "属地下放",
    "stationed_agency": "派驻机构",
    "county_department": "县级部门",
}
_TRIAGE_LABELS: dict[str, str] = {
    "unlocated": "无法定位",
    "uncategorised": "无法定性（来源分类未映射到事项）",
    "no_unit": "承办单位不存在",
    "no_candidate_left": "候选单位均已退单",
}
_BASIS_LABELS = {"working": "工作时", "natural": "自然时"}
_URGENCY_LABELS = {"normal": "一般件", "urgent": "紧急件", "critical": "特急件"}
_ALL_CODE_LENGTHS: tuple[int, ...] = tuple(
    sorted({n for lengths in CODE_LENGTHS.values() for n in lengths}, reverse=True)
)


# --------------------------------------------------------------------------- memo 记忆化


class RoutingMemo:
    """Memoised pure lookups of one snapshot and calendar, shared by many :func:`route` calls.

    同一快照与日历下纯查询的记忆化（供多次 :func:`route` 调用共享）：坐标落格（按批向量化）、
    规则匹配、候选链、时限计算与时间格式化。Every cached value is what the uncached call
    returns (the functions are pure, the snapshot and the calendar immutable), so a decision
    is the same with or without a memo. Tables are bounded (cleared when full).
    缓存值与直接调用结果相同；各表有上限，满则清空。

    :meth:`prime_points` locates a whole batch of points at once
    (:meth:`shared.locator.Locator.locate_many`, the same answers as point by point).
    一批坐标一次向量化定位（结果与逐点定位相同）。
    """

    __slots__ = (
        "_candidates",
        "_classified",
        "_deadlines",
        "_fmt",
        "_points",
        "_rules",
        "_where",
        "calendar",
        "snapshot",
    )

    #: Entries per table before it is cleared. 每张表的条目上限。
    LIMIT = 4096
    #: Located points kept (several batches in flight). 保留的已定位坐标数（多个批次同时在途）。
    POINTS_LIMIT = 16_384

    def __init__(self, snapshot: JurisdictionSnapshot, calendar: WorkingCalendar) -> None:
        self.snapshot = snapshot
        self.calendar = calendar
        self._points: dict[tuple[float, float], LocateResult | None] = {}
        self._rules: dict[RuleFacts, Rule | None] = {}
        self._candidates: dict[tuple[str, str, str | None], tuple[Candidate, ...]] = {}
        self._classified: dict[tuple[str, str], Matter | None] = {}
        self._deadlines: dict[tuple[datetime, tzinfo | None, float, str], DeadlineFacts] = {}
        self._fmt: dict[datetime, str] = {}
        self._where: dict[Placement, str] = {}

    def serves(self, snapshot: JurisdictionSnapshot, calendar: WorkingCalendar) -> bool:
        """Whether this memo was built for ``snapshot`` and ``calendar``. 是否属于该快照与日历。"""
        return self.snapshot is snapshot and self.calendar is calendar

    def _put(self, table: dict[Any, Any], key: Hashable, value: Any) -> None:
        if len(table) >= self.LIMIT:
            table.clear()
        table[key] = value

    def prime_points(self, points: Sequence[tuple[float, float]]) -> None:
        """Locate ``(lng, lat)`` points in one vectorised query, for :meth:`locate`. 向量化定位一批坐标。"""
        if not points:
            return
        if len(self._points) + len(points) > self.POINTS_LIMIT:
            self._points = {}
        lngs = np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points))
        lats = np.fromiter((p[1] for p in points), dtype=np.float64, count=len(points))
        hits = self.snapshot.locator.locate_many(lngs, lats)
        self._points.update(zip(points, hits, strict=True))

    def locate(self, lng: float, lat: float) -> LocateResult | None:
        """:meth:`JurisdictionSnapshot.locate`, from the primed batch when there. 坐标定位。"""
        key = (lng, lat)
        if key in self._points:
            return self._points[key]
        return self.snapshot.locate(lng, lat)

    def classify(self, source: str, category_key: str) -> Matter | None:
        """Step 2 for a source and category key. 定性（记忆化）。"""
        key = (source, category_key)
        try:
            return self._classified[key]
        except KeyError:
            pass
        code = self.snapshot.matter_for_source(source, category_key)
        found = self.snapshot.matter(code) if code is not None else None
        self._put(self._classified, key, found)
        return found

    def first_matching_rule(self, facts: RuleFacts) -> Rule | None:
        """:meth:`JurisdictionSnapshot.first_matching_rule`. 第一条命中的规则（记忆化）。"""
        try:
            return self._rules[facts]
        except KeyError:
            pass
        rule = self.snapshot.first_matching_rule(facts)
        self._put(self._rules, facts, rule)
        return rule

    def candidates(self, matter: Matter, township: str, rule: Rule | None) -> tuple[Candidate, ...]:
        """:func:`_candidates` (rule unit, then the jurisdiction chain). 候选列表（记忆化）。"""
        key = (matter.code, township, rule.id if rule is not None else None)
        try:
            return self._candidates[key]
        except KeyError:
            pass
        listed = tuple(_candidates(self.snapshot, matter, township, rule))
        self._put(self._candidates, key, listed)
        return listed

    def deadline_facts(self, now: datetime, hours: float, basis: Literal["working", "natural"]) -> DeadlineFacts:
        """Step 5's calendar arithmetic from ``now`` (:func:`deadlines.deadline_facts`). 时限计算（记忆化）。"""
        key = (now, now.tzinfo, hours, basis)
        try:
            return self._deadlines[key]
        except KeyError:
            pass
        facts = deadline_facts(self.calendar, now, hours, basis)
        self._put(self._deadlines, key, facts)
        return facts

    def fmt(self, moment: datetime) -> str:
        """:func:`_fmt`. 时间格式化（记忆化）。"""
        try:
            return self._fmt[moment]
        except KeyError:
            pass
        text = _fmt(moment)
        self._put(self._fmt, moment, text)
        return text

    def where_zh(self, placement: Placement) -> str:
        """:func:`_where_zh`. 定位说明（记忆化）。"""
        try:
            return self._where[placement]
        except KeyError:
            pass
        text = _where_zh(self.snapshot, placement)
        self._put(self._where, placement, text)
        return text


# --------------------------------------------------------------------------- placement 定位


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
    level: str  # finest level found: grid / village / township
    code: str  # finest code found
    grid: str | None
    village: str | None
    township: str | None
    county: str | None
    #: point: "grid" / "village" / "township" polygon; code: the field used; address: the matched name.
    detail: str = ""
    mismatch: Mismatch | None = None

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


def _placement_from_codes(
    snapshot: JurisdictionSnapshot, code: str, method: PlacementMethod, detail: str
) -> Placement | None:
    """A placement for a known division code; ``None`` unless it reaches a township. 由已知编码得定位。"""
    result = snapshot.codes_of(code)
    if result is None or result.township is None:
        return None
    return Placement(
        method=method,
        level=result.level,
        code=result.code,
        grid=result.grid,
        village=result.village,
        township=result.township,
        county=result.county,
        detail=detail,
    )


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
    rank = {"grid": 0, "village": 1, "township": 2, "county": 3}
    for name in _CODE_FIELDS:
        value = getattr(event, name)
        if not value:
            continue
        division = _known_prefix(snapshot, value)
        if division is None:
            continue
        placement = _placement_from_codes(snapshot, division.code, "code", name)
        if placement is not None and (best is None or rank[placement.level] < rank[best.level]):
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
    for name in _CODE_FIELDS:
        value = getattr(event, name)
        if not value:
            continue
        division = _known_prefix(snapshot, value)
        township = snapshot.township_of(division.code) if division is not None else None
        if township is not None:
            return name, value, township
    return None


def locate_event(
    event: IncidentReported, snapshot: JurisdictionSnapshot, memo: RoutingMemo | None = None
) -> Placement | None:
    """Step 1 (Where 定位): point in a grid → sent code → point in a village/township → address.

    Returns ``None`` when nothing places the event in a township (→ triage ``unlocated``).
    无法定位到乡镇时返回 None（转人工：无法定位）。``memo`` (of ``snapshot``) answers the point
    lookup from its primed batch. 可由记忆化对象按批给出坐标定位结果。
    """
    by_point: Placement | None = None
    if event.location is not None:
        if memo is not None and memo.snapshot is snapshot:
            hit = memo.locate(event.location.lng, event.location.lat)
        else:
            hit = snapshot.locate(event.location.lng, event.location.lat)
        if hit is not None and hit.township is not None:
            by_point = Placement(
                method="point",
                level=hit.level,
                code=hit.code,
                grid=hit.grid,
                village=hit.village,
                township=hit.township,
                county=hit.county,
                detail=hit.level,
            )
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
    return Placement(
        method=placement.method,
        level=placement.level,
        code=placement.code,
        grid=placement.grid,
        village=placement.village,
        township=placement.township,
        county=placement.county,
        detail=placement.detail,
        mismatch=mismatch,
    )


# --------------------------------------------------------------------------- matter, rules, candidates


def classify(event: IncidentReported, snapshot: JurisdictionSnapshot) -> Matter | None:
    """Step 2 (What 定性): the matter mapped from the source's category code, or ``None``. 来源编码 → 事项。"""
    code = snapshot.matter_for_source(event.source, event.category_key)
    return snapshot.matter(code) if code is not None else None


def rule_facts(event: IncidentReported, placement: Placement | None, matter: str | None) -> RuleFacts:
    """The facts rules are matched against (keywords: title + description). 规则匹配要素。"""
    text = "\n".join(part for part in (event.title, event.description) if part)
    return RuleFacts(
        matter=matter,
        township=placement.township if placement else None,
        grid=placement.grid if placement else None,
        source=event.source,
        appeal_type=event.appeal_type,
        urgency=event.urgency,
        text=text,
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """One unit that may handle the case, and which step names it. 候选承办单位。

    ``unit`` is ``None`` when the step names no unit at all (e.g. the township has
    no unit for the matter's function); ``exists`` is False when the id is not in
    the snapshot. 步骤未给出单位时 ``unit`` 为 None；单位不在快照中时 ``exists`` 为 False。
    """

    unit: str | None
    decided_by: DecidedBy
    exists: bool
    why_zh: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. 可序列化形式。"""
        return {"unit": self.unit, "decided_by": self.decided_by, "exists": self.exists, "why_zh": self.why_zh}


def _name(snapshot: JurisdictionSnapshot, unit_id: str | None) -> str:
    unit = snapshot.unit(unit_id) if unit_id else None
    return unit.name if unit is not None else (unit_id or "（无）")


def _division_name(snapshot: JurisdictionSnapshot, code: str | None) -> str:
    division = snapshot.division(code) if code else None
    return division.name if division is not None else (code or "（未知）")


def _jurisdiction_chain(snapshot: JurisdictionSnapshot, matter: Matter, township: str) -> list[Candidate]:
    """Step 4 and its fall-backs: devolved unit, stationed agency, county department. 属地默认链。"""
    town = _division_name(snapshot, township)
    department = snapshot.county_department(matter.department) or snapshot.unit(matter.department)
    department_name = department.name if department is not None else matter.department
    chain: list[Candidate] = []
    if snapshot.is_devolved(township, matter.code):
        unit = snapshot.township_function_unit(township, matter.township_function)
        unit_id = snapshot.township_functions(township).get(matter.township_function)
        if unit is not None:
            why = f"事项「{matter.name}」已下放至{town}：由{unit.name}承办（职能 {matter.township_function}）"
        elif unit_id is not None:
            why = f"事项「{matter.name}」已下放至{town}，但职能 {matter.township_function} 的单位 {unit_id} 不存在"
        else:
            why = f"事项「{matter.name}」已下放至{town}，但{town}没有承担职能 {matter.township_function} 的单位"
        chain.append(Candidate(unit_id, "devolved", unit is not None, why))
    agency = snapshot.stationed_agency(matter.department, township)
    if agency is not None:
        if chain:
            why = f"{department_name}派驻{town}的{agency.name}（派驻机构，候补）"
        else:
            why = (
                f"事项「{matter.name}」未下放至{town}：由{department_name}派驻的{agency.name}承办（派驻机构覆盖{town}）"
            )
        chain.append(Candidate(agency.id, "stationed_agency", True, why))
    if chain:
        why = f"{department_name}（县级部门，吹哨报到，候补）"
    else:
        why = (
            f"事项「{matter.name}」未下放至{town}，且{department_name}无派驻机构覆盖{town}："
            f"由{department_name}承办（吹哨报到）"
        )
    chain.append(Candidate(matter.department, "county_department", department is not None, why))
    return chain


def _candidates(snapshot: JurisdictionSnapshot, matter: Matter, township: str, rule: Rule | None) -> list[Candidate]:
    """Rule unit first (if the rule names one), then the jurisdiction chain, each unit once. 候选列表。"""
    out: list[Candidate] = []
    if rule is not None and rule.action.unit:
        unit_id = rule.action.unit
        exists = snapshot.unit(unit_id) is not None
        desc = f"：{rule.description}" if rule.description else ""
        why = f"规则 {rule.id}（优先级 {rule.priority}）命中{desc}：由{_name(snapshot, unit_id)}主办"
        out.append(Candidate(unit_id, "rule", exists, why))
    seen = {c.unit for c in out}
    for candidate in _jurisdiction_chain(snapshot, matter, township):
        if candidate.unit is None or candidate.unit not in seen:
            out.append(candidate)
            seen.add(candidate.unit)
    return out


def candidates(
    event: IncidentReported, snapshot: JurisdictionSnapshot, *, matter: str | None = None
) -> list[Candidate]:
    """Ordered candidate units for ``event`` (rule unit, devolved unit, agency, department).

    按顺序的候选承办单位。Empty when the event cannot be located or categorised.
    ``matter`` overrides the mapped matter (a dispatcher's manual decision). 可指定事项覆盖映射。
    """
    placement = locate_event(event, snapshot)
    found = snapshot.matter(matter) if matter else classify(event, snapshot)
    if placement is None or placement.township is None or found is None:
        return []
    rule = snapshot.first_matching_rule(rule_facts(event, placement, found.code))
    return _candidates(snapshot, found, placement.township, rule)


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class RoutingDecision:
    """The routing result (派遣决策) with everything needed to explain and replay it."""

    outcome: Outcome
    decided_at: datetime
    jurisdiction_version: int
    rules_version: int
    triage_reason: TriageReason | None = None
    placement: Placement | None = None
    matter: str | None = None
    matter_name: str | None = None
    matter_group: str | None = None
    unit: str | None = None
    unit_name: str | None = None
    unit_kind: str | None = None
    cohandlers: tuple[str, ...] = ()
    decided_by: DecidedBy | None = None
    rule_id: str | None = None
    devolved: bool | None = None
    deadline: datetime | None = None
    deadline_hours: float | None = None
    time_basis: Literal["working", "natural"] | None = None
    provisional: bool = False
    accept_deadline: datetime | None = None
    reject_window_ends_at: datetime | None = None
    candidates: tuple[Candidate, ...] = ()
    skipped_units: tuple[str, ...] = ()
    explanation_zh: str = ""
    explanation: dict[str, Any] = field(default_factory=dict)

    @property
    def township(self) -> str | None:
        """Township code of the placement. 所属乡镇。"""
        return self.placement.township if self.placement else None

    @property
    def grid(self) -> str | None:
        """Grid code of the placement. 所属网格。"""
        return self.placement.grid if self.placement else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the case). 可序列化形式（随案件存储）。"""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "outcome": self.outcome,
            "decided_at": iso(self.decided_at),
            "jurisdiction_version": self.jurisdiction_version,
            "rules_version": self.rules_version,
            "triage_reason": self.triage_reason,
            "placement": self.placement.to_dict() if self.placement else None,
            "matter": self.matter,
            "matter_name": self.matter_name,
            "matter_group": self.matter_group,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "unit_kind": self.unit_kind,
            "cohandlers": list(self.cohandlers),
            "decided_by": self.decided_by,
            "rule_id": self.rule_id,
            "devolved": self.devolved,
            "deadline": iso(self.deadline),
            "deadline_hours": self.deadline_hours,
            "time_basis": self.time_basis,
            "provisional": self.provisional,
            "accept_deadline": iso(self.accept_deadline),
            "reject_window_ends_at": iso(self.reject_window_ends_at),
            "candidates": [c.to_dict() for c in self.candidates],
            "skipped_units": list(self.skipped_units),
            "explanation_zh": self.explanation_zh,
            "explanation": self.explanation,
        }


def _fmt(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment is not None else "—"


def _where_zh(snapshot: JurisdictionSnapshot, placement: Placement) -> str:
    finest = _division_name(snapshot, placement.code)
    town = _division_name(snapshot, placement.township)
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
            f"；注意：上报的{label} {m.code}（属{_division_name(snapshot, m.code_township)}）"
            f"与坐标所在的{town}不一致，按坐标派遣"
        )
    return text


def route(
    event: IncidentReported,
    snapshot: JurisdictionSnapshot,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    exclude_units: Iterable[str] = frozenset(),
    matter: str | None = None,
    memo: RoutingMemo | None = None,
) -> RoutingDecision:
    """Decide where ``event`` goes (派遣决策). Pure; never raises on data problems.

    ``now`` (timezone-aware) is the dispatch moment deadlines count from;
    ``exclude_units`` are skipped (退单单位); ``matter`` overrides the mapped matter
    (manual decision 人工指定事项). 纯函数；数据问题转人工，不抛异常。
    ``memo``: a :class:`RoutingMemo` of this snapshot and calendar shared by many calls (a
    batch); the decision is the same without it. 批量路由时共享的记忆化对象，不影响结果。
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if memo is None or not memo.serves(snapshot, calendar):
        memo = RoutingMemo(snapshot, calendar)
    excluded = frozenset(exclude_units)
    base: dict[str, Any] = {
        "decided_at": now,
        "jurisdiction_version": snapshot.version,
        "rules_version": snapshot.rules_version,
    }
    steps: list[dict[str, Any]] = []
    texts: list[str] = []

    # 1. Where 定位
    placement = locate_event(event, snapshot, memo)
    if placement is not None:
        steps.append({"step": "where", **placement.to_dict()})
        texts.append(memo.where_zh(placement))
    else:
        steps.append({"step": "where", "method": None, "tried": _tried(event)})
        texts.append("定位：坐标未落入任何网格，上报编码与地址文本均无法匹配到乡镇")

    # 2. What 定性
    found = snapshot.matter(matter) if matter else memo.classify(event.source, event.category_key)
    if found is not None:
        how = "人工指定" if matter else f"{event.source} 分类 {event.category_key} 映射"
        steps.append({"step": "what", "matter": found.code, "name": found.name, "via": how})
        texts.append(f"定性：{how}为事项「{found.name}」（{found.code}）")
    else:
        steps.append({"step": "what", "matter": None, "source": event.source, "category_key": event.category_key})
        texts.append(f"定性：{event.source} 分类 {event.category_key!r} 没有对应事项")
    facts_common: dict[str, Any] = {
        "placement": placement,
        "matter": found.code if found else None,
        "matter_name": found.name if found else None,
        "matter_group": found.group if found else None,
    }

    # Self-handled reports are recorded and counted, never dispatched. 自办件只记录不派遣。
    if event.self_handled:
        texts.append("网格员已当场自办：只记录、计入统计，不派遣")
        steps.append({"step": "self_handled", "worker_id": event.worker_id})
        return _decision("self_handled", base, facts_common, steps, texts)

    if placement is None or placement.township is None:
        return _triage("unlocated", base, facts_common, steps, texts)
    if found is None:
        return _triage("uncategorised", base, facts_common, steps, texts)
    township = placement.township
    devolved = snapshot.is_devolved(township, found.code)
    facts_common["devolved"] = devolved

    # 3. Override rules 派遣规则
    rule = memo.first_matching_rule(rule_facts(event, placement, found.code))
    if rule is not None:
        steps.append(
            {
                "step": "rule",
                "rule_id": rule.id,
                "priority": rule.priority,
                "description": rule.description,
                "rules_version": snapshot.rules_version,
                "action": rule.action.model_dump(exclude_none=True),
            }
        )
        texts.append(
            f"规则：命中规则 {rule.id}（优先级 {rule.priority}，规则集版本 {snapshot.rules_version}）"
            + (f"「{rule.description}」" if rule.description else "")
        )
    else:
        steps.append({"step": "rule", "rule_id": None, "rules_version": snapshot.rules_version})
        texts.append(f"规则：无规则命中（规则集版本 {snapshot.rules_version}），按属地默认")

    # 4. Default by jurisdiction, skipping units that rejected the case. 属地默认，跳过退单单位。
    listed = memo.candidates(found, township, rule)
    skipped = tuple(c.unit for c in listed if c.unit is not None and c.unit in excluded)
    chosen = next((c for c in listed if c.unit is None or c.unit not in excluded), None)
    facts_common["candidates"] = tuple(listed)
    facts_common["skipped_units"] = skipped
    if skipped:
        texts.append("已跳过退单单位：" + "、".join(_name(snapshot, u) for u in skipped))
    if chosen is None:
        steps.append({"step": "unit", "candidates": [c.to_dict() for c in listed], "skipped": list(skipped)})
        return _triage("no_candidate_left", base, facts_common, steps, texts)
    if not chosen.exists or chosen.unit is None:
        steps.append({"step": "unit", "chosen": chosen.to_dict(), "skipped": list(skipped)})
        texts.append(chosen.why_zh if chosen.unit is None else f"{chosen.why_zh}；单位 {chosen.unit} 不存在")
        return _triage("no_unit", base, facts_common, steps, texts)
    unit = snapshot.unit(chosen.unit)
    assert unit is not None
    texts.append(chosen.why_zh)
    cohandlers = _cohandlers(snapshot, rule, unit)
    if cohandlers:
        texts.append("协办：" + "、".join(_name(snapshot, u) for u in cohandlers))
    steps.append(
        {
            "step": "unit",
            "decided_by": chosen.decided_by,
            "unit": unit.id,
            "unit_name": unit.name,
            "unit_kind": unit.kind,
            "devolved": devolved,
            "cohandlers": list(cohandlers),
            "skipped": list(skipped),
        }
    )

    # 5. Deadline 时限
    overridden = rule is not None and rule.action.deadline_hours is not None
    hours = (
        rule.action.deadline_hours if overridden and rule is not None else found.deadlines.for_urgency(event.urgency)
    )
    assert hours is not None
    basis = time_basis_for(event.urgency, found.time_basis)
    timing = memo.deadline_facts(now, float(hours), basis)
    due_at, accept, window, provisional = timing.due_at, timing.accept, timing.window, timing.provisional
    source_of_hours = (
        f"规则 {rule.id} 覆盖"
        if overridden and rule is not None
        else f"事项「{found.name}」{_URGENCY_LABELS.get(event.urgency, event.urgency)}"
    )
    texts.append(
        f"时限：{source_of_hours} {hours:g} 小时（{_BASIS_LABELS[basis]}"
        + ("，特急件一律按自然时" if event.urgency == "critical" and found.time_basis == "working" else "")
        + f"），办结期限 {memo.fmt(due_at)}；签收期限 {memo.fmt(accept)}；退单时限 {memo.fmt(window)}"
        + ("（日历暂定）" if provisional else "")
    )
    steps.append(
        {
            "step": "deadline",
            "hours": hours,
            "overridden_by_rule": overridden,
            "time_basis": basis,
            "urgency": event.urgency,
            "deadline": due_at.isoformat(),
            "accept_deadline": accept.isoformat(),
            "reject_window_ends_at": window.isoformat(),
            "provisional": provisional,
        }
    )
    return _decision(
        "dispatch",
        base,
        {
            **facts_common,
            "unit": unit.id,
            "unit_name": unit.name,
            "unit_kind": unit.kind,
            "cohandlers": cohandlers,
            "decided_by": chosen.decided_by,
            "rule_id": rule.id if rule is not None else None,
            "deadline": due_at,
            "deadline_hours": float(hours),
            "time_basis": basis,
            "provisional": provisional,
            "accept_deadline": accept,
            "reject_window_ends_at": window,
        },
        steps,
        texts,
        rule=rule,
    )


def _cohandlers(snapshot: JurisdictionSnapshot, rule: Rule | None, primary: Unit) -> tuple[str, ...]:
    """Existing co-handling units of the rule, never the primary unit. 规则的协办单位（去掉主办与不存在者）。"""
    if rule is None or not rule.action.cohandlers:
        return ()
    return tuple(dict.fromkeys(u for u in rule.action.cohandlers if u != primary.id and snapshot.unit(u) is not None))


def _tried(event: IncidentReported) -> dict[str, Any]:
    return {
        "point": [event.location.lng, event.location.lat] if event.location else None,
        **{name: getattr(event, name) for name in _CODE_FIELDS},
        "address": event.address,
    }


def _triage(
    reason: TriageReason,
    base: dict[str, Any],
    facts: dict[str, Any],
    steps: list[dict[str, Any]],
    texts: list[str],
) -> RoutingDecision:
    texts.append(f"转人工分拨：{_TRIAGE_LABELS[reason]}")
    steps.append({"step": "triage", "reason": reason})
    return _decision("triage", base, {**facts, "triage_reason": reason}, steps, texts)


def _decision(
    outcome: Outcome,
    base: dict[str, Any],
    facts: dict[str, Any],
    steps: list[dict[str, Any]],
    texts: Sequence[str],
    *,
    rule: Rule | None = None,
) -> RoutingDecision:
    decided_by = facts.get("decided_by")
    explanation: dict[str, Any] = {
        "outcome": outcome,
        "jurisdiction_version": base["jurisdiction_version"],
        "rules_version": base["rules_version"],
        "matched_rule": rule.id if rule is not None else None,
        "decided_by": decided_by,
        "decided_by_zh": _DECIDED_LABELS.get(decided_by) if decided_by else None,
        "triage_reason": facts.get("triage_reason"),
        "steps": steps,
    }
    return RoutingDecision(
        outcome=outcome,
        **base,
        **facts,
        explanation_zh="；".join(texts) + "。",
        explanation=explanation,
    )
