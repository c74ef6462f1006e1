"""联合执法's use cases (keyword-only, never commit): open, act (报到, 结束, 撤销), read, the audit trail.

Concluding with ``apply="resolve"`` resolves the operation's open cases (已签收 / 返工) with its result in
the same transaction, through the case lifecycle, acting for each case's handling unit (actor id
``joint-operation:<id>``); cases in other states are left to their units and listed. 结束时在同一事务内
以承办单位身份办结已签收/返工的关联案件，其余案件列出留给各单位。
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.actions import perform_action
from services.dispatch.case_model import Action, Actor, CaseState, Role
from services.dispatch.forces.operation_rules import Applied, OpActor, Operation, Refused, apply
from services.dispatch.forces.tables import joint_operation_transitions, joint_operations
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.models import cases, outbox
from services.dispatch.queries import get_case
from services.dispatch.records import CaseNotFoundError
from shared.events import OPERATION_EVENTS, ActorRef, OperationEvent, make_envelope
from shared.messaging.outbox import add_events

__all__ = [
    "ActOutcome",
    "OperationNotFoundError",
    "OperationProblem",
    "act_on_operation",
    "get_operation",
    "list_operations",
    "open_operation",
    "operation_timeline",
    "sees_operation",
]


class OperationNotFoundError(LookupError):
    """No such operation, or outside the caller's scope (→ 404). 联合执法不存在或不可见。"""


class OperationProblem(ValueError):
    """An operation that cannot be opened as asked (→ 422). 无法发起。"""


def sees_operation(op: Operation, actor: OpActor) -> bool:
    """Command staff of its township (or the county), and its participating units. 可见范围。"""
    if actor.role == "admin":
        return True
    if actor.role == "unit":
        return actor.unit in op.units
    if actor.role in ("dispatcher", "township_admin"):
        return actor.township in ("*", op.township)
    return False


#: Namespace of the operation events' deterministic ids (operation id, version). 联合执法事件编号命名空间。
_EVENT_NS = uuid.UUID("6f1b7c52-3c1e-5d0a-9f3e-2a7d4b8c9e10")
_EVENT_TYPE = {
    "open": "operation.opened",
    "confirm": "operation.confirmed",
    "conclude": "operation.concluded",
    "cancel": "operation.cancelled",
}


async def _publish(
    session: AsyncSession,
    op: Operation,
    action: str,
    actor: OpActor,
    at: datetime,
    correlation_id: str,
    confirmed: str | None = None,
) -> None:
    """The transition's event on ``operation.events``, through the outbox in this transaction; ``confirmed``:
    the unit whose 报到 this is. 经发件箱发布（同一事务）。"""
    confirmation = op.confirmations.get(confirmed) if confirmed is not None else None
    data = OperationEvent(
        operation_id=uuid.UUID(op.id),
        version=op.version,
        occurred_at=at,
        actor=ActorRef(role=actor.role, unit=actor.unit, township=actor.township, name=actor.id),
        state=op.state.value,
        township=op.township,
        lead_unit=op.lead_unit,
        units=list(op.units),
        starts_at=op.starts_at,
        ends_at=op.ends_at,
        cases=[uuid.UUID(c) for c in op.cases],
        unit=confirmed,
        late=confirmation.late if confirmation is not None else None,
        people=list(confirmation.people) if confirmation is not None else [],
        confirmed_late=sorted(u for u, c in op.confirmations.items() if c.late),
        absent=list(op.absent),
        result=op.result,
        apply_result=op.apply_result,
        reason=op.cancel_reason,
    )
    envelope = make_envelope(
        event_type=_EVENT_TYPE[action],
        data=data,
        source="/dispatch/forces",
        correlation_id=correlation_id,
        subject=op.id,
        time=at,
        event_id=uuid.uuid5(_EVENT_NS, f"{op.id}:{op.version}"),
    )
    await add_events(session, outbox, OPERATION_EVENTS, [envelope])


def _actor_row(actor: OpActor) -> dict[str, Any]:
    return {"actor_role": actor.role, "actor_unit": actor.unit, "actor_id": actor.id}


async def open_operation(
    *,
    session: AsyncSession,
    actor: OpActor,
    case_actor: Actor,
    spec: dict[str, Any],
    jurisdiction: LoadedJurisdiction,
    now: datetime,
    correlation_id: str,
) -> Operation:
    """发起: validate units, time window and cases; store the snapshot and its first audit row. 发起联合执法。"""
    if actor.role not in ("dispatcher", "township_admin", "admin"):
        raise PermissionError(f"role {actor.role!r} may not open a joint operation")
    snap = jurisdiction.snapshot
    township = spec["township"]
    if actor.role != "admin" and actor.township not in ("*", township):
        raise PermissionError(f"township {township} is outside your scope")
    units = tuple(dict.fromkeys([spec["lead_unit"], *spec["units"]]))
    unknown = [u for u in units if snap.unit(u) is None]
    if unknown:
        raise OperationProblem(f"unknown unit(s) 单位不存在: {', '.join(unknown)}")
    if spec["ends_at"] <= spec["starts_at"]:
        raise OperationProblem("ends_at must be after starts_at 结束时间须晚于开始时间")
    for case_id in spec["cases"]:
        try:
            await get_case(session=session, case_id=uuid.UUID(str(case_id)), actor=case_actor)
        except CaseNotFoundError:
            raise OperationProblem(f"no such case in your scope 案件不存在: {case_id}") from None
    op = Operation(
        id=str(uuid.uuid4()),
        township=township,
        lead_unit=spec["lead_unit"],
        units=units,
        starts_at=spec["starts_at"],
        ends_at=spec["ends_at"],
        place=spec["place"],
        cases=tuple(str(c) for c in spec["cases"]),
        note=spec.get("note", ""),
        opened_by=actor.id,
        last_transition_at=now,
    )
    await session.execute(insert(joint_operations).values(**_row(op)))
    await session.execute(
        insert(joint_operation_transitions).values(
            operation_id=uuid.UUID(op.id),
            version=1,
            action="open",
            state=str(op.state),
            occurred_at=now,
            body={},
            changes=op.model_dump(mode="json"),
            **_actor_row(actor),
        )
    )
    await _publish(session, op, "open", actor, now, correlation_id)
    return op


def _row(op: Operation) -> dict[str, Any]:
    return {
        "id": uuid.UUID(op.id),
        "township": op.township,
        "lead_unit": op.lead_unit,
        "units": list(op.units),
        "state": str(op.state),
        "version": op.version,
        "starts_at": op.starts_at,
        "ends_at": op.ends_at,
        "place": op.place,
        "cases": [uuid.UUID(c) for c in op.cases],
        "note": op.note,
        "snapshot": op.model_dump(mode="json"),
    }


async def get_operation(*, session: AsyncSession, op_id: uuid.UUID, actor: OpActor, lock: bool = False) -> Operation:
    q = select(joint_operations.c.snapshot).where(joint_operations.c.id == op_id)
    if lock:
        q = q.with_for_update()
    found = (await session.execute(q)).scalar_one_or_none()
    if found is None:
        raise OperationNotFoundError(str(op_id))
    op = Operation.model_validate(found)
    if not sees_operation(op, actor):
        raise OperationNotFoundError(str(op_id))
    return op


async def list_operations(*, session: AsyncSession, actor: OpActor, limit: int = 200) -> list[Operation]:
    q = select(joint_operations.c.snapshot).order_by(joint_operations.c.created_at.desc()).limit(limit)
    ops = [Operation.model_validate(s) for s in (await session.execute(q)).scalars()]
    return [op for op in ops if sees_operation(op, actor)]


@dataclass
class ActOutcome:
    """An action's result: the operation after it, or the refusal; the cases resolved and left. 操作结果。"""

    operation: Operation
    refused: Refused | None = None
    resolved: list[str] = field(default_factory=list)
    left: list[dict[str, str]] = field(default_factory=list)


async def _apply_result(
    *, session: AsyncSession, op: Operation, jurisdiction: LoadedJurisdiction | None, now: datetime, correlation: str
) -> tuple[list[str], list[dict[str, str]]]:
    resolved: list[str] = []
    left: list[dict[str, str]] = []
    for case_id in op.cases:
        row = (await session.execute(select(cases.c.state, cases.c.unit, cases.c.version).where(
            cases.c.id == uuid.UUID(case_id)))).first()  # fmt: skip
        if row is None or row.state not in (CaseState.ACCEPTED, CaseState.REOPENED) or row.unit is None:
            left.append({"case_id": case_id, "reason": f"案件状态 {row.state if row else '—'}，留给承办单位办理"})
            continue
        outcome = await perform_action(
            session=session,
            case_id=uuid.UUID(case_id),
            action=Action.RESOLVE,
            body={"expected_version": row.version, "result": f"联合执法：{op.result}"},
            actor=Actor(Role.UNIT, unit=row.unit, id=f"joint-operation:{op.id}"),
            now=now,
            jurisdiction=jurisdiction,
            max_rejections=2,
            correlation_id=correlation,
        )
        if outcome.refused is not None:
            left.append({"case_id": case_id, "reason": outcome.refused.reason})
        else:
            resolved.append(case_id)
    return resolved, left


async def act_on_operation(
    *,
    session: AsyncSession,
    op_id: uuid.UUID,
    action: str,
    body: dict[str, Any],
    actor: OpActor,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    correlation_id: str,
) -> ActOutcome:
    """报到 / 结束 / 撤销 under ``FOR UPDATE``, audited; a concluding result applied to the cases. 执行操作。"""
    op = await get_operation(session=session, op_id=op_id, actor=actor, lock=True)
    result = apply(op, action, body, actor, now)
    if isinstance(result, Refused):
        return ActOutcome(op, refused=result)
    assert isinstance(result, Applied)
    new = result.new
    await session.execute(update(joint_operations).where(joint_operations.c.id == op_id).values(**_row(new)))
    await session.execute(
        insert(joint_operation_transitions).values(
            operation_id=op_id,
            version=new.version,
            action=action,
            state=str(new.state),
            occurred_at=now,
            body=result.body,
            changes=result.changes,
            **_actor_row(actor),
        )
    )
    confirmed = next((u for u in new.confirmations if u not in op.confirmations), None)
    await _publish(session, new, action, actor, now, correlation_id, confirmed)
    outcome = ActOutcome(new)
    if action == "conclude" and new.apply_result == "resolve":
        outcome.resolved, outcome.left = await _apply_result(
            session=session, op=new, jurisdiction=jurisdiction, now=now, correlation=correlation_id
        )
    return outcome


async def operation_timeline(*, session: AsyncSession, op_id: uuid.UUID) -> list[dict[str, Any]]:
    t = joint_operation_transitions.c
    rows = await session.execute(select(joint_operation_transitions).where(t.operation_id == op_id).order_by(t.version))
    return [dict(r) for r in rows.mappings()]
