"""Staging transitions in memory (暂存流转): timeline rows and the events they publish. Pure: no I/O.

Every state change of a case becomes, in memory, one ``case_transitions`` row and
(usually) one :class:`~shared.events.CaseEvent` in its envelope, with a
deterministic event id; the store writes them later in the caller's transaction.
每次状态变化先在内存中生成一条时间线行及其事件（确定性 id），随后由存储层在调用方事务中写入。
纯模块，无 I/O。
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from services.dispatch.case_model import Actor, Applied, CaseSnapshot, Refused
from services.dispatch.identity import EVENT_SOURCE, event_id_for
from services.dispatch.records import CaseRecord
from shared.events import CaseEvent, make_envelope

__all__ = ["Pending", "case_event", "extra_for", "must", "note_of", "stage", "stage_applied"]


@dataclass
class Pending:
    """Transitions computed in memory, written together. 待写入的流转。

    ``events`` go on ``case.events``; ``bulk_events`` (of cases a history import created,
    :attr:`CaseRecord.lane`) on ``case.events.bulk``. 实时案件与批量导入案件的事件分列。"""

    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    bulk_events: list[Any] = field(default_factory=list)


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


def case_event(
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
    (:meth:`CaseRecord.event_fields`: township, matter, matter_group, source, urgency,
    time_basis, reported_at, deadline, accept_deadline, provisional …). 每个事件都带上指标归约所需的描述字段。
    """
    data: dict[str, Any] = record.event_fields()
    data["occurred_at"] = at
    data["actor"] = _actor_fields(actor)
    data["previous_state"] = previous_state
    data.update(extra or {})
    return CaseEvent.model_validate(data)


def stage(
    pending: Pending,
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
        data = case_event(record, event_type=event_type, at=at, actor=actor, previous_state=previous_state, extra=extra)
        (pending.bulk_events if record.lane == "bulk" else pending.events).append(
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


def note_of(body: Mapping[str, Any]) -> str | None:
    for key in ("reason", "note", "result"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def extra_for(
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


def stage_applied(
    pending: Pending,
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
    merged_extra = {**extra_for(applied, before, record, body), **(extra or {})}
    stage(
        pending,
        record,
        event_type=applied.event_type,
        action=str(applied.action),
        actor=applied.actor,
        at=applied.at,
        previous_state=str(before.state),
        body=body,
        changes=applied.changes,
        note=note_of(body),
        extra=merged_extra,
        correlation_id=correlation_id,
    )


def must(result: Applied | Refused) -> Applied:
    if isinstance(result, Refused):  # a programming error in the service, never a user error
        raise RuntimeError(f"system transition refused: {result.kind}: {result.reason}")
    return result
