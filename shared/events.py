"""The platform's one versioned event contract (事件契约).

Every Kafka message is a CloudEvents-style envelope (:class:`EventEnvelope`)
whose ``data`` is the pydantic payload model registered for its ``type``.
The same attributes travel as Kafka headers (``ce_id``, ``ce_type``,
``ce_source``, ``ce_time``, ``ce_schema_version``, ``correlation_id``) so a
consumer can route or dead-letter a message without parsing its body.

Event types are facts in the past tense. Topics and their payloads are listed
in :data:`TOPICS`; ``docs/events.md`` is generated from this module
(``python -m shared.event_docs > docs/events.md``, rendered by :mod:`shared.event_docs`) and a test
keeps it in sync.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.vocabulary import (
    AlarmLevel,
    ApprovalResult,
    CaseKind,
    Crs,
    DeviceKind,
    InspectionResult,
    InvalidReason,
    Source,
    TimeBasis,
    Urgency,
)

SCHEMA_VERSION = 1
#: Namespace of the deterministic event ids: uuid5(NS, "<source>:<source id>").
EVENT_ID_NAMESPACE = uuid.UUID("6f1c7c1e-3b1a-5d2e-9a57-2c1d0e8f4b11")


def incident_event_id(source: str, source_id: str) -> uuid.UUID:
    """Deterministic event id of a producer's record: every service derives the same one."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{source_id}")


def alarm_cleared_event_id(alarm_event_id: uuid.UUID) -> uuid.UUID:
    """Deterministic id of an alarm's ``alarm.cleared`` event (one clearing per alarm). 告警恢复事件 id。"""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{alarm_event_id}:cleared")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# --------------------------------------------------------------------------- incident.reported


class GeoPoint(_Payload):
    """A WGS-84 point (after conversion) and what the producer sent."""

    lng: float
    lat: float
    original_crs: Crs = "wgs84"
    original_lng: float
    original_lat: float


class CallerRef(_Payload):
    """来电人 without personal data: the masked phone and a salted hash for linking repeat callers."""

    phone_masked: str | None = None
    phone_hash: str | None = None
    anonymous: bool = False


class IncidentReported(_Payload):
    """事件上报: one normalised shape for 12345 工单, 数字城管 案卷 and 网格员 上报."""

    event_id: uuid.UUID
    source: Source
    source_id: str = Field(description="ticket_no / case_no / report_id as the producer sent it")
    reported_at: datetime = Field(description="受理/上报时间, timezone-aware")
    received_at: datetime = Field(description="when intake accepted it")
    title: str | None = None
    description: str
    category_codes: dict[str, str] = Field(
        description="the source's own codes, verbatim (category_code / major_code+minor_code+kind / event_type)"
    )
    category_key: str = Field(description="the key source_mappings use: '<category>' / '<major>-<minor>' / '<type>'")
    category_name: str | None = Field(None, description="mapped category label when known")
    location: GeoPoint | None = None
    address: str | None = None
    division_code: str | None = None
    grid_code: str | None = None
    cell_code: str | None = None
    urgency: Urgency = "normal"
    reporter_kind: str = Field(description="caller / supervisor / public / leader / media / sensor / grid_worker")
    appeal_type: str | None = None
    channel: str | None = None
    caller: CallerRef | None = None
    worker_id: str | None = None
    component_id: str | None = None
    self_handled: bool = False
    attachments: list[str] = Field(default_factory=list)


class ApplicantRef(_Payload):
    """申请人 without personal data: an org's name and 统一社会信用代码 as sent; a person's ID number
    masked (``330***********1234``) plus a salted hash, the name left in intake's raw record."""

    kind: Literal["org", "person"]
    name: str | None = Field(None, description="an org's name; null for a person (personal data)")
    credit_code: str | None = Field(None, description="统一社会信用代码 (org) or the masked ID number (person)")
    id_hash: str | None = Field(None, description="a person's ID number, salted hash (links repeat applicants)")


class ApprovalFacts(_Payload):
    """审批办件 facts: what the approval system sent about the decision."""

    approval_no: str
    item_code: str = Field(description="审批事项 code in the government-service catalogue")
    item_name: str | None = None
    result: ApprovalResult = Field(
        description="approved 准予 / approved_with_conditions 附条件准予 / denied 不予许可 / revoked 撤销"
    )
    approved_at: datetime = Field(description="办结时间")
    applicant: ApplicantRef
    conditions: str | None = Field(None, description="承诺事项 / 许可条件")
    supervise_within_days: int | None = Field(None, description="working days by which the first check is due")


class ApprovalReported(IncidentReported):
    """审批办件 双推送: an approval decision, for 事中事后监管 (a supervision task 监管任务 unless denied)."""

    approval: ApprovalFacts


class AlarmFacts(_Payload):
    """监测告警 facts: the device, the alarm and its reading."""

    alarm_id: str
    device_id: str
    device_kind: DeviceKind
    alarm_type: str = Field(description="the monitoring system's own code (source_mappings.alarm)")
    raised_at: datetime
    cleared_at: datetime | None = None
    level: AlarmLevel
    confidence: float | None = Field(None, description="0–1, video AI")
    value: float | None = None
    threshold: float | None = None
    snapshot_url: str | None = None


class AlarmReported(IncidentReported):
    """监测告警: a video-AI or sensor alarm (日常监测监控)."""

    alarm: AlarmFacts


class AlarmCleared(_Payload):
    """告警恢复: an alarm posted again with ``cleared_at`` (and possibly a new ``level``) added."""

    event_id: uuid.UUID = Field(description="the alarm's own event id (its alarm.reported)")
    source: Literal["alarm"] = "alarm"
    source_id: str = Field(description="alarm_id")
    cleared_at: datetime
    level: AlarmLevel
    received_at: datetime = Field(description="when intake accepted the update")


# --------------------------------------------------------------------------- case.events


class ActorRef(_Payload):
    role: str
    unit: str | None = None
    township: str | None = None
    name: str | None = None


class CaseEvent(_Payload):
    """A fact about one case (案件). ``type`` says which; fields not relevant to it stay null.

    Every event carries the case's identity and where it stands after the
    transition, so a consumer (metrics) can fold events in any order.
    """

    case_id: uuid.UUID
    version: int = Field(description="case version after this transition")
    occurred_at: datetime
    actor: ActorRef
    state: str = Field(description="state after the transition")
    previous_state: str | None = None
    incident_id: uuid.UUID | None = None
    source: Source | None = None
    source_id: str | None = None
    township: str | None = None
    unit: str | None = Field(None, description="primary unit after the transition")
    unit_kind: str | None = None
    matter: str | None = None
    matter_group: str | None = None
    urgency: Urgency | None = None
    reported_at: datetime | None = None
    deadline: datetime | None = None
    time_basis: TimeBasis | None = None
    accept_deadline: datetime | None = None
    provisional: bool = False
    devolved: bool | None = Field(
        None, description="the matter is devolved (下放) to the case's township; null = not known (payload v1)"
    )
    reason: str | None = None
    note: str | None = None
    # action-specific facts
    triage_reason: str | None = None
    merged_into: uuid.UUID | None = None
    rejected_unit: str | None = None
    rejection_valid: bool | None = None
    extension_approved: bool | None = None
    verification_passed: bool | None = None
    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"] | None = None
    solved: bool | None = None
    department: str | None = None
    cohandlers: list[str] = Field(default_factory=list)
    overdue: bool = False
    self_handled: bool = False
    # 派单到人 (since case.member_assigned): who of the handling unit holds the task; empty before.
    assignee: str | None = Field(None, description="member or team id the handling unit sent 派单到人")
    assignee_kind: Literal["member", "team"] | None = None
    assignees: list[str] = Field(default_factory=list, description="member ids holding the task")
    details: dict[str, Any] = Field(default_factory=dict)
    # since the approval and alarm sources (optional: absent on earlier events)
    kind: CaseKind = Field("incident", description="incident 事件 / inspection 监管任务")
    reporter_id: str | None = Field(None, description="the reporting grid worker (网格员) or device (设备)")
    device_id: str | None = None
    invalid_reason: InvalidReason | None = Field(None, description="不予立案/作废 reason (case.invalidated)")
    inspection_result: InspectionResult | None = None
    occurrences: int | None = Field(None, description="告警次数: occurrences joined to an alarm case")


# --------------------------------------------------------------------------- jurisdiction.changed


class DevolutionItemChanged(_Payload):
    """One matter of one township whose devolution mode changes from a day (下放清单调整的一项)."""

    township: str
    matter: str
    effective_from: str = Field(description="first day of the new mode, Asia/Shanghai (YYYY-MM-DD)")
    before: Literal["devolved", "entrusted", "assist", "none"] = Field(description="mode in force that day before")
    after: Literal["devolved", "entrusted", "assist", "none"] = Field(description="mode from that day; none = 收回")
    before_document: str | None = Field(None, description="文号 of the entry that was in force")
    document: str = Field(description="文号 of this decision")


class DevolutionChanged(_Payload):
    """下放清单调整: who recorded which decision (文号), and its items."""

    document: str
    recorded_by: str | None = None
    items: list[DevolutionItemChanged]


class JurisdictionChanged(_Payload):
    """辖区变更: a county's jurisdiction bundle, rule set or devolution list was changed.

    ``change = devolution`` (a dated devolution decision, a new bundle version) carries the diff in
    ``devolution``; the field is absent (null) for the other changes.
    """

    county_code: str
    version: int = Field(description="jurisdiction version after the change")
    rules_version: int
    digest: str
    change: Literal["bundle", "rules", "devolution"]
    devolution: DevolutionChanged | None = Field(None, description="the diff, when change = devolution")


# --------------------------------------------------------------------------- operation.events


class OperationEvent(_Payload):
    """联合执法: a fact about one joint operation — opened, a unit confirmed (报到), concluded, cancelled.

    Every event carries where the operation stands after it (state, units, window, cases), so a consumer
    (监督问责) can fold them in any order. Member ids of the people sent are listed; never positions.
    """

    operation_id: uuid.UUID
    version: int = Field(description="operation version after this transition")
    occurred_at: datetime
    actor: ActorRef
    state: Literal["open", "concluded", "cancelled"]
    township: str
    lead_unit: str
    units: list[str] = Field(description="participating units, the lead unit first")
    starts_at: datetime
    ends_at: datetime
    cases: list[uuid.UUID] = Field(default_factory=list)
    unit: str | None = Field(None, description="operation.confirmed: the unit that confirmed 报到单位")
    late: bool | None = Field(None, description="operation.confirmed: after the start 迟到")
    people: list[str] = Field(default_factory=list, description="operation.confirmed: member ids sent 出动人员")
    confirmed_late: list[str] = Field(default_factory=list, description="units that confirmed after the start")
    absent: list[str] = Field(default_factory=list, description="operation.concluded: units never confirmed 未报到")
    result: str | None = None
    apply_result: Literal["resolve", "leave"] | None = None
    reason: str | None = None


# --------------------------------------------------------------------------- envelope

DataT = TypeVar("DataT", bound=BaseModel)


class EventEnvelope(BaseModel, Generic[DataT]):
    """CloudEvents-style envelope around every payload."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    type: str
    source: str = Field(description="emitting service and producer, e.g. /intake/12345")
    time: datetime
    schema_version: int = SCHEMA_VERSION
    correlation_id: str
    subject: str | None = Field(None, description="what the event is about; the Kafka key")
    data: DataT

    def to_bytes(self, *, data_json: str | bytes | None = None) -> bytes:
        """The envelope as JSON. ``data_json`` is the payload already serialised
        (``data.model_dump_json()``), spliced in as is instead of serialising the payload again.
        信封序列化为 JSON；``data_json`` 为已序列化的载荷，原样嵌入，免去再次序列化。"""
        if data_json is None:
            return orjson.dumps(self.model_dump(mode="json"))
        head = self.model_dump(mode="json", exclude={"data"})
        head["data"] = orjson.Fragment(data_json)
        return orjson.dumps(head)

    def header_pairs(self) -> list[tuple[str, str]]:
        """CloudEvents attributes as Kafka header (name, text) pairs. 作为 Kafka 消息头的 CloudEvents 属性。"""
        return [
            ("ce_id", str(self.id)),
            ("ce_type", self.type),
            ("ce_source", self.source),
            ("ce_time", self.time.isoformat()),
            ("ce_schema_version", str(self.schema_version)),
            ("correlation_id", self.correlation_id),
        ]

    def headers(self) -> list[tuple[str, bytes]]:
        return [(name, value.encode()) for name, value in self.header_pairs()]


# --------------------------------------------------------------------------- topic registry


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    key: str
    partitions: int
    event_types: dict[str, type[BaseModel]] = field(default_factory=dict)
    #: Consumer groups that must have an event before its producer's outbox lets it go; a topic
    #: without any (read by per-replica groups) keeps its events for the configured retention.
    #: 事件须被这些消费组全部提交后，生产方发件箱才释放它；无固定消费组的主题按配置时长保留。
    consumer_groups: tuple[str, ...] = ()
    #: The lane 通道 its records travel in: ``live`` (today's work) or ``bulk`` (a history import).
    #: Each lane has its own outbox relay, so a live record never waits behind an import's backlog;
    #: a key's records all travel in one lane (keys keep their order within a topic only).
    #: 记录所走通道：实时或批量导入。各通道有自己的发件箱中继，实时记录不会排在导入积压之后。
    lane: Literal["live", "bulk"] = "live"


#: The lanes 通道, in the order their outbox relays are numbered (``outbox_pending.lane``). 通道及其编号。
LANES: tuple[Literal["live", "bulk"], ...] = ("live", "bulk")


def topic_lane(topic: str) -> int:
    """The lane number of ``topic`` (0 live, 1 bulk; a topic not in the registry is live). 主题所属通道编号。"""
    spec = TOPICS.get(topic)
    return LANES.index(spec.lane) if spec is not None else 0


INCIDENT_REPORTED = "incident.reported"
#: The bulk lane 批量导入通道: the same events, posted as a history import; consumed after live ones.
INCIDENT_REPORTED_BULK = "incident.reported.bulk"
CASE_EVENTS = "case.events"
#: The case events of cases a history import created 批量导入案件的事件: the same contract as ``case.events``;
#: every event of such a case (its later actions too) goes here, so a case's events keep their order.
CASE_EVENTS_BULK = "case.events.bulk"
JURISDICTION_CHANGED = "jurisdiction.changed"
OPERATION_EVENTS = "operation.events"

CASE_EVENT_TYPES: tuple[str, ...] = (
    "case.dispatched",
    "case.triage_required",
    "case.merged",
    "case.self_handled",
    "case.assigned",
    "case.accepted",
    "case.rejected",
    "case.rejection_ruled",
    "case.extension_requested",
    "case.extended",
    "case.extension_denied",
    "case.reassigned",
    "case.resolved",
    "case.verified",
    "case.reopened",
    "case.closed",
    "case.callback_recorded",
    "case.supervised",
    "case.escalated",
    "case.reported_in",
    "case.cohandler_added",
    "case.overdue",
    "case.deadline_recomputed",
    # since the approval and alarm sources
    "case.invalidated",
    "case.auto_recovered",
    "case.false_alarm",
    "case.occurrence_added",
    "case.inspected",
    "case.revoked",
    "case.member_assigned",
)

OPERATION_EVENT_TYPES: tuple[str, ...] = (
    "operation.opened",
    "operation.confirmed",
    "operation.concluded",
    "operation.cancelled",
)

TOPICS: dict[str, TopicSpec] = {
    INCIDENT_REPORTED: TopicSpec(
        name=INCIDENT_REPORTED,
        description="Every accepted producer record, normalised (intake → dispatch); approvals and alarms "
        "as their own kinds, and an alarm's clearing (consumers ignore kinds they do not handle).",
        key="event id (one record = one case; all its events keep their order)",
        partitions=6,
        event_types={
            "incident.reported": IncidentReported,
            "approval.reported": ApprovalReported,
            "alarm.reported": AlarmReported,
            "alarm.cleared": AlarmCleared,
        },
        consumer_groups=("dispatch",),
    ),
    INCIDENT_REPORTED_BULK: TopicSpec(
        name=INCIDENT_REPORTED_BULK,
        description="The bulk lane 批量导入通道: records a producer posted as a history import "
        "(intake's batch endpoints with `?lane=bulk`), the same contract as `incident.reported`. "
        "Dispatch applies them only while no live batch is in hand, so a live report never waits "
        "behind an import (intake → dispatch).",
        key="event id",
        partitions=6,
        event_types={"incident.reported": IncidentReported},
        consumer_groups=("dispatch-bulk",),
        lane="bulk",
    ),
    CASE_EVENTS: TopicSpec(
        name=CASE_EVENTS,
        description="Every case transition (dispatch → metrics, dashboard).",
        key="case id",
        partitions=6,
        event_types={t: CaseEvent for t in CASE_EVENT_TYPES},
        consumer_groups=("metrics",),
    ),
    CASE_EVENTS_BULK: TopicSpec(
        name=CASE_EVENTS_BULK,
        description="Every transition of a case a history import created (批量导入案件), its later actions "
        "too: the same contract as `case.events`, in the bulk lane so a live case's events never wait "
        "behind an import's (dispatch → metrics).",
        key="case id",
        partitions=6,
        event_types={t: CaseEvent for t in CASE_EVENT_TYPES},
        consumer_groups=("metrics",),
        lane="bulk",
    ),
    JURISDICTION_CHANGED: TopicSpec(
        name=JURISDICTION_CHANGED,
        description="A county's jurisdiction or rule set was replaced (grid → dispatch, metrics).",
        key="county code",
        partitions=1,
        event_types={"jurisdiction.changed": JurisdictionChanged},
    ),
    OPERATION_EVENTS: TopicSpec(
        name=OPERATION_EVENTS,
        description="Every joint operation (联合执法) transition: opened, 报到, concluded, cancelled (dispatch → "
        "whoever follows lateness and absence, e.g. 监督问责).",
        key="operation id",
        partitions=3,
        event_types={t: OperationEvent for t in OPERATION_EVENT_TYPES},
        consumer_groups=("metrics-operations",),
    ),
}

PAYLOAD_BY_TYPE: dict[str, type[BaseModel]] = {
    t: model for spec in TOPICS.values() for t, model in spec.event_types.items()
}


def dlq_topic(topic: str) -> str:
    """The dead-letter topic beside a consumed topic."""
    return f"{topic}.dlq"


def all_topic_names() -> list[str]:
    return [n for t in TOPICS for n in (t, dlq_topic(t))]


class ContractError(ValueError):
    """A message that does not fit the event contract (goes to the DLQ)."""


#: ``EventEnvelope[model]`` per payload model, built once (pydantic's own lookup of a parametrised
#: generic costs more than validating a small envelope). 各载荷模型的参数化信封类（只构建一次）。
_ENVELOPE_CLASSES: dict[type[BaseModel], Any] = {}


def envelope_class(model: type[BaseModel]) -> Any:
    """``EventEnvelope[model]`` (cached). 载荷模型对应的信封类（缓存）。"""
    cls = _ENVELOPE_CLASSES.get(model)
    if cls is None:
        cls = _ENVELOPE_CLASSES[model] = EventEnvelope[model]  # type: ignore[valid-type]
    return cls


def decode_envelope(raw: bytes | None) -> EventEnvelope[Any]:
    """Parse bytes into an envelope with a typed payload; raise :class:`ContractError` if it does not fit."""
    if raw is None:
        raise ContractError("empty message value")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ContractError("envelope is not a JSON object")
    etype = obj.get("type")
    model = PAYLOAD_BY_TYPE.get(etype) if isinstance(etype, str) else None
    if model is None:
        raise ContractError(f"unknown event type {etype!r}")
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ContractError(f"unsupported schema_version {version!r} for {etype}")
    try:
        envelope: EventEnvelope[Any] = envelope_class(model).model_validate(obj)
        return envelope
    except ValidationError as exc:
        raise ContractError(f"invalid {etype}: {exc.errors(include_url=False)}") from exc


def make_envelope(
    *,
    event_type: str,
    data: BaseModel,
    source: str,
    correlation_id: str,
    subject: str | None,
    time: datetime,
    event_id: uuid.UUID | None = None,
) -> EventEnvelope[Any]:
    if PAYLOAD_BY_TYPE.get(event_type) is not type(data):
        raise ContractError(f"{type(data).__name__} is not the payload of {event_type}")
    model: Any = envelope_class(type(data))
    return model(
        id=event_id or uuid.uuid4(),
        type=event_type,
        source=source,
        time=time,
        correlation_id=correlation_id,
        subject=subject,
        data=data,
    )
