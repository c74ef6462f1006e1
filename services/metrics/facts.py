"""Per-case fact reducer. 案件事实归约。

One :class:`CaseFact` per case, rebuilt from the case's ``case.*`` events by
:func:`reduce_events`. The reduction is order-independent and idempotent:
events are de-duplicated by ``event_id`` and sorted by ``(case version,
occurred_at, event_id)`` before folding, so duplicated or out-of-order input
gives the identical fact.
每个案件一行事实，由该案件的 ``case.*`` 事件归约而来。先按 ``event_id`` 去重，
再按（案件版本、发生时间、event_id）排序后折叠，因此重复或乱序的输入得到完全相同的结果。

Event data assumed (all events on topic ``case.events``; times are ISO 8601
strings or datetimes, naive times are Beijing time). The dispatch service's
events are to be aligned to this list.
约定的事件数据字段（均在 ``case.events`` 主题上；时间为 ISO 8601 字符串或 datetime，
无时区按北京时间）。派遣服务发布的事件应与此保持一致：

Envelope 信封 (:class:`CaseEventRecord`):
    ``event_id`` (str, unique), ``case_id`` (str), ``type`` (str),
    ``occurred_at`` (alias ``time``), ``version`` (case version after the
    transition, alias ``case_version``), ``data`` (dict).

Read from ANY event's data when present and not null 任一事件携带即读取（后者覆盖前者）:
    ``township``, ``matter``, ``matter_group``, ``source``, ``urgency``,
    ``time_basis`` (``"working"``/``"natural"``), ``reported_at`` (earliest wins),
    ``deadline`` (办结期限 in force after the transition 生效期限), ``accept_deadline``
    (签收期限), ``provisional`` (bool, read together with a deadline: computed on a
    fallback calendar 期限按备用日历推算). A flat event carrying the case's
    current fields on every event (as ``shared.events.CaseEvent`` does) fits this.

Per type 按事件类型:

``case.dispatched`` / ``case.assigned`` (manual 手动派遣) / ``case.reassigned`` (改派):
    ``unit`` (required 必填, the new primary unit), optional ``unit_kind``.
    The first one sets ``dispatched_at``; each one makes ``unit`` the holder.
    Moving to a different unit clears ``accepted_at`` (the new unit must 签收).
``case.triage_required``: ``reason``.
``case.merged``: ``into`` (alias ``merged_into``: the surviving case 并入的主案件).
    A merged case leaves every population. 并案后不再计入统计。
``case.accepted`` (签收).
``case.rejected`` (退单): ``rejected_unit`` (or ``unit``; default the holder), ``reason``.
``case.rejection_ruled`` (判定退单): ``valid`` (alias ``rejection_valid``; bool,
    required 必填), ``rejected_unit`` (or ``unit``; default the holder).
    ``valid: false`` returns the case to that unit (it was theirs after all)
    and counts against it — unless the event says another unit holds the case
    by now (a flat event's ``unit`` is the primary unit after the transition),
    in which case the holder stays. 判定无效则案件回到该单位，并计入该单位的退单
    （若事件表明案件此时已由其他单位承办，则承办单位不变）。
``case.extension_requested``: ``requested_deadline``, ``reason`` (``deadline``
    here, if present, must be the one still in force).
``case.extended`` (延期获批): ``deadline`` (the new deadline 新期限; or ``new_deadline``).
``case.extension_denied``: ``reason``.
``case.resolved`` (办结/处置反馈).
``case.verified`` (核查): ``passed`` (alias ``verification_passed``; bool).
    ``passed: false`` = 返工: counts one rework and voids the pending resolution.
    核查不通过即返工：计一次返工并作废本次办结。
``case.reopened`` (重办, e.g. after an unsatisfied 回访): ``reason``; optional
    ``deadline``. Counted in ``reopens`` (not in ``reworks``); clears
    ``resolved_at`` and ``closed_at``. The last valid 回访 stays until a new one.
``case.closed`` (结案).
``case.callback_recorded`` (回访): ``satisfaction`` (``"satisfied"``,
    ``"basically_satisfied"``, ``"unsatisfied"``), ``solved`` (bool), ``valid``
    (bool, default true; false = 无效回访, e.g. unreachable). The last valid one wins.
``case.supervised`` (督办).
``case.escalated`` (吹哨): ``department`` (county department unit id), optional
    ``report_deadline`` (报到期限; also read from ``details``). The department becomes the holder
    (``unit_kind`` ``county_department``); its 报到 counts as its 签收 and the
    报到 limit as its 签收 limit.
``case.reported_in`` (报到).
``case.cohandler_added`` (协办): ``cohandler``, or ``cohandlers`` (the list after
    the transition, as ``CaseEvent`` carries it), or — only when neither key is
    present — ``unit`` (the co-handler). ``cohandlers`` lists on any event are merged.
``case.overdue``: no data needed; only advances ``last_event_at`` (overdue is derived).
``case.deadline_recomputed`` (期限重算, a year's holiday notice was loaded): its ``deadline``,
    ``accept_deadline`` and ``provisional`` are read like any event's.
``case.self_handled`` (自处置, closed on the spot 当场办结): ``unit`` (the grid
    worker / grid, optional). Never dispatched, so in no unit's population.

Responsibility 责任归属: cases a unit rejected validly, cases reassigned away from
it and cases escalated to a county department count for the unit that ends up
holding them (``CaseFact.unit``), never for the one that first received them.
有效退单、被改派走、吹哨至县级部门的案件，计入最终承办单位，而非最初接收的单位。
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from services.metrics.periods import TZ
from services.metrics.source_facts import fold_source_event
from shared.events import CASE_EVENT_TYPES
from shared.vocabulary import TimeBasis

__all__ = [
    "EVENT_TYPES",
    "CaseEventRecord",
    "CaseFact",
    "HandDispatch",
    "Satisfaction",
    "completion_time",
    "is_overdue",
    "reduce_events",
]

Satisfaction = Literal["satisfied", "basically_satisfied", "unsatisfied"]

EVENT_TYPES: Final[frozenset[str]] = frozenset(CASE_EVENT_TYPES)
"""Event types the reducer understands. 归约器识别的事件类型。"""

_ASSIGNMENT_TYPES: Final = frozenset({"case.dispatched", "case.assigned", "case.reassigned"})
_DESCRIPTIVE_FIELDS: Final = ("township", "matter", "matter_group", "source", "urgency")
_HAND_TYPES: Final = frozenset({"case.assigned", "case.reassigned"})
_HAND_ROLES: Final = frozenset({"dispatcher", "admin"})


def _to_datetime(value: Any) -> datetime:
    """ISO string or datetime → aware datetime (naive = Beijing). 解析时间，无时区按北京时间。"""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)
    else:
        raise ValueError(f"not a datetime: {value!r}")
    return moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment


def _opt_datetime(value: Any) -> datetime | None:
    return None if value is None else _to_datetime(value)


class CaseEventRecord(BaseModel):
    """One stored case event. 一条已存储的案件事件。"""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    event_id: str
    case_id: str
    type: str
    occurred_at: datetime = Field(validation_alias=AliasChoices("occurred_at", "time"))
    version: int = Field(validation_alias=AliasChoices("version", "case_version"))
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=TZ) if value.tzinfo is None else value

    def sort_key(self) -> tuple[int, datetime, str, _CanonicalData]:
        """Fold order: (version, time, event_id, canonical data). 折叠顺序。

        The canonical data only breaks ties between copies of one event id, so it is written out
        only when a comparison reaches it (a sort of a case's events otherwise spent most of its
        time serialising data it never compared). 规范化数据只在前三项相同时才序列化。"""
        return (self.version, self.occurred_at, self.event_id, _CanonicalData(self.data))


class _CanonicalData:
    """An event's data compared as its canonical JSON text, written on the first comparison."""

    __slots__ = ("_data", "_text")

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = json.dumps(self._data, sort_keys=True, default=str, ensure_ascii=False)
        return self._text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _CanonicalData) and self.text == other.text

    def __lt__(self, other: _CanonicalData) -> bool:
        return self.text < other.text

    __hash__ = None  # type: ignore[assignment]  # compared, never hashed


class HandDispatch(BaseModel):
    """A dispatcher's manual dispatch (手动派遣 or 改派) of the case to a unit. 派遣员的一次人工派遣。

    ``accurate`` (准确派遣): the unit did not reject it validly (判定退单有效) and it was not
    reassigned away from the unit (改派) afterwards. 未被有效退单、其后也未被改派走即为准确。
    """

    model_config = ConfigDict(frozen=True)

    by: str
    """The dispatcher (the actor's id). 派遣员。"""
    unit: str
    at: datetime
    accurate: bool = True


class CaseFact(BaseModel):
    """One row per case, the basis of every indicator. 案件事实（每案一行），一切指标的依据。"""

    model_config = ConfigDict(frozen=True)

    case_id: str
    reported_at: datetime | None = None
    dispatched_at: datetime | None = None
    """First dispatch (or manual assignment). 首次派遣时间。"""
    accepted_at: datetime | None = None
    """签收 by the current holder (报到 for an escalated case). 当前承办单位签收时间。"""
    resolved_at: datetime | None = None
    """The last resolution, the one 核查 accepted (or still pending 核查). 最后一次（核查通过的）办结时间。"""
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    deadline: datetime | None = None
    """Deadline in force, after approved extensions. 生效期限（含批准延期）。"""
    accept_deadline: datetime | None = None
    """签收 limit (报到 limit for an escalated case). 签收期限。"""
    time_basis: TimeBasis | None = None
    unit: str | None = None
    """The unit that ends up holding the case. 最终承办单位。"""
    unit_kind: str | None = None
    township: str | None = None
    matter: str | None = None
    matter_group: str | None = None
    source: str | None = None
    urgency: str | None = None
    rejections: int = 0
    rejected_by: list[str] = Field(default_factory=list)
    units_rejected_validly: list[str] = Field(default_factory=list)
    units_rejected_invalidly: list[str] = Field(default_factory=list)
    """Invalid rejections count against these units. 无效退单计入这些单位。"""
    extensions_requested: int = 0
    extensions: int = 0
    """Approved extensions. 获批延期次数。"""
    reworks: int = 0
    """Failed 核查 (返工). 核查不通过次数。"""
    reopens: int = 0
    """重办 after 回访. 重办次数。"""
    supervisions: int = 0
    escalations: int = 0
    escalated_to: str | None = None
    reported_in_at: datetime | None = None
    cohandlers: list[str] = Field(default_factory=list)
    triage_count: int = 0
    merged_into: str | None = None
    overdue: bool = False
    """Overdue as of ``last_event_at``; use :func:`is_overdue` for another time. 截至最后事件时是否超期。"""
    satisfaction: Satisfaction | None = None
    """Last valid 回访 result. 最后一次有效回访结果。"""
    solved: bool | None = None
    self_handled: bool = False
    last_event_at: datetime | None = None
    provisional: bool = False
    """Deadlines computed on a fallback calendar. 期限按备用日历推算（待复算）。"""
    event_count: int = 0
    devolved: bool | None = None
    """The matter is devolved (下放) to the case's township. 事项已下放乡镇。"""
    hand_dispatches: list[HandDispatch] = Field(default_factory=list)
    """Manual dispatches by dispatchers, for their 准确派遣率. 人工派遣记录（计算准确派遣率）。"""
    # the approval and alarm sources, invalid reports (folded by services.metrics.source_facts)
    kind: str = "incident"
    """incident 事件 / inspection 监管任务."""
    reporter_id: str | None = None
    device_id: str | None = None
    invalid: bool = False
    """不予立案/作废: out of every unit indicator. 作废。"""
    invalid_reason: str | None = None
    auto_recovered: bool = False
    """自动恢复: closed by the alarm clearing, not the unit's 办结."""
    false_alarm: bool = False
    inspection_result: str | None = None
    revoked: bool = False
    occurrences: int = 1


def completion_time(fact: CaseFact) -> datetime | None:
    """When the unit finished: resolved_at, else closed_at. 办结时间（无则取结案时间）。"""
    return fact.resolved_at if fact.resolved_at is not None else fact.closed_at


def is_overdue(fact: CaseFact, as_of: datetime) -> bool:
    """Overdue as of ``as_of``: finished after the deadline, or open past it. 截至某时是否超期。

    A case finished (resolved, or closed) by ``as_of`` is overdue if it finished
    after the deadline in force; a case still open at ``as_of`` is overdue if
    ``as_of`` is past the deadline. No deadline → never overdue.
    截至 ``as_of`` 已办结的，办结晚于生效期限即超期；仍未办结的，``as_of`` 超过期限即超期。无期限则不超期。
    """
    if fact.deadline is None:
        return False
    moment = as_of.replace(tzinfo=TZ) if as_of.tzinfo is None else as_of
    done = completion_time(fact)
    if done is not None and done <= moment:
        return done > fact.deadline
    return moment > fact.deadline


def _append_unique(items: list[str], value: str | None) -> None:
    if value is not None and value not in items:
        items.append(value)


def _remove(items: list[str], value: str) -> None:
    if value in items:
        items.remove(value)


def reduce_events(events: Iterable[CaseEventRecord | Mapping[str, Any]]) -> CaseFact:
    """Fold one case's events into its :class:`CaseFact`. 将一个案件的事件归约为案件事实。

    Duplicates (same ``event_id``) are dropped and events sorted by
    ``(version, occurred_at, event_id)`` first, so the result does not depend
    on input order or repetition. Unknown event types are ignored (they only
    advance ``last_event_at``). Raises ``ValueError`` on no events or events of
    several cases.
    先去重、排序再折叠，结果与输入顺序和重复无关。未知事件类型被忽略（只更新最后事件时间）。
    无事件或混有多个案件的事件时抛出 ``ValueError``。
    """
    records = [e if isinstance(e, CaseEventRecord) else CaseEventRecord.model_validate(e) for e in events]
    if not records:
        raise ValueError("reduce_events: no events")
    case_ids = {r.case_id for r in records}
    if len(case_ids) > 1:
        raise ValueError(f"reduce_events: events of several cases {sorted(case_ids)}")
    unique: dict[str, CaseEventRecord] = {}
    for record in sorted(records, key=CaseEventRecord.sort_key):
        unique.setdefault(record.event_id, record)
    ordered = sorted(unique.values(), key=CaseEventRecord.sort_key)

    f = _blank_fact(ordered[0].case_id)
    for record in ordered:
        _apply(f, record)
    f["event_count"] = len(ordered)
    for hand in f["hand_dispatches"]:  # a unit that rejected validly shows the dispatch was wrong
        if hand["unit"] in f["units_rejected_validly"]:
            hand["accurate"] = False
    fact = CaseFact.model_validate(f)
    if fact.last_event_at is not None:
        overdue = is_overdue(fact, fact.last_event_at)
        if overdue != fact.overdue:  # a copy only when it changes (a copy of a fact costs a fold's worth)
            fact = fact.model_copy(update={"overdue": overdue})
    return fact


#: A new case's fact as a dict (the defaults), made once: :func:`_blank_fact` copies it.
_BLANK_FACT: Final[dict[str, Any]] = CaseFact(case_id="").model_dump()


def _blank_fact(case_id: str) -> dict[str, Any]:
    """The working fact a fold starts from: the defaults, with fresh lists (the fold appends to them).

    折叠的起点：默认值（列表为新副本，折叠会向其追加）。Equal to ``CaseFact(case_id=…).model_dump()``,
    without validating and dumping a model per fold."""
    f = {key: list(value) if isinstance(value, list) else value for key, value in _BLANK_FACT.items()}
    f["case_id"] = case_id
    return f


def _set_deadlines(f: dict[str, Any], data: Mapping[str, Any], *, deadline_key: str = "deadline") -> None:
    changed = False
    if data.get(deadline_key) is not None:
        f["deadline"] = _to_datetime(data[deadline_key])
        changed = True
    if data.get("accept_deadline") is not None:
        f["accept_deadline"] = _to_datetime(data["accept_deadline"])
        changed = True
    if changed:
        f["provisional"] = bool(data.get("provisional", False))


def _set_descriptive(f: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key in _DESCRIPTIVE_FIELDS:
        if data.get(key) is not None:
            f[key] = data[key]
    if data.get("time_basis") is not None:
        f["time_basis"] = data["time_basis"]
    if data.get("devolved") is not None:
        f["devolved"] = bool(data["devolved"])
    if data.get("reported_at") is not None:
        reported = _to_datetime(data["reported_at"])
        if f["reported_at"] is None or reported < f["reported_at"]:
            f["reported_at"] = reported


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    """The first non-null value among ``keys``. 依次取第一个非空字段。"""
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def _note_current_unit(f: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Fill the holder's kind and co-handlers from a flat event. 从扁平事件补充单位类型与协办单位。

    A ``CaseEvent`` carries the primary unit after the transition and its kind on every
    event; the kind is taken when the fact's holder is that unit and has no kind yet.
    """
    kind = data.get("unit_kind")
    if kind is not None and f["unit"] is not None and data.get("unit") == f["unit"] and f["unit_kind"] is None:
        f["unit_kind"] = kind
    for cohandler in data.get("cohandlers") or ():
        if isinstance(cohandler, str):
            _append_unique(f["cohandlers"], cohandler)


def _move_to(f: dict[str, Any], unit: str | None, unit_kind: str | None) -> None:
    """Make ``unit`` the holder; a new holder must 签收 again. 转由新单位承办，需重新签收。"""
    if unit is None:
        return
    if unit != f["unit"]:
        f["accepted_at"] = None
        f["unit_kind"] = None
    f["unit"] = unit
    if unit_kind is not None:
        f["unit_kind"] = unit_kind


def _rule_rejection(f: dict[str, Any], data: Mapping[str, Any]) -> None:
    """判定退单: valid → not counted against the unit; invalid → counted, and the case returns to it
    unless another unit holds it by now."""
    unit = _first(data, "rejected_unit", "unit") or f["unit"]
    valid = _first(data, "valid", "rejection_valid")
    if unit is None or valid is None:
        return
    if valid:
        _append_unique(f["units_rejected_validly"], unit)
        _remove(f["units_rejected_invalidly"], unit)
        return
    _append_unique(f["units_rejected_invalidly"], unit)
    _remove(f["units_rejected_validly"], unit)
    holder_now = data.get("unit") if data.get("rejected_unit") is not None else None
    if holder_now is None or holder_now == unit:
        _move_to(f, unit, None)


def _verify(f: dict[str, Any], data: Mapping[str, Any], at: datetime) -> None:
    """核查: passed (closing the case when the transition says so), or failed = 返工."""
    passed = _first(data, "passed", "verification_passed")
    if passed is None or passed:
        f["verified_at"] = at
        if data.get("state") == "closed":  # a passed 核查 closes the case (结案) in one transition
            f["closed_at"] = at
    else:
        f["reworks"] += 1
        f["resolved_at"] = None
        f["verified_at"] = None


def _escalate(f: dict[str, Any], data: Mapping[str, Any]) -> None:
    """吹哨: the county department holds the case; its 报到 limit is its 签收 limit."""
    f["escalations"] += 1
    department = data.get("department")
    if department is not None:
        f["escalated_to"] = department
        f["reported_in_at"] = None
        _move_to(f, department, "county_department")
        f["accepted_at"] = None
    raw_details = data.get("details")
    details: Mapping[str, Any] = raw_details if isinstance(raw_details, Mapping) else {}
    report_deadline = _first(data, "report_deadline") or _first(details, "report_deadline")
    if report_deadline is not None:
        f["accept_deadline"] = _to_datetime(report_deadline)


def _note_hand_dispatch(f: dict[str, Any], t: str, data: Mapping[str, Any], at: datetime) -> None:
    """改派 marks the holder's earlier hand dispatches inaccurate; a dispatcher's 手动派遣/改派 is recorded."""
    unit = data.get("unit")
    if t == "case.reassigned" and unit is not None and unit != f["unit"]:
        for hand in f["hand_dispatches"]:
            if hand["unit"] == f["unit"]:
                hand["accurate"] = False
    raw_actor = data.get("actor")
    actor: Mapping[str, Any] = raw_actor if isinstance(raw_actor, Mapping) else {}
    if t in _HAND_TYPES and unit is not None and actor.get("role") in _HAND_ROLES:
        by = actor.get("name") or actor.get("role")
        f["hand_dispatches"].append({"by": by, "unit": unit, "at": at, "accurate": True})


def _apply(f: dict[str, Any], record: CaseEventRecord) -> None:
    """Fold one event into the working fact (a dict). 折叠一条事件。"""
    t, at, data = record.type, record.occurred_at, record.data
    if f["last_event_at"] is None or at > f["last_event_at"]:
        f["last_event_at"] = at
    _set_descriptive(f, data)
    _set_deadlines(f, data)

    if t in _ASSIGNMENT_TYPES:
        if f["dispatched_at"] is None:
            f["dispatched_at"] = at
        _note_hand_dispatch(f, t, data, at)
        _move_to(f, data.get("unit"), data.get("unit_kind"))
    elif t == "case.triage_required":
        f["triage_count"] += 1
    elif t == "case.merged":
        f["merged_into"] = _first(data, "into", "merged_into")
    elif t == "case.accepted":
        if f["accepted_at"] is None:
            f["accepted_at"] = at
    elif t == "case.rejected":
        f["rejections"] += 1
        _append_unique(f["rejected_by"], _first(data, "rejected_unit", "unit") or f["unit"])
    elif t == "case.rejection_ruled":
        _rule_rejection(f, data)
    elif t == "case.extension_requested":
        f["extensions_requested"] += 1
    elif t == "case.extended":
        f["extensions"] += 1
        if data.get("deadline") is None:
            _set_deadlines(f, data, deadline_key="new_deadline")
    elif t == "case.resolved":
        f["resolved_at"] = at
    elif t == "case.verified":
        _verify(f, data, at)
    elif t == "case.reopened":
        f["reopens"] += 1
        f["resolved_at"] = None
        f["verified_at"] = None
        f["closed_at"] = None
    elif t == "case.closed":
        f["closed_at"] = at
    elif t == "case.callback_recorded":
        if data.get("valid", True) and data.get("satisfaction") is not None:
            f["satisfaction"] = data["satisfaction"]
            solved = data.get("solved")
            f["solved"] = None if solved is None else bool(solved)
    elif t == "case.supervised":
        f["supervisions"] += 1
    elif t == "case.escalated":
        _escalate(f, data)
    elif t == "case.reported_in":
        if f["reported_in_at"] is None:
            f["reported_in_at"] = at
        if f["accepted_at"] is None:
            f["accepted_at"] = at
    elif t == "case.cohandler_added":
        if data.get("cohandler") is not None:
            _append_unique(f["cohandlers"], data["cohandler"])
        elif "cohandlers" not in data:
            _append_unique(f["cohandlers"], data.get("unit"))
    elif t == "case.self_handled":
        f["self_handled"] = True
        if data.get("unit") is not None:
            f["unit"] = data["unit"]
        f["resolved_at"] = at
        f["closed_at"] = at
    # case.overdue and unknown types: only last_event_at. 其他类型仅更新最后事件时间。
    fold_source_event(f, t, at, data)
    _note_current_unit(f, data)
