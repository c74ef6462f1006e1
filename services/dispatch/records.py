"""The case record 案件记录: a ``cases`` row in memory, and the one declaration of its fields.

A case's fields are declared once, here, and every form of a case derives from
that declaration: the row written to ``cases`` (:meth:`CaseRecord.to_row`), the
record read back (:meth:`CaseRecord.from_row`), the descriptive fields every
:class:`~shared.events.CaseEvent` carries (:meth:`CaseRecord.event_fields`) and
the case as the API shows it (:meth:`CaseRecord.api_fields`). Adding a field is
one edit: an attribute of :class:`CaseRecord` (a fact dispatch keeps) or an entry
of :data:`SNAPSHOT_FIELDS` (a fact the lifecycle snapshot holds), plus its column.
案件字段只在此处声明一次；数据库行、读回的记录、案件事件的描述字段与接口表示均由此派生。
新增字段只需一处修改（及其数据库列）。Pure: no I/O. 纯模块，无 I/O。
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated, Any, get_type_hints

from services.dispatch.case_model import CaseSnapshot
from services.dispatch.models import cases
from shared.events import AlarmReported, ApprovalReported, IncidentReported

__all__ = [
    "CASE_FIELDS",
    "ROW_ONLY",
    "SNAPSHOT_FIELDS",
    "CaseField",
    "CaseNotFoundError",
    "CaseRecord",
    "Shows",
    "SnapshotField",
    "api_value",
]


class CaseNotFoundError(LookupError):
    """No such case, or not visible to the caller (→ 404). 案件不存在或不可见。"""


@dataclass(frozen=True, slots=True)
class Shows:
    """Where a case field shows 字段出现在何处: the ``cases`` row, every case event, the API's case.

    ``event_as``: its name in events when not its own; ``event_value``: its value in
    events when not the record's. 事件中的名称或取值与记录不同时给出。
    """

    row: bool = True
    event: bool = True
    api: bool = True
    event_as: str | None = None
    event_value: Callable[[CaseRecord], Any] | None = None


#: Shown in the row only (dispatch's own bookkeeping). 仅存于数据库行。
ROW_ONLY = Shows(event=False, api=False)
#: In the row and the API, not in events. 存于数据库行并在接口中展示，不进入事件。
_NOT_IN_EVENTS = Shows(event=False)


def _unit_kind_while_assigned(record: CaseRecord) -> str | None:
    """``unit_kind`` in events: only while the case has a primary unit. 事件中的单位类型（有主办单位时）。"""
    return record.unit_kind if record.snapshot.primary_unit else None


@dataclass
class CaseRecord:
    """A case row in memory: the lifecycle snapshot plus dispatch's own facts. 内存中的案件行。

    Every attribute but ``snapshot`` is a stored fact, its ``Annotated`` :class:`Shows`
    saying where it shows. 除快照外每个属性都是一个存储字段，其 Shows 标注说明出现位置。
    """

    id: Annotated[uuid.UUID, Shows(event_as="case_id")]
    incident_id: Annotated[uuid.UUID, Shows()]
    source: Annotated[str, Shows()]
    source_id: Annotated[str, Shows()]
    snapshot: CaseSnapshot
    urgency: Annotated[str, Shows()]
    incident: Annotated[dict[str, Any], ROW_ONLY]
    #: Shown by the API's case detail only, beside its ``explanation_zh``. 仅在案件详情中展示。
    explanation: Annotated[dict[str, Any], ROW_ONLY]
    village: Annotated[str | None, Shows(event=False)] = None
    grid: Annotated[str | None, Shows(event=False)] = None
    unit_kind: Annotated[str | None, Shows(event_value=_unit_kind_while_assigned)] = None
    matter_group: Annotated[str | None, Shows()] = None
    dispatched_at: Annotated[datetime | None, Shows(event=False)] = None
    lng: Annotated[float | None, ROW_ONLY] = None
    lat: Annotated[float | None, ROW_ONLY] = None
    phone_hash: Annotated[str | None, ROW_ONLY] = None
    accept_deadline: Annotated[datetime | None, Shows()] = None
    time_basis: Annotated[str | None, Shows()] = None
    provisional: Annotated[bool, Shows()] = False
    merged_into: Annotated[uuid.UUID | None, Shows()] = None
    triage_reason: Annotated[str | None, Shows(event=False)] = None
    decided_by: Annotated[str | None, Shows(event=False)] = None
    rule_id: Annotated[str | None, Shows(event=False)] = None
    rules_version: Annotated[int | None, Shows(event=False)] = None
    jurisdiction_version: Annotated[int | None, Shows(event=False)] = None
    placement_method: Annotated[str | None, ROW_ONLY] = None
    #: The matter is devolved (下放) to the township: in events for the two-way assessment (双向考核).
    devolved: Annotated[bool | None, Shows(api=False)] = None
    #: The reporting grid worker (网格员) or device (设备): 有效上报率 and 误报率 are theirs. 上报人或设备。
    reporter_id: Annotated[str | None, Shows()] = None
    device_id: Annotated[str | None, Shows()] = None
    alarm_type: Annotated[str | None, Shows(event=False)] = None
    #: The supervision task a 整改复查 task follows up. 复查任务所跟进的监管任务。
    follow_up_of: Annotated[uuid.UUID | None, Shows(event=False)] = None
    #: The lane 通道 the case came in: ``live``, or ``bulk`` (a history import 批量导入). Every event of
    #: the case, its later actions' too, goes on that lane's topic, so its events keep their order.
    #: 案件进入的通道；其全部事件（含后续操作）走该通道的主题，保持顺序。
    lane: Annotated[str, ROW_ONLY] = "live"
    #: Identity column, read back only. 自增列，仅读回。
    seq: Annotated[int | None, Shows(row=False, event=False, api=False)] = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CaseRecord:
        """From a ``cases`` row. 由数据库行构建。"""
        return cls(snapshot=CaseSnapshot.model_validate(row["snapshot"]), **{n: row[n] for n in _STORED})

    def to_row(self, *, snapshot_json: dict[str, Any] | None = None) -> dict[str, Any]:
        """Column values (everything but ``seq`` and timestamps). 数据库列值。

        ``snapshot_json``: ``self.snapshot`` dumped as JSON when the caller has it already. 已有的快照 JSON。
        """
        values = {f.name: f.value(self) for f in _ROW}
        values["snapshot"] = snapshot_json if snapshot_json is not None else self.snapshot.model_dump(mode="json")
        return values

    def event_fields(self) -> dict[str, Any]:
        """The descriptive fields every :class:`~shared.events.CaseEvent` carries. 案件事件的描述字段。"""
        return {f.event_as: f.event_value(self) for f in _EVENT}

    def api_fields(self) -> dict[str, Any]:
        """The case's fields as the API shows them (JSON-ready, in column order). 案件字段的接口表示。"""
        return {f.name: api_value(f.value(self)) for f in _API}

    def event_model(self) -> IncidentReported:
        """The incident as received (an approval or alarm as its own kind). 原始事件。"""
        if "approval" in self.incident:
            return ApprovalReported.model_validate(self.incident)
        if "alarm" in self.incident:
            return AlarmReported.model_validate(self.incident)
        return IncidentReported.model_validate(self.incident)


@dataclass(frozen=True, slots=True)
class SnapshotField:
    """A case field the lifecycle snapshot holds: its name and how it reads. 快照中的案件字段。"""

    name: str
    value: Callable[[CaseSnapshot], Any]
    shows: Shows = Shows()


def _pending_escalation(s: CaseSnapshot) -> str | None:
    return s.escalation_department if s.escalation and s.escalation.pending else None


#: Case fields held by the lifecycle snapshot (authoritative; the columns mirror them for queries).
#: 由状态机快照持有的案件字段（以快照为准；列用于查询）。
SNAPSHOT_FIELDS: tuple[SnapshotField, ...] = (
    SnapshotField("state", lambda s: str(s.state)),
    SnapshotField("version", operator.attrgetter("version")),
    SnapshotField("township", lambda s: s.township or None),
    SnapshotField("unit", operator.attrgetter("primary_unit")),
    SnapshotField("cohandlers", lambda s: list(s.cohandlers)),
    SnapshotField("escalated_to", _pending_escalation, ROW_ONLY),
    SnapshotField("matter", operator.attrgetter("matter")),
    SnapshotField("reported_at", operator.attrgetter("reported_at")),
    SnapshotField("deadline", operator.attrgetter("deadline")),
    SnapshotField("reject_window_ends_at", operator.attrgetter("reject_window_ends_at"), Shows(event=False)),
    SnapshotField("overdue", operator.attrgetter("overdue")),
    SnapshotField("self_handled", operator.attrgetter("self_handled"), Shows(row=False, api=False)),
    SnapshotField("kind", operator.attrgetter("kind")),
    SnapshotField("occurrences", operator.attrgetter("occurrences")),
    SnapshotField("invalid_reason", operator.attrgetter("invalid_reason")),
    SnapshotField("inspection_result", operator.attrgetter("inspection_result")),
    SnapshotField("enforcement_case_no", operator.attrgetter("enforcement_case_no"), _NOT_IN_EVENTS),
    SnapshotField("follow_up_case", operator.attrgetter("follow_up_case"), _NOT_IN_EVENTS),
    SnapshotField("close_reason", operator.attrgetter("close_reason"), _NOT_IN_EVENTS),
    SnapshotField("false_alarm", operator.attrgetter("false_alarm"), _NOT_IN_EVENTS),
    SnapshotField("assignee", operator.attrgetter("assignee")),
    SnapshotField("assignee_kind", operator.attrgetter("assignee_kind"), Shows(row=False, api=False)),
    SnapshotField("assignees", lambda s: list(s.assignees)),
)


def api_value(value: Any) -> Any:
    """A field value as JSON: times in ISO 8601, ids as text. 字段值的 JSON 形式。"""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@dataclass(frozen=True, slots=True)
class CaseField:
    """One declared case field, resolved: how to read it from a record, and where it shows. 已解析的案件字段。"""

    name: str
    value: Callable[[CaseRecord], Any]
    shows: Shows
    event_as: str
    event_value: Callable[[CaseRecord], Any]


def _of_snapshot(read: Callable[[CaseSnapshot], Any]) -> Callable[[CaseRecord], Any]:
    return lambda record: read(record.snapshot)


def _declared() -> tuple[CaseField, ...]:
    """Every case field, in the order of the ``cases`` columns (fields with no column last). 全部案件字段。

    Checked against the table: each column but ``snapshot``, ``seq`` and the timestamps is
    declared exactly once, and every field shown in the row has a column. 与数据表核对。
    """
    hints = get_type_hints(CaseRecord, include_extras=True)
    declared: dict[str, tuple[Callable[[CaseRecord], Any], Shows]] = {}
    for f in fields(CaseRecord):
        shows = next((m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, Shows)), None)
        if shows is not None:
            declared[f.name] = (operator.attrgetter(f.name), shows)
    for s in SNAPSHOT_FIELDS:
        if s.name in declared:
            raise TypeError(f"case field {s.name!r} declared twice")
        declared[s.name] = (_of_snapshot(s.value), s.shows)
    columns = [c.name for c in cases.columns if c.name not in ("snapshot", "seq", "created_at", "updated_at")]
    written = {name for name, (_, shows) in declared.items() if shows.row}
    if set(columns) != written:
        raise TypeError(f"cases columns and declared row fields differ: {sorted(set(columns) ^ written)}")
    resolved: list[CaseField] = []
    for name in columns + [name for name in declared if name not in written]:
        value, shows = declared[name]
        resolved.append(CaseField(name, value, shows, shows.event_as or name, shows.event_value or value))
    return tuple(resolved)


#: Every case field, resolved once. 全部案件字段（解析一次）。
CASE_FIELDS = _declared()
_STORED = tuple(f.name for f in fields(CaseRecord) if f.name != "snapshot")
_ROW = tuple(f for f in CASE_FIELDS if f.shows.row)
_EVENT = tuple(f for f in CASE_FIELDS if f.shows.event)
_API = tuple(f for f in CASE_FIELDS if f.shows.api)
