"""Dispatch's application service (派遣应用服务): cases, transitions, events.

Every function takes keyword-only arguments and the caller's session; nothing
here commits (the unit of work or the consumer runner does). Each state change
writes, in the caller's transaction: the case row, one ``case_transitions`` row
per transition and one outbox event per transition, with deterministic ids —
``cases.id = uuid5(CASE_NAMESPACE, incident id)`` and
``event id = uuid5(case id, "<version>:<type>")`` — so replaying
``incident.reported`` from offset 0 creates no case and publishes nothing twice.
所有函数只用关键字参数、使用调用方的会话且从不提交。案件行、时间线行与发件箱事件同事务写入，
标识确定：重放事件主题不会产生新案件，也不会重复发布事件。

* :func:`handle_incidents` — a batch of ``incident.reported`` in a few set-based statements
  (the consumer's path); :func:`handle_incident` is a batch of one. 批量立案 + 派遣 / 转人工 /
  自办 / 并案（消费者路径）；:func:`handle_incident` 即一条的批量处理。
* :func:`perform_action` — one lifecycle action under ``SELECT … FOR UPDATE``; after
  a 退单 the case is re-dispatched to the next candidate (or triage). 执行流转。
* :func:`assign_case` — a dispatcher's manual decision (手动派遣). 手动派遣。
* :func:`sweep_overdue` — flag open cases past their deadline, once, across replicas
  (``FOR UPDATE SKIP LOCKED``), with optional auto-escalation. 超期扫描。
* queries for the API: :func:`list_cases`, :func:`get_case`, :func:`get_timeline`,
  :func:`transitions_after`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import operator
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

import orjson
from sqlalchemy import Column, Table, TextClause, any_, false, func, literal, or_, select, text, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.candidates import candidates
from services.dispatch.duplicates import (
    DuplicateMatch,
    OpenCase,
    Report,
    find_duplicate,
    lock_cell,
    lock_cells,
    lock_keys,
    search_box,
)
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.lifecycle import (
    CASE_REPORTED,
    OPEN_STATES,
    Action,
    Actor,
    AddCohandlerBody,
    Applied,
    CaseSnapshot,
    CaseState,
    DispatchBody,
    EscalateBody,
    MarkOverdueBody,
    Refused,
    Role,
    SelfHandleBody,
    TimelineEntry,
    TriageBody,
    after_rejection,
    apply,
    can_see,
)
from services.dispatch.models import case_transitions, cases, outbox
from services.dispatch.routing import (
    ACCEPT_WORKING_DAYS,
    REJECT_WINDOW_WORKING_DAYS,
    RoutingDecision,
    RoutingMemo,
    route,
)
from shared.events import CASE_EVENTS, CaseEvent, EventEnvelope, IncidentReported, make_envelope
from shared.logging import get_logger
from shared.messaging.outbox import add_events

log = get_logger(__name__)

#: Namespace of case ids: ``uuid5(CASE_NAMESPACE, str(incident event id))``. 案件 id 命名空间。
CASE_NAMESPACE = uuid.UUID("0b7d6c2e-5a43-5f0e-8d2a-6f3c1e9b4a71")
#: ``source`` of the events dispatch publishes. 事件来源。
EVENT_SOURCE = "/dispatch"
#: Who the service acts as for automatic transitions. 自动流转的操作人。
SYSTEM_ACTOR = Actor(Role.SYSTEM, id="system:dispatch")
#: Routing's co-handlers and the sweep's auto-escalation act with admin rights, recorded as the system.
#: 路由添加协办、超期自动吹哨以管理员权限执行，记录为系统。
SYSTEM_ADMIN = Actor(Role.ADMIN, township="*", id="system:dispatch")
#: 报到 limit after a 吹哨, in working days. 吹哨后报到时限（工作日）。
REPORT_IN_WORKING_DAYS = 1

#: Actions the API exposes on ``POST /v1/cases/{id}/actions/{action}``. API 开放的操作。
API_ACTIONS: tuple[Action, ...] = (
    Action.ACCEPT,
    Action.REJECT,
    Action.REQUEST_EXTENSION,
    Action.DECIDE_EXTENSION,
    Action.RULE_REJECTION,
    Action.REASSIGN,
    Action.RESOLVE,
    Action.VERIFY,
    Action.CLOSE,
    Action.CALLBACK,
    Action.REOPEN,
    Action.SUPERVISE,
    Action.ESCALATE,
    Action.REPORT_IN,
    Action.ADD_COHANDLER,
    Action.ASSIGN,
)

_RUNNING_STATES = sorted(str(s) for s in OPEN_STATES - {CaseState.RESOLVED})


_CASE_NAMESPACE_BYTES = CASE_NAMESPACE.bytes
#: Bits :func:`uuid.uuid5` sets: RFC 4122 variant (10xx) and version 5. uuid5 设置的变体与版本位。
_UUID5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID5_SET = (0x8000 << 48) | (5 << 76)


def _uuid5(namespace: bytes, name: str) -> uuid.UUID:
    """:func:`uuid.uuid5` of a namespace given as bytes (the same id, about twice as fast). 同 uuid5，更快。"""
    digest = int.from_bytes(hashlib.sha1(namespace + name.encode()).digest()[:16], "big")
    return uuid.UUID(int=(digest & _UUID5_CLEAR) | _UUID5_SET)


def case_id_for(incident_id: uuid.UUID) -> uuid.UUID:
    """The case id of an incident (deterministic). 事件对应的案件 id（确定性）。"""
    return _uuid5(_CASE_NAMESPACE_BYTES, str(incident_id))


def event_id_for(case_id: uuid.UUID, version: int, event_type: str) -> uuid.UUID:
    """The id of the event a transition publishes (deterministic). 流转事件 id（确定性）。"""
    return _uuid5(case_id.bytes, f"{version}:{event_type}")


# --------------------------------------------------------------------------- the case record 案件记录


@dataclass
class CaseRecord:
    """A case row in memory: the lifecycle snapshot plus dispatch's own facts. 内存中的案件行。"""

    id: uuid.UUID
    incident_id: uuid.UUID
    source: str
    source_id: str
    snapshot: CaseSnapshot
    urgency: str
    incident: dict[str, Any]
    explanation: dict[str, Any]
    village: str | None = None
    grid: str | None = None
    unit_kind: str | None = None
    matter_group: str | None = None
    dispatched_at: datetime | None = None
    lng: float | None = None
    lat: float | None = None
    phone_hash: str | None = None
    accept_deadline: datetime | None = None
    time_basis: str | None = None
    provisional: bool = False
    merged_into: uuid.UUID | None = None
    triage_reason: str | None = None
    decided_by: str | None = None
    rule_id: str | None = None
    rules_version: int | None = None
    jurisdiction_version: int | None = None
    placement_method: str | None = None
    devolved: bool | None = None
    seq: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CaseRecord:
        """From a ``cases`` row. 由数据库行构建。"""
        return cls(
            id=row["id"],
            incident_id=row["incident_id"],
            source=row["source"],
            source_id=row["source_id"],
            snapshot=CaseSnapshot.model_validate(row["snapshot"]),
            urgency=row["urgency"],
            incident=row["incident"],
            explanation=row["explanation"],
            village=row["village"],
            grid=row["grid"],
            unit_kind=row["unit_kind"],
            matter_group=row["matter_group"],
            dispatched_at=row["dispatched_at"],
            lng=row["lng"],
            lat=row["lat"],
            phone_hash=row["phone_hash"],
            accept_deadline=row["accept_deadline"],
            time_basis=row["time_basis"],
            provisional=row["provisional"],
            merged_into=row["merged_into"],
            triage_reason=row["triage_reason"],
            decided_by=row["decided_by"],
            rule_id=row["rule_id"],
            rules_version=row["rules_version"],
            jurisdiction_version=row["jurisdiction_version"],
            placement_method=row["placement_method"],
            devolved=row["devolved"],
            seq=row["seq"],
        )

    def to_row(self, *, snapshot_json: dict[str, Any] | None = None) -> dict[str, Any]:
        """Column values (everything but ``seq`` and timestamps). 数据库列值。

        ``snapshot_json``: ``self.snapshot`` dumped as JSON when the caller has it already. 已有的快照 JSON。
        """
        s = self.snapshot
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "source": self.source,
            "source_id": self.source_id,
            "state": str(s.state),
            "version": s.version,
            "township": s.township or None,
            "village": self.village,
            "grid": self.grid,
            "unit": s.primary_unit,
            "unit_kind": self.unit_kind,
            "cohandlers": list(s.cohandlers),
            "escalated_to": s.escalation_department if s.escalation and s.escalation.pending else None,
            "matter": s.matter,
            "matter_group": self.matter_group,
            "urgency": self.urgency,
            "reported_at": s.reported_at,
            "dispatched_at": self.dispatched_at,
            "lng": self.lng,
            "lat": self.lat,
            "phone_hash": self.phone_hash,
            "deadline": s.deadline,
            "accept_deadline": self.accept_deadline,
            "reject_window_ends_at": s.reject_window_ends_at,
            "time_basis": self.time_basis,
            "provisional": self.provisional,
            "overdue": s.overdue,
            "merged_into": self.merged_into,
            "triage_reason": self.triage_reason,
            "decided_by": self.decided_by,
            "rule_id": self.rule_id,
            "rules_version": self.rules_version,
            "jurisdiction_version": self.jurisdiction_version,
            "placement_method": self.placement_method,
            "devolved": self.devolved,
            "explanation": self.explanation,
            "snapshot": snapshot_json if snapshot_json is not None else s.model_dump(mode="json"),
            "incident": self.incident,
        }

    def event_model(self) -> IncidentReported:
        """The incident as received. 原始事件。"""
        return IncidentReported.model_validate(self.incident)


@dataclass
class _Pending:
    """Transitions computed in memory, written together. 待写入的流转。"""

    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)


#: :class:`ActorRef` fields of the actors seen so far (actors repeat: the system, intake per source).
#: 已出现操作人的 ActorRef 字段（操作人大量重复）。
_ACTOR_FIELDS: dict[Actor, Mapping[str, Any]] = {}


def _actor_fields(actor: Actor) -> Mapping[str, Any]:
    """The :class:`ActorRef` of ``actor`` as fields to validate (cached, never mutated). 操作人字段（缓存）。"""
    found = _ACTOR_FIELDS.get(actor)
    if found is None:
        if len(_ACTOR_FIELDS) >= 1024:
            _ACTOR_FIELDS.clear()
        found = _ACTOR_FIELDS[actor] = MappingProxyType(
            {"role": str(actor.role), "unit": actor.unit, "township": actor.township, "name": actor.id}
        )
    return found


def _unit_kind(loaded: LoadedJurisdiction | None, unit_id: str | None, fallback: str | None = None) -> str | None:
    if unit_id is None:
        return None
    unit = loaded.snapshot.unit(unit_id) if loaded is not None else None
    return unit.kind if unit is not None else fallback


def _case_event(
    record: CaseRecord,
    *,
    event_type: str,
    at: datetime,
    actor: Actor,
    previous_state: str | None,
    extra: Mapping[str, Any] | None = None,
) -> CaseEvent:
    """The :class:`CaseEvent` of a transition: identity, current facts, and ``extra``. 构建案件事件。

    Every event carries the descriptive fields the metrics reducer reads
    (township, matter, matter_group, source, urgency, time_basis, reported_at,
    deadline, accept_deadline, provisional). 每个事件都带上指标归约所需的描述字段。
    """
    s = record.snapshot
    data: dict[str, Any] = {
        "case_id": record.id,
        "version": s.version,
        "occurred_at": at,
        "actor": _actor_fields(actor),
        "state": str(s.state),
        "previous_state": previous_state,
        "incident_id": record.incident_id,
        "source": record.source,
        "source_id": record.source_id,
        "township": s.township or None,
        "unit": s.primary_unit,
        "unit_kind": record.unit_kind if s.primary_unit else None,
        "matter": s.matter,
        "matter_group": record.matter_group,
        "urgency": record.urgency,
        "reported_at": s.reported_at,
        "deadline": s.deadline,
        "time_basis": record.time_basis,
        "accept_deadline": record.accept_deadline,
        "provisional": record.provisional,
        "cohandlers": list(s.cohandlers),
        "overdue": s.overdue,
        "self_handled": s.self_handled,
        "merged_into": record.merged_into,
    }
    data.update(extra or {})
    return CaseEvent.model_validate(data)


def _stage(
    pending: _Pending,
    record: CaseRecord,
    *,
    event_type: str,
    action: str | None,
    actor: Actor,
    at: datetime,
    previous_state: str | None,
    body: dict[str, Any],
    changes: dict[str, Any],
    note: str | None,
    extra: Mapping[str, Any] | None,
    correlation_id: str,
    publish: bool = True,
) -> None:
    """Queue one timeline row and (if ``publish``) its event. 暂存一条时间线及其事件。"""
    s = record.snapshot
    event_id = event_id_for(record.id, s.version, event_type) if publish else None
    pending.rows.append(
        {
            "case_id": record.id,
            "version": s.version,
            "action": action,
            "event_type": event_type,
            "state": str(s.state),
            "previous_state": previous_state,
            "actor_role": str(actor.role),
            "actor_unit": actor.unit,
            "actor_township": actor.township,
            "actor_id": actor.id,
            "occurred_at": at,
            "note": note,
            "body": body,
            "changes": changes,
            "deadline": s.deadline,
            "event_id": event_id,
        }
    )
    if publish:
        data = _case_event(
            record, event_type=event_type, at=at, actor=actor, previous_state=previous_state, extra=extra
        )
        pending.events.append(
            make_envelope(
                event_type=event_type,
                data=data,
                source=EVENT_SOURCE,
                correlation_id=correlation_id,
                subject=str(record.id),
                time=at,
                event_id=event_id,
            )
        )


def _note_of(body: Mapping[str, Any]) -> str | None:
    for key in ("reason", "note", "result"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _extra_for(
    applied: Applied, before: CaseSnapshot, record: CaseRecord, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Action-specific :class:`CaseEvent` fields (what metrics reads per type). 各类事件的专有字段。

    ``body``: ``applied.body`` dumped as JSON when the caller has it already. 已序列化的请求体（可选）。
    """
    if body is None:
        body = applied.body.model_dump(mode="json")
    new = applied.new_case
    extra: dict[str, Any] = {}
    reason = body.get("reason")
    note = body.get("note") or body.get("result")
    if reason:
        extra["reason"] = reason
    if note:
        extra["note"] = note
    t = applied.event_type
    if t == "case.triage_required":
        extra["triage_reason"] = record.triage_reason or reason
    elif t == "case.rejected":
        extra["rejected_unit"] = before.primary_unit
    elif t == "case.rejection_ruled":
        changed = [
            r
            for old, r in zip(before.rejections, new.rejections, strict=True)
            if old.valid != r.valid or (body.get("unit") and r.unit == body.get("unit"))
        ]
        extra["rejected_unit"] = changed[-1].unit if changed else body.get("unit")
        extra["rejection_valid"] = body.get("valid")
    elif t == "case.extension_requested":
        extra["details"] = {"requested_deadline": body.get("new_deadline")}
    elif t in ("case.extended", "case.extension_denied"):
        extra["extension_approved"] = t == "case.extended"
    elif t == "case.verified":
        extra["verification_passed"] = body.get("passed")
    elif t == "case.callback_recorded":
        extra["satisfaction"] = body.get("satisfaction")
        extra["solved"] = body.get("solved")
    elif t == "case.escalated":
        extra["department"] = body.get("department")
        extra["details"] = {"report_deadline": record.accept_deadline.isoformat() if record.accept_deadline else None}
    elif t == "case.cohandler_added":
        # metrics: under this type ``unit`` means the co-handler. 指标约定：此类型的 unit 指协办单位。
        extra["unit"] = body.get("unit")
        extra["unit_kind"] = None
        extra["details"] = {"primary_unit": new.primary_unit, "cohandler": body.get("unit")}
    elif t == "case.self_handled":
        extra["details"] = {"handler": new.handler}
    return extra


def _stage_applied(
    pending: _Pending,
    record: CaseRecord,
    applied: Applied,
    *,
    correlation_id: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Make ``applied`` the record's state and queue its row and event. 应用流转并暂存。"""
    before = record.snapshot
    record.snapshot = applied.new_case
    body = applied.body.model_dump(mode="json")
    merged_extra = {**_extra_for(applied, before, record, body), **(extra or {})}
    _stage(
        pending,
        record,
        event_type=applied.event_type,
        action=str(applied.action),
        actor=applied.actor,
        at=applied.at,
        previous_state=str(before.state),
        body=body,
        changes=applied.changes,
        note=_note_of(body),
        extra=merged_extra,
        correlation_id=correlation_id,
    )


def _must(result: Applied | Refused) -> Applied:
    if isinstance(result, Refused):  # a programming error in the service, never a user error
        raise RuntimeError(f"system transition refused: {result.kind}: {result.reason}")
    return result


def _pg_type(column: Column[Any]) -> str:
    """PostgreSQL type name of a column (for ``CAST(:x AS <type>[])``). 列的 PostgreSQL 类型名。"""
    return str(column.type.compile(dialect=postgresql.dialect()))


def _unnest_insert(table: Table, columns: Sequence[str], *, suffix: str = "") -> TextClause:
    """``INSERT … SELECT * FROM unnest(<one array per column>) ORDER BY ordinality`` (+ ``suffix``).

    One statement whatever the number of rows (arrays unnested server-side, no per-row binds; see
    :func:`shared.messaging.outbox.add_events`); rows are inserted in list order, so identities (``seq``,
    transition ``id``) follow it. Array-typed columns (``text[]``) travel as JSON arrays and JSONB
    columns as JSON, both as UTF-8 bytes (``bytea``, via :func:`_json`: no text decoding and
    re-encoding on the way). 一条语句插入多行：每列一个数组在服务端展开，按列表顺序插入；
    数组列以 JSON 数组、JSONB 列以 JSON 传入，均为 UTF-8 字节（免去文本解码再编码）。
    """
    selected: list[str] = []
    casts: list[str] = []
    for name in columns:
        column = table.c[name]
        if isinstance(column.type, ARRAY):
            element = str(column.type.item_type.compile(dialect=postgresql.dialect()))
            casts.append(f"CAST(:p_{name} AS bytea[])")
            selected.append(
                f"CAST(ARRAY(SELECT jsonb_array_elements_text(CAST(convert_from(u.{name}, 'UTF8') AS jsonb)))"
                f" AS {element}[])"
            )
        elif isinstance(column.type, JSONB):
            casts.append(f"CAST(:p_{name} AS bytea[])")
            selected.append(f"CAST(convert_from(u.{name}, 'UTF8') AS jsonb)")
        else:
            casts.append(f"CAST(:p_{name} AS {_pg_type(column)}[])")
            selected.append(f"u.{name}")
    names = ", ".join(columns)
    return text(
        f"INSERT INTO {table.fullname} ({names}) SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(casts)}) WITH ORDINALITY AS u({names}, ord) ORDER BY u.ord {suffix}"
    )


def _json(value: Any) -> bytes | None:
    """JSON as the engine writes JSONB (orjson), UTF-8 encoded. 与引擎一致的 JSON（UTF-8 字节）。"""
    return None if value is None else orjson.dumps(value)


class _UnnestColumns:
    """The columns of one :func:`_unnest_insert` statement and how their values travel. 批量插入的列。

    :meth:`values` turns a row into its statement values (JSON serialised) — done while staging,
    before any lock is taken; :meth:`params` transposes staged rows into the column arrays.
    :meth:`values` 在暂存时（加锁之前）把一行转为语句值；:meth:`params` 转置为各列数组。
    """

    __slots__ = ("_get", "json", "names", "statement")

    def __init__(self, table: Table, columns: Sequence[str], *, suffix: str = "") -> None:
        self.names = tuple(columns)
        #: Positions of the columns that travel as JSON. 以 JSON 传输的列位置。
        self.json = tuple(i for i, name in enumerate(self.names) if isinstance(table.c[name].type, ARRAY | JSONB))
        self.statement = _unnest_insert(table, self.names, suffix=suffix)
        self._get = operator.itemgetter(*self.names)

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        """Statement values of one row, in column order. 一行的语句值（按列序）。"""
        values = list(self._get(row)) if len(self.names) > 1 else [row[self.names[0]]]
        for i in self.json:
            values[i] = _json(values[i])
        return values

    def params(self, rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
        """The column arrays of ``rows`` (each from :meth:`values`). 各列数组参数。"""
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in self.names]
        return {f"p_{name}": list(column) for name, column in zip(self.names, columns, strict=True)}


#: New cases, many rows in one statement; an incident that has its case already is skipped. 批量立案（已存在则跳过）。
_CASES = _UnnestColumns(
    cases,
    [c.name for c in cases.columns if c.name not in ("seq", "created_at", "updated_at")],
    suffix="ON CONFLICT (incident_id) DO NOTHING RETURNING id",
)
#: Timeline rows, many in one statement. 批量写时间线。
_TRANSITIONS = _UnnestColumns(
    case_transitions, [c.name for c in case_transitions.columns if c.name not in ("id", "recorded_at")]
)


async def _write_staged(
    session: AsyncSession, transitions: Sequence[Sequence[Any]], events: Sequence[EventEnvelope[Any]]
) -> None:
    """Timeline rows (statement values, one statement) and outbox events (one statement). 写时间线与发件箱。"""
    if transitions:
        await session.execute(_TRANSITIONS.statement, _TRANSITIONS.params(transitions))
    if events:
        await add_events(session, outbox, CASE_EVENTS, events)


async def _write(session: AsyncSession, pending: _Pending) -> None:
    """Timeline rows (one statement) and outbox events (one statement). 写时间线与发件箱（各一条语句）。"""
    await _write_staged(session, [_TRANSITIONS.values(row) for row in pending.rows], pending.events)


# --------------------------------------------------------------------------- incidents 立案与派遣


@dataclass(frozen=True)
class IncidentOutcome:
    """What :func:`handle_incident` did. 处理结果。"""

    case_id: uuid.UUID
    status: Literal["created", "exists"]
    outcome: str | None = None  # dispatch / triage / self_handled / merged
    merged_into: uuid.UUID | None = None


def _routing_facts(record: CaseRecord, decision: RoutingDecision) -> None:
    placement = decision.placement
    record.village = placement.village if placement else None
    record.grid = placement.grid if placement else None
    record.placement_method = placement.method if placement else None
    record.matter_group = decision.matter_group
    record.triage_reason = decision.triage_reason
    record.decided_by = decision.decided_by
    record.rule_id = decision.rule_id
    record.rules_version = decision.rules_version
    record.jurisdiction_version = decision.jurisdiction_version
    record.devolved = decision.devolved


#: Duplicate candidates of a whole batch in one statement: for each report ``i``, the open,
#: unmerged cases of its matter in its bounding box and time window, and those of its 12345
#: caller; plus (``i = -1``) the cases the batch's incidents already have (a replay). Each
#: report's lookups are LATERAL subqueries kept apart by ``OFFSET 0``, so they stay index scans
#: per report (the partial indexes) — a join of the unnested arrays against ``cases`` would be
#: planned as a hash join over a scan of every open case. 整批一条语句取并案候选：每条报告 i
#: 的同事项范围内、时间窗内的未结案件，及同一来电人的未结案件；另取（i = -1）本批事件已有的
#: 案件（重放）。每条报告的查找为 LATERAL 子查询（OFFSET 0 防止被展开），保持逐条索引扫描。
_DUPLICATE_CANDIDATES = text(
    f"""
    SELECT b.i, c.id, c.matter, c.reported_at, c.lng, c.lat, c.grid, c.source, c.phone_hash
    FROM unnest(CAST(:box_i AS int[]), CAST(:box_matter AS text[]),
                CAST(:min_lng AS float8[]), CAST(:min_lat AS float8[]),
                CAST(:max_lng AS float8[]), CAST(:max_lat AS float8[]),
                CAST(:t_from AS timestamptz[]), CAST(:t_to AS timestamptz[]))
         AS b(i, matter, min_lng, min_lat, max_lng, max_lat, t_from, t_to)
    CROSS JOIN LATERAL (
        SELECT id, matter, reported_at, lng, lat, grid, source, phone_hash FROM {cases.fullname}
        WHERE state <> 'closed' AND merged_into IS NULL
          AND matter = b.matter AND lat BETWEEN b.min_lat AND b.max_lat
          AND lng BETWEEN b.min_lng AND b.max_lng AND reported_at BETWEEN b.t_from AND b.t_to
        OFFSET 0
    ) c
    UNION ALL
    SELECT p.i, c.id, c.matter, c.reported_at, c.lng, c.lat, c.grid, c.source, c.phone_hash
    FROM unnest(CAST(:phone_i AS int[]), CAST(:phone AS text[])) AS p(i, phone)
    CROSS JOIN LATERAL (
        SELECT id, matter, reported_at, lng, lat, grid, source, phone_hash FROM {cases.fullname}
        WHERE state <> 'closed' AND merged_into IS NULL AND phone_hash IS NOT NULL AND phone_hash = p.phone
        OFFSET 0
    ) c
    UNION ALL
    SELECT -1, incident_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM {cases.fullname} WHERE incident_id = ANY(CAST(:incidents AS uuid[]))
    """
)
#: Take the advisory locks in the (sorted) order given: one round trip. 按给定（已排序）顺序加咨询锁。
_LOCK_KEYS = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k")


@dataclass
class _Routed:
    """One report of a batch, routed in memory, before any database work. 批次中已路由的报告。"""

    event: IncidentReported
    correlation_id: str
    at: datetime
    decision: RoutingDecision
    record: CaseRecord
    #: The duplicate check's view of the report; ``None`` when it is not checked (self-handled, no matter).
    #: 并案检查所用报告；自办或无事项时为 None。
    report: Report | None
    #: The report staged as a new case of its own (not merged), before the locks are taken.
    #: 加锁前按“不并案”预先暂存的新案件。
    staged: _Staged | None = None


@dataclass
class _Staged:
    """A new case staged in memory: its record, timeline rows and events, rows as statement values.

    内存中暂存的新案件：案件记录、时间线与事件；行已转为语句值。"""

    record: CaseRecord
    outcome: str
    pending: _Pending
    #: ``record.snapshot`` as JSON. 快照的 JSON。
    snapshot_json: dict[str, Any]
    case_values: list[Any] = field(default_factory=list)
    transition_values: list[list[Any]] = field(default_factory=list)


def _route_one(
    event: IncidentReported,
    correlation_id: str,
    jurisdiction: LoadedJurisdiction,
    now: datetime,
    memo: RoutingMemo | None = None,
) -> _Routed:
    """Route ``event`` and build its case record (pure). 路由并构建案件记录（无 I/O）。"""
    case_id = case_id_for(event.event_id)
    at = max(now, event.reported_at)
    decision = route(event, jurisdiction.snapshot, now=at, calendar=jurisdiction.calendar, memo=memo)
    record = CaseRecord(
        id=case_id,
        incident_id=event.event_id,
        source=event.source,
        source_id=event.source_id,
        snapshot=CaseSnapshot(
            id=str(case_id),
            township=decision.township or "",
            source=event.source,
            reported_at=event.reported_at,
            matter=decision.matter,
        ),
        urgency=event.urgency,
        incident=event.model_dump(mode="json"),
        explanation=decision.to_dict(),
        lng=event.location.lng if event.location else None,
        lat=event.location.lat if event.location else None,
        phone_hash=event.caller.phone_hash if event.caller and event.source == "12345" else None,
    )
    _routing_facts(record, decision)
    report: Report | None = None
    if decision.outcome != "self_handled" and decision.matter is not None:
        report = Report(
            matter=decision.matter,
            reported_at=event.reported_at,
            lng=record.lng,
            lat=record.lat,
            grid=record.grid,
            source=event.source,
            phone_hash=record.phone_hash,
        )
    return _Routed(event, correlation_id, at, decision, record, report)


def _prime_points(reports: Sequence[tuple[IncidentReported, str]], jurisdiction: LoadedJurisdiction) -> None:
    """Locate the points of ``reports`` in one vectorised query (pure). 一次向量化定位本批坐标（无 I/O）。"""
    jurisdiction.memo.prime_points([(e.location.lng, e.location.lat) for e, _ in reports if e.location is not None])


def _route_batch(
    reports: Sequence[tuple[IncidentReported, str]], jurisdiction: LoadedJurisdiction, now: datetime
) -> list[_Routed]:
    """:func:`_route_one` for every report, sharing the jurisdiction's :class:`RoutingMemo` (pure).

    批量路由：共享记忆化对象（无 I/O）；坐标应已由 :func:`_prime_points` 一次定位（否则逐点定位）。
    The decisions are those of :func:`_route_one` one by one; points primed with
    :func:`_prime_points` are not located again.
    """
    memo = jurisdiction.memo
    return [_route_one(event, correlation_id, jurisdiction, now, memo) for event, correlation_id in reports]


class _BatchCases:
    """Open, unmerged cases created earlier in the same batch, indexed like the database query.

    本批次中已建立、未结且未并案的案件，按数据库查询的方式索引（事项 + 网格单元；来电人）。
    """

    def __init__(self, distance_m: float) -> None:
        self.distance_m = distance_m
        self.by_cell: dict[tuple[str, int, int], list[OpenCase]] = defaultdict(list)
        self.by_caller: dict[str, list[OpenCase]] = defaultdict(list)

    def add(self, record: CaseRecord) -> None:
        """Index a new case if later reports may be merged into it. 若后续报告可能并入则登记。"""
        if record.snapshot.state is CaseState.CLOSED or record.merged_into is not None:
            return
        case = OpenCase(
            case_id=str(record.id),
            matter=record.snapshot.matter,
            reported_at=record.snapshot.reported_at,
            lng=record.lng,
            lat=record.lat,
            grid=record.grid,
            source=record.source,
            phone_hash=record.phone_hash,
        )
        if case.matter is not None and case.lng is not None and case.lat is not None:
            self.by_cell[(case.matter, *lock_cell(case.lng, case.lat))].append(case)
        if case.phone_hash:
            self.by_caller[case.phone_hash].append(case)

    def near(self, report: Report) -> list[OpenCase]:
        """Cases of this batch ``report`` might duplicate (a superset; :func:`find_duplicate` decides).

        本批次中可能与 ``report`` 重复的案件（超集，由 :func:`find_duplicate` 判定）。"""
        found: list[OpenCase] = []
        if report.matter is not None and report.lng is not None and report.lat is not None:
            for x, y in lock_cells(report.lng, report.lat, self.distance_m):
                found += self.by_cell.get((report.matter, x, y), ())
        if report.phone_hash:
            found += self.by_caller.get(report.phone_hash, ())
        return found


async def _lock_and_fetch(
    session: AsyncSession,
    batch: Sequence[_Routed],
    *,
    distance_m: float,
    window: timedelta,
) -> tuple[dict[int, list[OpenCase]], set[uuid.UUID]]:
    """Lock the batch's duplicate keys, then fetch every report's candidates and the incidents seen before.

    加锁（本批全部键，排序后一次取得），再一次查询取各报告的并案候选及已立案的事件。

    Locks: the union of :func:`lock_keys` of the checked reports, sorted, taken in one
    statement — two transactions always take shared keys in the same order (no deadlock).
    Returns ``({batch index: open cases}, {incident ids that have a case already})``.
    """
    checked = [(i, r.report) for i, r in enumerate(batch) if r.report is not None]
    if not checked:
        return {}, set()
    keys = sorted(
        {
            key
            for _, report in checked
            for key in lock_keys(
                matter=report.matter,
                lng=report.lng,
                lat=report.lat,
                phone_hash=report.phone_hash,
                distance_m=distance_m,
            )
        }
    )
    if keys:
        await session.execute(_LOCK_KEYS, {"keys": keys})
    boxes: dict[str, list[Any]] = defaultdict(list)
    phones: dict[str, list[Any]] = defaultdict(list)
    for i, report in checked:
        if report.lng is not None and report.lat is not None:
            min_lng, min_lat, max_lng, max_lat = search_box(report.lng, report.lat, distance_m)
            for name, value in (
                ("box_i", i),
                ("box_matter", report.matter),
                ("min_lng", min_lng),
                ("min_lat", min_lat),
                ("max_lng", max_lng),
                ("max_lat", max_lat),
                ("t_from", report.reported_at - window),
                ("t_to", report.reported_at + window),
            ):
                boxes[name].append(value)
        if report.phone_hash:
            phones["phone_i"].append(i)
            phones["phone"].append(report.phone_hash)
    params: dict[str, Any] = {
        name: boxes.get(name, [])
        for name in ("box_i", "box_matter", "min_lng", "min_lat", "max_lng", "max_lat", "t_from", "t_to")
    }
    params.update(phone_i=phones.get("phone_i", []), phone=phones.get("phone", []))
    params["incidents"] = [r.event.event_id for r in batch]
    nearby: dict[int, list[OpenCase]] = defaultdict(list)
    existing: set[uuid.UUID] = set()
    for row in await session.execute(_DUPLICATE_CANDIDATES, params):
        if row.i < 0:
            existing.add(row.id)
            continue
        nearby[row.i].append(
            OpenCase(
                case_id=str(row.id),
                matter=row.matter,
                reported_at=row.reported_at,
                lng=row.lng,
                lat=row.lat,
                grid=row.grid,
                source=row.source,
                phone_hash=row.phone_hash,
            )
        )
    return nearby, existing


def _stage_new_case(routed: _Routed, duplicate: DuplicateMatch | None) -> _Staged:
    """Stage a new case: merged, or dispatched / triaged / self-handled; its rows as statement values.

    暂存新案件的时间线与事件：并案，或派遣 / 转人工 / 自办；各行转为语句值。``routed.record``
    is left as routed (a copy is staged), so a report staged before the duplicate check can be
    staged again as merged. 暂存的是记录副本，原记录不变，可在并案检查后重新暂存为并案。
    """
    staged = _stage_case_record(routed, duplicate)
    staged.case_values = _CASES.values(staged.record.to_row(snapshot_json=staged.snapshot_json))
    staged.transition_values = [_TRANSITIONS.values(row) for row in staged.pending.rows]
    return staged


def _stage_case_record(routed: _Routed, duplicate: DuplicateMatch | None) -> _Staged:
    """The record, timeline rows and events of :func:`_stage_new_case`. 暂存案件记录、时间线与事件。

    The staged snapshot's JSON is kept up to date from each transition's ``changes`` (the JSON
    values of the fields that differ), so the case row needs no second dump of the snapshot.
    快照 JSON 随各次流转的 ``changes``（变化字段的 JSON 值）更新，案件行无需再次序列化快照。
    """
    record, decision, event, at = copy.copy(routed.record), routed.decision, routed.event, routed.at
    pending, correlation_id = _Pending(), routed.correlation_id
    if duplicate is not None:
        record.merged_into = uuid.UUID(duplicate.case_id)
        record.triage_reason = None
        record.decided_by = None
        record.explanation = {
            **record.explanation,
            "outcome": "merged",
            "merged_into": duplicate.case_id,
            "duplicate": {"reason": duplicate.reason, "distance_m": duplicate.distance_m},
            "explanation_zh": duplicate.explanation_zh,
            "routing_explanation_zh": decision.explanation_zh,
        }
        # A merged report is a closed record linked to the first case: no assignment of its own.
        # 并案件是关联到首件的已结记录，不另行派遣。
        record.snapshot = record.snapshot.model_copy(update={"state": CaseState.CLOSED})
        _stage(
            pending,
            record,
            event_type="case.merged",
            action="merge",
            actor=SYSTEM_ACTOR,
            at=at,
            previous_state=None,
            body={"merged_into": duplicate.case_id, "reason": duplicate.reason},
            changes=(snapshot_json := record.snapshot.model_dump(mode="json")),
            note=duplicate.explanation_zh,
            extra={"reason": duplicate.explanation_zh, "details": {"duplicate_reason": duplicate.reason}},
            correlation_id=correlation_id,
        )
        return _Staged(record, "merged", pending, snapshot_json)
    _stage(
        pending,
        record,
        event_type=CASE_REPORTED,
        action=None,
        actor=Actor(Role.SYSTEM, id=f"intake:{event.source}"),
        at=event.reported_at,
        previous_state=None,
        body={},
        changes=(snapshot_json := record.snapshot.model_dump(mode="json")),
        note=None,
        extra=None,
        correlation_id=correlation_id,
        publish=False,
    )
    details = {
        "decided_by": decision.decided_by,
        "rule_id": decision.rule_id,
        "rules_version": decision.rules_version,
        "jurisdiction_version": decision.jurisdiction_version,
        "placement": decision.placement.to_dict() if decision.placement else None,
    }
    def step(action: Action, body: Any, actor: Actor, extra: Mapping[str, Any] | None = None) -> None:
        """Apply one system transition, stage it and keep the snapshot JSON current. 系统流转一步。"""
        nonlocal snapshot_json
        applied = _must(apply(record.snapshot, action, body, actor, at))
        _stage_applied(pending, record, applied, correlation_id=correlation_id, extra=extra)
        snapshot_json = {**snapshot_json, **applied.changes}

    routing_extra = {"reason": decision.explanation_zh, "details": details}
    if decision.outcome == "dispatch":
        assert decision.unit is not None and decision.deadline is not None
        record.unit_kind = decision.unit_kind
        record.accept_deadline = decision.accept_deadline
        record.time_basis = decision.time_basis
        record.provisional = decision.provisional
        record.dispatched_at = at
        body = DispatchBody(
            expected_version=record.snapshot.version,
            unit=decision.unit,
            deadline=decision.deadline,
            reject_window_ends_at=decision.reject_window_ends_at,
        )
        step(Action.DISPATCH, body, SYSTEM_ACTOR, routing_extra)
        for unit in decision.cohandlers:
            cohandler = AddCohandlerBody(expected_version=record.snapshot.version, unit=unit)
            step(Action.ADD_COHANDLER, cohandler, SYSTEM_ADMIN, {"reason": f"规则 {decision.rule_id}"})
    elif decision.outcome == "triage":
        body_t = TriageBody(expected_version=record.snapshot.version, reason=decision.triage_reason or "triage")
        step(Action.TRIAGE, body_t, SYSTEM_ACTOR, routing_extra)
    else:
        body_s = SelfHandleBody(expected_version=record.snapshot.version, handler=event.worker_id, note="网格员自办")
        step(Action.SELF_HANDLE, body_s, SYSTEM_ACTOR)
    return _Staged(record, decision.outcome, pending, snapshot_json)


#: Reports routed and staged between two yields to the event loop: routing a large batch is pure CPU
#: work, and the partitions applied side by side share one event loop — a transaction holding the
#: duplicate-check locks must not wait for another batch's whole routing between its statements.
#: 两次让出事件循环之间路由并暂存的报告数：各分区共享一个事件循环，持锁事务的语句之间不应等待
#: 另一批次的全部路由计算。
_STAGE_CHUNK = 16


async def _handle_reports(
    session: AsyncSession,
    reports: Sequence[tuple[IncidentReported, str]],
    *,
    jurisdiction: LoadedJurisdiction,
    now: datetime,
    distance_m: float,
    window: timedelta,
) -> list[IncidentOutcome]:
    """The one code path of incidents (see :func:`handle_incidents`). 立案的唯一代码路径。

    Everything that does not depend on the duplicate check — routing, and staging each report
    as a new case of its own with its rows serialised — is done before the advisory locks are
    taken, so a transaction holds them only for the candidate query, the (rare) re-staging as
    merged and the inserts. 与并案检查无关的工作（路由、按不并案预先暂存并序列化）在加锁前完成，
    持锁期间只做候选查询、少量并案重新暂存与插入。
    """
    _prime_points(reports, jurisdiction)
    batch: list[_Routed] = []
    for start in range(0, len(reports), _STAGE_CHUNK):
        if start:
            # Let other partitions' transactions (which may hold the locks this batch needs) go on.
            # 让出事件循环：其他分区的事务（可能持有本批所需的锁）得以继续。
            await asyncio.sleep(0)
        chunk = _route_batch(reports[start : start + _STAGE_CHUNK], jurisdiction, now)
        for routed in chunk:
            routed.staged = _stage_new_case(routed, None)
        batch += chunk
    nearby, existing = await _lock_and_fetch(session, batch, distance_m=distance_m, window=window)
    outcomes: list[IncidentOutcome | None] = []
    new: list[_Staged] = []
    seen: set[uuid.UUID] = set()
    earlier = _BatchCases(distance_m)
    for i, routed in enumerate(batch):
        incident = routed.event.event_id
        if incident in existing or incident in seen:  # replayed, or twice in the batch 重放或同批重复
            outcomes.append(IncidentOutcome(case_id=routed.record.id, status="exists"))
            continue
        seen.add(incident)
        duplicate: DuplicateMatch | None = None
        if routed.report is not None:
            duplicate = find_duplicate(
                routed.report,
                [*nearby.get(i, ()), *earlier.near(routed.report)],
                distance_m=distance_m,
                window=window,
            )
        staged = (
            routed.staged if duplicate is None and routed.staged is not None else _stage_new_case(routed, duplicate)
        )
        earlier.add(staged.record)
        new.append(staged)
        outcomes.append(None)
    inserted: set[uuid.UUID] = set()
    if new:
        result = await session.execute(_CASES.statement, _CASES.params([staged.case_values for staged in new]))
        inserted = set(result.scalars().all())
    transitions: list[list[Any]] = []
    events: list[EventEnvelope[Any]] = []
    for staged in new:
        if staged.record.id in inserted:  # else another replica created it meanwhile 其他副本已创建
            transitions += staged.transition_values
            events += staged.pending.events
    await _write_staged(session, transitions, events)
    created = iter(new)
    result_list: list[IncidentOutcome] = []
    for outcome in outcomes:
        if outcome is not None:
            result_list.append(outcome)
            continue
        record_staged = next(created)
        record = record_staged.record
        if record.id in inserted:
            result_list.append(
                IncidentOutcome(
                    case_id=record.id, status="created", outcome=record_staged.outcome, merged_into=record.merged_into
                )
            )
        else:
            result_list.append(IncidentOutcome(case_id=record.id, status="exists"))
    return result_list


async def handle_incidents(
    *,
    session: AsyncSession,
    envelopes: Sequence[EventEnvelope[Any]],
    jurisdiction: LoadedJurisdiction,
    now: datetime,
    duplicate_distance_m: float = 50.0,
    duplicate_window: timedelta = timedelta(hours=24),
) -> list[IncidentOutcome]:
    """Create the cases of a batch of ``incident.reported`` envelopes (in order), with a few set-based statements.

    批量立案（按序）：少量集合语句完成一批事件的立案、派遣、转人工、自办或并案。

    The same result as :func:`handle_incident` called once per envelope, in order, in this
    transaction — including duplicates *within* the batch (two reports of one spot → one
    case, one merged), replays (an incident with a case already → ``exists``, nothing
    written) and deterministic ids. The database work per batch is: one advisory-lock
    statement (the sorted union of the batch's keys), one query for every report's duplicate
    candidates (and the incidents that have a case already), one multi-row ``INSERT … ON
    CONFLICT DO NOTHING RETURNING`` of cases, one of timeline rows, one of outbox rows.
    与逐条调用 :func:`handle_incident` 结果相同（含批内并案、重放幂等、确定性 id）；
    每批数据库工作：一次加锁、一次候选查询、案件 / 时间线 / 发件箱各一条多行插入。

    Every envelope's ``data`` must be an :class:`IncidentReported`. Returns one outcome per
    envelope, in order. 每个信封的 data 必须是 IncidentReported；按序返回处理结果。
    """
    reports: list[tuple[IncidentReported, str]] = []
    for envelope in envelopes:
        if not isinstance(envelope.data, IncidentReported):
            raise TypeError(f"not an incident.reported envelope: {envelope.type} {envelope.id}")
        reports.append((envelope.data, envelope.correlation_id))
    return await _handle_reports(
        session,
        reports,
        jurisdiction=jurisdiction,
        now=now,
        distance_m=duplicate_distance_m,
        window=duplicate_window,
    )


async def handle_incident(
    *,
    session: AsyncSession,
    event: IncidentReported,
    jurisdiction: LoadedJurisdiction,
    now: datetime,
    correlation_id: str,
    duplicate_distance_m: float = 50.0,
    duplicate_window: timedelta = timedelta(hours=24),
) -> IncidentOutcome:
    """Create the case of ``event`` (once) and dispatch, triage, record or merge it. 立案并派遣。

    Idempotent: a second call for the same incident changes nothing. The duplicate
    check is serialised across replicas with ``pg_advisory_xact_lock`` on
    (matter, coarse cell) keys (and the 12345 caller). A batch of one of
    :func:`handle_incidents` (the same code path). 幂等；并案检查用咨询锁跨副本串行；
    即一条事件的批量处理（同一代码路径）。
    """
    [outcome] = await _handle_reports(
        session,
        [(event, correlation_id)],
        jurisdiction=jurisdiction,
        now=now,
        distance_m=duplicate_distance_m,
        window=duplicate_window,
    )
    return outcome


# --------------------------------------------------------------------------- actions 流转


class CaseNotFoundError(LookupError):
    """No such case, or not visible to the caller (→ 404). 案件不存在或不可见。"""


@dataclass(frozen=True)
class ActionProblem:
    """A request the service refuses before the lifecycle sees it (→ 409 or 422). 服务层拒绝。"""

    kind: Literal["conflict", "invalid"]
    reason: str
    current_state: str
    current_version: int


@dataclass(frozen=True)
class ActionOutcome:
    """Result of :func:`perform_action`: the final record and what happened. 流转结果。"""

    record: CaseRecord | None
    applied: tuple[Applied, ...] = ()
    refused: Refused | ActionProblem | None = None


async def _load_for_update(session: AsyncSession, case_id: uuid.UUID) -> CaseRecord | None:
    row = (await session.execute(select(cases).where(cases.c.id == case_id).with_for_update())).mappings().first()
    return CaseRecord.from_row(row) if row is not None else None


async def _save(session: AsyncSession, record: CaseRecord, pending: _Pending) -> None:
    values = record.to_row()
    for key in ("id", "incident_id", "incident"):
        values.pop(key)
    values["updated_at"] = func.now()
    await session.execute(update(cases).where(cases.c.id == record.id).values(**values))
    await _write(session, pending)


def _deadline_facts(
    loaded: LoadedJurisdiction, matter_code: str | None, urgency: str, at: datetime
) -> tuple[datetime | None, str | None, bool]:
    """Resolution deadline, its basis and the provisional flag for a matter. 事项办结期限。"""
    matter = loaded.snapshot.matter(matter_code) if matter_code else None
    if matter is None:
        return None, None, False
    basis: Literal["working", "natural"] = "natural" if urgency == "critical" else matter.time_basis
    due = loaded.calendar.deadline(at, matter.deadlines.for_urgency(urgency), basis)  # type: ignore[arg-type]
    return due.due_at, basis, due.provisional


def _windows(loaded: LoadedJurisdiction, at: datetime, deadline: datetime | None) -> tuple[datetime, datetime]:
    """(签收期限, 退单时限) from ``at``. 签收期限与退单时限。"""
    accept = loaded.calendar.add_working_days(at, ACCEPT_WORKING_DAYS)
    if deadline is not None:
        accept = min(accept, deadline)
    return accept, loaded.calendar.add_working_days(at, REJECT_WINDOW_WORKING_DAYS)


def _unit_problem(loaded: LoadedJurisdiction | None, unit: Any, record: CaseRecord, what: str) -> ActionProblem | None:
    if not isinstance(unit, str) or loaded is None:
        return None
    if loaded.snapshot.unit(unit.strip()) is None:
        return ActionProblem(
            "invalid", f"未知单位 {unit} / unknown {what} {unit!r}", str(record.snapshot.state), record.snapshot.version
        )
    return None


def _prepare_body(
    action: Action,
    body: dict[str, Any],
    record: CaseRecord,
    loaded: LoadedJurisdiction | None,
    at: datetime,
) -> dict[str, Any] | ActionProblem:
    """Fill what the service computes (windows, deadlines) and check referenced units. 补全并校验请求体。"""
    body = dict(body)
    if action in (Action.REASSIGN, Action.ASSIGN, Action.ADD_COHANDLER):
        problem = _unit_problem(loaded, body.get("unit"), record, "unit")
        if problem is not None:
            return problem
    if action is Action.ESCALATE:
        department = body.get("department")
        if isinstance(department, str) and loaded is not None:
            unit = loaded.snapshot.unit(department.strip())
            if unit is None or unit.kind != "county_department":
                return ActionProblem(
                    "invalid",
                    f"{department} 不是县级部门 / {department!r} is not a county department",
                    str(record.snapshot.state),
                    record.snapshot.version,
                )
    if action is Action.ASSIGN and loaded is not None:
        matter = body.get("matter")
        if isinstance(matter, str) and loaded.snapshot.matter(matter) is None:
            return ActionProblem(
                "invalid", f"未知事项 {matter} / unknown matter", str(record.snapshot.state), record.snapshot.version
            )
        if body.get("deadline") is None:
            deadline, _, _ = _deadline_facts(loaded, matter or record.snapshot.matter, record.urgency, at)
            if deadline is not None:
                body["deadline"] = deadline.isoformat()
    if action is Action.REOPEN and loaded is not None and body.get("deadline") is None:
        # 重办 gets a fresh deadline of the matter from the reopening time. 重办按事项时限重新起算。
        deadline, _, _ = _deadline_facts(loaded, record.snapshot.matter, record.urgency, at)
        if deadline is not None:
            body["deadline"] = deadline.isoformat()
    if action in (Action.ASSIGN, Action.REASSIGN) and loaded is not None and body.get("reject_window_ends_at") is None:
        body["reject_window_ends_at"] = _windows(loaded, at, None)[1].isoformat()
    return body


def _after_unit_change(
    record: CaseRecord, new_case: CaseSnapshot, loaded: LoadedJurisdiction | None, at: datetime
) -> None:
    """New primary unit: its kind, dispatch time, 签收期限 (before the event is staged). 主办单位变更后的派生字段。"""
    s = new_case
    record.unit_kind = _unit_kind(loaded, s.primary_unit, record.unit_kind)
    if record.dispatched_at is None:
        record.dispatched_at = at
    if loaded is not None:
        record.accept_deadline = _windows(loaded, at, s.deadline)[0]


async def _redispatch(
    *,
    record: CaseRecord,
    pending: _Pending,
    loaded: LoadedJurisdiction | None,
    at: datetime,
    max_rejections: int,
    correlation_id: str,
) -> list[Applied]:
    """After a 退单: the next candidate never in ``rejected_by``, or triage. 退单后再派遣或转人工。"""
    case = record.snapshot
    event = record.event_model()
    decision: RoutingDecision | None = None
    listed: list[str] = []
    if loaded is not None:
        listed = [c.unit for c in candidates(event, loaded.snapshot, matter=case.matter) if c.unit]
        decision = route(
            event,
            loaded.snapshot,
            now=at,
            calendar=loaded.calendar,
            exclude_units=frozenset(case.rejected_by),
            matter=case.matter,
        )
    verdict, detail = after_rejection(case, listed, max_rejections)
    if verdict == "dispatch" and decision is not None and decision.outcome == "dispatch" and decision.unit == detail:
        assert decision.deadline is not None
        body = DispatchBody(
            expected_version=case.version,
            unit=decision.unit,
            deadline=decision.deadline,
            reject_window_ends_at=decision.reject_window_ends_at,
        )
        result = apply(case, Action.DISPATCH, body, SYSTEM_ACTOR, at)
        if isinstance(result, Applied):
            record.time_basis = decision.time_basis
            record.provisional = decision.provisional
            record.decided_by = decision.decided_by
            record.rules_version = decision.rules_version
            record.jurisdiction_version = decision.jurisdiction_version
            record.explanation = {
                **record.explanation,
                "redispatches": [
                    *record.explanation.get("redispatches", []),
                    {"at": at.isoformat(), "unit": decision.unit, "explanation_zh": decision.explanation_zh},
                ],
            }
            _after_unit_change(record, result.new_case, loaded, at)
            _stage_applied(
                pending, record, result, correlation_id=correlation_id, extra={"reason": decision.explanation_zh}
            )
            return [result]
    if verdict == "triage":
        reason = detail
    else:
        reason = (decision.triage_reason if decision is not None else None) or "no_candidate_left"
    record.triage_reason = reason
    body_t = TriageBody(expected_version=case.version, reason=reason)
    triage = _must(apply(case, Action.TRIAGE, body_t, SYSTEM_ACTOR, at))
    _stage_applied(pending, record, triage, correlation_id=correlation_id)
    return [triage]


def _effective_time(occurred: Any, now: datetime) -> datetime:
    """``occurred_at`` of a body when it parses as an aware time not after ``now``, else ``now``. 生效时间。"""
    if isinstance(occurred, datetime):
        parsed: datetime | None = occurred
    elif isinstance(occurred, str) and occurred:
        try:
            parsed = datetime.fromisoformat(occurred)
        except ValueError:
            parsed = None
    else:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return now
    return min(parsed, now)


async def perform_action(
    *,
    session: AsyncSession,
    case_id: uuid.UUID,
    action: Action,
    body: dict[str, Any],
    actor: Actor,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    max_rejections: int,
    correlation_id: str,
) -> ActionOutcome:
    """One lifecycle action on a case, locked ``FOR UPDATE``, stored with its event. 执行一次流转。

    Raises :class:`CaseNotFoundError` when the case does not exist or the actor
    may not see it. After a 退单 the case is re-dispatched in the same transaction.
    案件不存在或不可见时抛出 :class:`CaseNotFoundError`；退单后同一事务内再派遣。
    """
    record = await _load_for_update(session, case_id)
    if record is None or not can_see(record.snapshot, actor):
        raise CaseNotFoundError(str(case_id))
    case = record.snapshot
    if record.merged_into is not None:
        return ActionOutcome(
            record,
            refused=ActionProblem(
                "conflict",
                f"案件已并入 {record.merged_into} / the case was merged into {record.merged_into}",
                str(case.state),
                case.version,
            ),
        )
    at = _effective_time(body.get("occurred_at"), now)
    prepared = _prepare_body(action, body, record, jurisdiction, at)
    if isinstance(prepared, ActionProblem):
        return ActionOutcome(record, refused=prepared)
    result = apply(case, action, prepared, actor, now)
    if isinstance(result, Refused):
        return ActionOutcome(record, refused=result)
    pending = _Pending()
    done: list[Applied] = [result]
    if action is Action.ESCALATE and jurisdiction is not None:
        record.accept_deadline = jurisdiction.calendar.add_working_days(result.at, REPORT_IN_WORKING_DAYS)
    if action is Action.ASSIGN:
        matter = result.new_case.matter
        if jurisdiction is not None and matter is not None:
            m = jurisdiction.snapshot.matter(matter)
            record.matter_group = m.group if m else record.matter_group
            _, basis, provisional = _deadline_facts(jurisdiction, matter, record.urgency, result.at)
            record.time_basis = basis or record.time_basis
            record.provisional = provisional
        record.triage_reason = None
        record.decided_by = "manual"
        record.explanation = {
            **record.explanation,
            "manual_decisions": [
                *record.explanation.get("manual_decisions", []),
                {
                    "at": result.at.isoformat(),
                    "by": actor.id,
                    "role": str(actor.role),
                    "unit": prepared.get("unit"),
                    "matter": matter,
                    "reason": prepared.get("reason"),
                },
            ],
        }
    if action in (Action.ASSIGN, Action.REASSIGN):
        _after_unit_change(record, result.new_case, jurisdiction, result.at)
    _stage_applied(pending, record, result, correlation_id=correlation_id)
    if action is Action.REJECT:
        done += await _redispatch(
            record=record,
            pending=pending,
            loaded=jurisdiction,
            at=result.at,
            max_rejections=max_rejections,
            correlation_id=correlation_id,
        )
    await _save(session, record, pending)
    return ActionOutcome(record, applied=tuple(done))


# --------------------------------------------------------------------------- overdue sweep 超期扫描


async def sweep_overdue(
    *,
    session: AsyncSession,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    correlation_id: str,
    limit: int = 200,
) -> list[uuid.UUID]:
    """Flag open cases past their deadline (each once, whatever the number of replicas). 标记超期案件。

    Rows are claimed ``FOR UPDATE SKIP LOCKED`` and re-checked by the lifecycle
    (already flagged → refused). A matter with ``auto_escalate_when_overdue``
    is escalated (吹哨) to its county department unless an escalation is pending.
    行以 SKIP LOCKED 认领；已标记的由状态机拒绝；配置了超期自动吹哨的事项自动吹哨。
    """
    c = cases.c
    rows = (
        (
            await session.execute(
                select(cases)
                .where(
                    c.overdue.is_(False),
                    c.deadline.is_not(None),
                    c.deadline < now,
                    c.state.in_(_RUNNING_STATES),
                    c.merged_into.is_(None),
                )
                .order_by(c.deadline)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    flagged: list[uuid.UUID] = []
    for row in rows:
        record = CaseRecord.from_row(row)
        case = record.snapshot
        at = max(now, case.previous_at)
        result = apply(case, Action.MARK_OVERDUE, MarkOverdueBody(expected_version=case.version), SYSTEM_ACTOR, at)
        if isinstance(result, Refused):
            continue
        pending = _Pending()
        _stage_applied(pending, record, result, correlation_id=correlation_id)
        matter = jurisdiction.snapshot.matter(case.matter) if jurisdiction and case.matter else None
        if (
            jurisdiction is not None
            and matter is not None
            and matter.auto_escalate_when_overdue
            and jurisdiction.snapshot.unit(matter.department) is not None
        ):
            body = EscalateBody(
                expected_version=record.snapshot.version,
                department=matter.department,
                reason=f"事项「{matter.name}」超期自动吹哨 / auto-escalated when overdue",
            )
            escalated = apply(record.snapshot, Action.ESCALATE, body, SYSTEM_ADMIN, at)
            if isinstance(escalated, Applied):
                record.accept_deadline = jurisdiction.calendar.add_working_days(at, REPORT_IN_WORKING_DAYS)
                _stage_applied(pending, record, escalated, correlation_id=correlation_id)
        await _save(session, record, pending)
        flagged.append(record.id)
    return flagged


# --------------------------------------------------------------------------- queries 查询


@dataclass(frozen=True)
class CaseFilters:
    """Filters of ``GET /v1/cases``. 案件列表筛选条件。"""

    township: str | None = None
    unit: str | None = None
    state: Sequence[str] = ()
    source: str | None = None
    source_id: str | None = None
    matter: str | None = None
    triage: bool = False
    overdue: bool | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    merged: bool | None = None


def scope_condition(actor: Actor) -> Any:
    """SQL condition of the cases ``actor`` may see (mirrors lifecycle.can_see). 可见范围条件。"""
    c = cases.c
    if actor.role in (Role.ADMIN, Role.SYSTEM, Role.HOTLINE):
        return true()
    if actor.role is Role.UNIT:
        if not actor.unit:
            return false()
        return or_(c.unit == actor.unit, literal(actor.unit) == any_(c.cohandlers), c.escalated_to == actor.unit)
    if not actor.township:
        return false()
    if actor.township == "*":
        return true()
    return c.township == actor.township


def case_conditions(actor: Actor, filters: CaseFilters) -> list[Any]:
    """SQL conditions of the cases ``actor`` may see that match ``filters``. 可见且符合筛选的案件条件。"""
    c = cases.c
    conditions: list[Any] = [scope_condition(actor)]
    if filters.township:
        conditions.append(c.township == filters.township)
    if filters.unit:
        conditions.append(c.unit == filters.unit)
    if filters.state:
        conditions.append(c.state.in_(list(filters.state)))
    if filters.triage:
        conditions.append(c.state == str(CaseState.TRIAGE))
    if filters.source:
        conditions.append(c.source == filters.source)
    if filters.source_id:
        conditions.append(c.source_id == filters.source_id)
    if filters.matter:
        conditions.append(c.matter == filters.matter)
    if filters.overdue is not None:
        conditions.append(c.overdue.is_(filters.overdue))
    if filters.reported_from is not None:
        conditions.append(c.reported_at >= filters.reported_from)
    if filters.reported_to is not None:
        conditions.append(c.reported_at < filters.reported_to)
    if filters.merged is not None:
        conditions.append(c.merged_into.is_not(None) if filters.merged else c.merged_into.is_(None))
    return conditions


async def page_of_cases(
    *, session: AsyncSession, conditions: Sequence[Any], cursor: int | None, limit: int
) -> tuple[list[CaseRecord], int | None]:
    """Cases matching ``conditions``, newest first, cursor-paginated on ``seq``. 按 seq 游标分页。"""
    c = cases.c
    where = [*conditions, c.seq < cursor] if cursor is not None else list(conditions)
    rows = (
        (await session.execute(select(cases).where(*where).order_by(c.seq.desc()).limit(limit + 1)))
        .mappings()
        .all()
    )
    records = [CaseRecord.from_row(r) for r in rows[:limit]]
    next_cursor = records[-1].seq if len(rows) > limit and records else None
    return records, next_cursor


async def list_cases(
    *, session: AsyncSession, actor: Actor, filters: CaseFilters, cursor: int | None, limit: int
) -> tuple[list[CaseRecord], int | None]:
    """Visible cases, newest first, cursor-paginated on ``seq``. 可见案件（新→旧，按 seq 游标分页）。"""
    return await page_of_cases(
        session=session, conditions=case_conditions(actor, filters), cursor=cursor, limit=limit
    )


async def get_case(*, session: AsyncSession, case_id: uuid.UUID, actor: Actor) -> CaseRecord:
    """One visible case. Raises :class:`CaseNotFoundError`. 取单个可见案件。"""
    row = (await session.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
    if row is None:
        raise CaseNotFoundError(str(case_id))
    record = CaseRecord.from_row(row)
    if not can_see(record.snapshot, actor):
        raise CaseNotFoundError(str(case_id))
    return record


async def merged_into(*, session: AsyncSession, case_id: uuid.UUID) -> list[uuid.UUID]:
    """Cases merged into ``case_id``. 并入该案件的重复件。"""
    rows = await session.execute(select(cases.c.id).where(cases.c.merged_into == case_id).order_by(cases.c.seq))
    return [r.id for r in rows]


async def get_timeline(*, session: AsyncSession, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every transition of a case, by version. 案件时间线（按版本）。"""
    rows = await session.execute(
        select(case_transitions).where(case_transitions.c.case_id == case_id).order_by(case_transitions.c.version)
    )
    return [dict(r) for r in rows.mappings()]


def timeline_entries(rows: Sequence[Mapping[str, Any]]) -> list[TimelineEntry]:
    """Timeline rows (as stored or as the API answers them) → entries :func:`lifecycle.replay` takes.

    时间线行 → :func:`lifecycle.replay` 所需的记录。The creation row (version 1:
    ``case.reported``, or ``case.merged`` for a merged report) becomes the
    ``case.reported`` entry holding the whole snapshot. 第一行转为立案记录。
    """
    out: list[TimelineEntry] = []
    for row in rows:
        first = row["version"] == 1
        out.append(
            TimelineEntry(
                case_id=str(row["case_id"]),
                version=row["version"],
                event_type=CASE_REPORTED if first else row["event_type"],
                action=None if first else Action(row["action"]),
                actor=Actor(
                    Role(row["actor_role"]),
                    unit=row["actor_unit"],
                    township=row["actor_township"],
                    id=row["actor_id"],
                ),
                at=row["occurred_at"],
                body=row["body"] if not first else {},
                changes=row["changes"],
            )
        )
    return out


async def transitions_after(
    *, session: AsyncSession, after_id: int, actor: Actor, limit: int = 500
) -> list[dict[str, Any]]:
    """Transitions with ``id > after_id`` of cases ``actor`` may see (SSE). 游标之后的可见流转。"""
    t, c = case_transitions.c, cases.c
    rows = await session.execute(
        select(
            t.id,
            t.case_id,
            t.version,
            t.action,
            t.event_type,
            t.state,
            t.previous_state,
            t.actor_role,
            t.actor_unit,
            t.occurred_at,
            t.note,
            t.deadline,
            t.event_id,
            c.township,
            c.unit,
            c.matter,
            c.source,
            c.source_id,
            c.overdue,
            c.merged_into,
            scope_condition(actor).label("visible"),
        )
        .join(cases, c.id == t.case_id)
        .where(t.id > after_id)
        .order_by(t.id)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def last_transition_id(*, session: AsyncSession) -> int:
    """The newest transition id (0 when there is none). 最新流转 id。"""
    value = await session.scalar(select(func.max(case_transitions.c.id)))
    return int(value or 0)
