"""任务推送: webhook subscriptions per unit or member, and their deliveries (use cases; never commit).

Path of a push: a case transition is written → the trigger puts its id on ``force_push_queue`` in the
same transaction (while some subscription is active) → :func:`fan_out` turns queued transitions into
one ``force_deliveries`` row per matching subscription (the case's unit, or a member holding the task)
and empties the queue, in one transaction → :func:`claim_due` leases due deliveries → the worker
(:mod:`.push_worker`) POSTs each signed (:mod:`.signing`) outside any transaction → :func:`record_attempt`
marks it delivered, or schedules the retry with backoff, or dead-letters it after N failures (kept and
listed, never dropped). A restart loses nothing: the queue and pending deliveries are rows, and a lease
that expires with its process is taken again (deliveries are at least once; ``X-ZHPT-Delivery`` lets the
receiver drop a repeat). 流转写入即入队（同一事务）；扇出为投递；投递在事务外签名发送；失败退避重试，超限进死信。
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.case_model import CASE_REPORTED
from services.dispatch.forces.signing import next_delay_s
from services.dispatch.forces.tables import force_deliveries, force_push_queue, force_webhooks

__all__ = [
    "Due",
    "claim_due",
    "delete_subscription",
    "deliveries",
    "fan_out",
    "payload_of",
    "record_attempt",
    "retry_delivery",
    "subscribe",
    "subscriptions",
]


async def subscribe(
    *, session: AsyncSession, unit: str, member: str | None, url: str, secret: str, by: str | None
) -> uuid.UUID:
    """A new subscription of ``unit`` (or of one of its members) to its tasks and their changes. 新增订阅。"""
    sub_id = uuid.uuid4()
    await session.execute(
        insert(force_webhooks).values(id=sub_id, unit=unit, member=member, url=url, secret=secret, created_by=by)
    )
    return sub_id


async def subscriptions(*, session: AsyncSession, unit: str | None, member: str | None) -> list[dict[str, Any]]:
    q = select(force_webhooks).where(force_webhooks.c.active).order_by(force_webhooks.c.created_at)
    if unit is not None:
        q = q.where(force_webhooks.c.unit == unit)
    if member is not None:
        q = q.where(force_webhooks.c.member == member)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def delete_subscription(*, session: AsyncSession, sub_id: uuid.UUID) -> None:
    """Deactivate (deliveries and dead letters stay listed). 停用订阅（投递记录保留）。"""
    await session.execute(update(force_webhooks).where(force_webhooks.c.id == sub_id).values(active=False))


def payload_of(row: Any) -> dict[str, Any]:
    """What a delivery carries: the case's new state, never positions or phones. 推送内容（不含位置与电话）。"""
    return {
        "transition_id": row.id,
        "event_type": row.event_type,
        "case_id": str(row.case_id),
        "version": row.version,
        "state": row.state,
        "previous_state": row.previous_state,
        "occurred_at": row.occurred_at.isoformat(),
        "note": row.note,
        "deadline": row.deadline.isoformat() if row.deadline else None,
        "township": row.township,
        "unit": row.unit,
        "matter": row.matter,
        "assignee": row.assignee,
        "assignees": list(row.assignees or ()),
    }


async def fan_out(*, session: AsyncSession, limit: int = 500) -> int:
    """Up to ``limit`` queued transitions → one delivery per matching active subscription, taken off the
    queue; how many transitions were taken (0: the queue is empty). 扇出；返回取出的流转数。"""
    taken = (
        select(force_push_queue.c.transition_id)
        .order_by(force_push_queue.c.transition_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    ids = list(
        (
            await session.execute(
                delete(force_push_queue)
                .where(force_push_queue.c.transition_id.in_(taken))
                .returning(force_push_queue.c.transition_id)
            )
        ).scalars()
    )
    if not ids:
        return 0
    rows = await session.execute(_MATCH, {"ids": ids})
    values = [
        {"webhook_id": r.webhook_id, "transition_id": r.id, "event_type": r.event_type, "payload": payload_of(r)}
        for r in rows
    ]
    if values:
        await session.execute(insert(force_deliveries).values(values).on_conflict_do_nothing())
    return len(ids)


#: Each queued transition with the subscriptions it goes to. The unit and the members holding the task are
#: taken *as of the transition* (the latest earlier-or-same version of the timeline that changed them), so
#: a member assigned later does not receive the case's earlier transitions, nor a unit that got it later.
#: 每个流转及其订阅：单位与持有任务的队员取流转当时的值。
_MATCH = text(
    """
    SELECT t.id, t.event_type, t.case_id, t.version, t.state, t.previous_state, t.occurred_at, t.note,
           t.deadline, c.township, c.matter, u.unit, a.assignee, a.assignees, w.id AS webhook_id
    FROM dispatch.case_transitions t
    JOIN dispatch.cases c ON c.id = t.case_id
    CROSS JOIN LATERAL (
        SELECT p.changes ->> 'primary_unit' AS unit FROM dispatch.case_transitions p
        WHERE p.case_id = t.case_id AND p.version <= t.version AND (p.changes -> 'primary_unit') IS NOT NULL
        ORDER BY p.version DESC LIMIT 1
    ) u
    LEFT JOIN LATERAL (
        SELECT p.changes ->> 'assignee' AS assignee,
               ARRAY(SELECT jsonb_array_elements_text(p.changes -> 'assignees')) AS assignees
        FROM dispatch.case_transitions p
        WHERE p.case_id = t.case_id AND p.version <= t.version AND (p.changes -> 'assignees') IS NOT NULL
        ORDER BY p.version DESC LIMIT 1
    ) a ON true
    JOIN dispatch.force_webhooks w
      ON w.active AND w.unit = u.unit AND (w.member IS NULL OR w.member = ANY(a.assignees))
    WHERE t.id = ANY(CAST(:ids AS bigint[])) AND t.event_type <> :reported
    """
).bindparams(reported=CASE_REPORTED)


@dataclass(frozen=True)
class Due:
    """A claimed delivery 待发送的投递."""

    id: int
    url: str
    secret: str
    event_type: str
    payload: dict[str, Any]
    attempts: int


async def claim_due(*, session: AsyncSession, now: datetime, lease_s: float, limit: int = 50) -> list[Due]:
    """Lease up to ``limit`` due pending deliveries for ``lease_s`` (their next attempt moved past the lease:
    a worker that dies with them lets another take them then). 领取到期投递（租约到期后可被他人领取）。"""
    d, w = force_deliveries.c, force_webhooks.c
    due = (
        select(d.id)
        .where(d.status == "pending", d.next_attempt_at <= now)
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    leased = (
        await session.execute(
            update(force_deliveries)
            .where(d.id.in_(due))
            .values(next_attempt_at=now + timedelta(seconds=lease_s))
            .returning(d.id, d.webhook_id, d.event_type, d.payload, d.attempts)
        )
    ).all()
    if not leased:
        return []
    hooks = {
        r.id: r
        for r in await session.execute(select(w.id, w.url, w.secret).where(w.id.in_({r.webhook_id for r in leased})))
    }
    return [
        Due(r.id, hooks[r.webhook_id].url, hooks[r.webhook_id].secret, r.event_type, r.payload, r.attempts)
        for r in sorted(leased, key=lambda r: r.id)
    ]


async def record_attempt(
    *,
    session: AsyncSession,
    delivery_id: int,
    ok: bool,
    error: str | None,
    now: datetime,
    max_attempts: int,
    backoff_s: float,
) -> str:
    """Delivered, retried later (backoff) or dead after ``max_attempts`` failures; the new status. 记录一次尝试。"""
    d = force_deliveries.c
    if ok:
        await session.execute(
            update(force_deliveries)
            .where(d.id == delivery_id)
            .values(status="delivered", delivered_at=now, attempts=d.attempts + 1, last_error=None)
        )
        return "delivered"
    attempts = (
        await session.execute(
            update(force_deliveries)
            .where(d.id == delivery_id)
            .values(attempts=d.attempts + 1, last_error=(error or "")[:500])
            .returning(d.attempts)
        )
    ).scalar_one()
    if attempts >= max_attempts:
        await session.execute(update(force_deliveries).where(d.id == delivery_id).values(status="dead"))
        return "dead"
    retry_at = now + timedelta(seconds=next_delay_s(attempts, backoff_s))
    await session.execute(update(force_deliveries).where(d.id == delivery_id).values(next_attempt_at=retry_at))
    return "pending"


async def deliveries(
    *, session: AsyncSession, webhook_ids: list[uuid.UUID] | None, status: str | None, limit: int = 200
) -> list[dict[str, Any]]:
    """Deliveries, newest first (``status`` ``dead``: the dead letters). 投递记录（含死信）。"""
    d = force_deliveries.c
    q = select(force_deliveries).order_by(d.id.desc()).limit(limit)
    if webhook_ids is not None:
        q = q.where(d.webhook_id.in_(webhook_ids))
    if status:
        q = q.where(d.status == status)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def retry_delivery(*, session: AsyncSession, delivery_id: int, now: datetime) -> bool:
    """A dead letter back to pending (attempts kept); False when there is no such dead letter. 死信重投。"""
    d = force_deliveries.c
    result = await session.execute(
        update(force_deliveries)
        .where(d.id == delivery_id, d.status == "dead")
        .values(status="pending", next_attempt_at=now)
        .returning(d.id)
    )
    return result.first() is not None
