"""Lifecycle actions in batches 批量流转: a history's lifecycle imported at the pace of its reports.

A county importing its past year posts each case's 签收 → 办结 → 核查 … as it happened
(``occurred_at``). One HTTP request per action costs a round trip and a transaction apiece; a
batch carries up to :data:`MAX_BATCH_ACTIONS` of them in one transaction:

* the cases named are locked ``FOR UPDATE`` in id order in one statement
  (:func:`~services.dispatch.store.load_many_for_update`), so two batches over overlapping cases
  cannot deadlock each other;
* the items are applied in the order given, each exactly as ``POST /v1/cases/{id}/actions/{action}``
  would apply it alone (:func:`~services.dispatch.actions.act_on_locked`): a later item on the same
  case sees the earlier ones (so one batch can take a case through accept, resolve and verify,
  each with its ``expected_version``);
* the writes are gathered: each case's row is updated once, with its final values, and the
  batch's timeline rows and events go in one statement each (a 整改 inspection's follow-up task is
  created once what came before it is written); a statement per action was most of a batch's cost;
* every item gets its own answer: applied, or refused with the status and reason the single action
  would give — 404 for a case that does not exist or that the caller may not see (checked again
  before each item: an earlier item may have moved the case out of the caller's scope). A refused
  item changes nothing; the other items still apply.

The batch acts as its caller, like the single action: a unit posts its own accepts and results, a
dispatcher its verifications. Nothing here commits (the route's unit of work does).
历史导入的流转批量写入：一个事务、按 id 顺序加锁、逐项按单次操作的规则执行、逐项应答；
被拒的项不改变任何数据，其余项照常执行。以调用者身份执行。不提交。
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.actions import ActionOutcome, create_follow_up_if_due, follow_up_due, stage_action
from services.dispatch.case_model import Action, Actor
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.lifecycle import can_see
from services.dispatch.records import CaseRecord
from services.dispatch.staging import Pending
from services.dispatch.store import load_many_for_update, update_cases, write_pending

__all__ = ["MAX_BATCH_ACTIONS", "BatchAction", "perform_actions"]

#: Most actions one batch may carry (one transaction holds its cases' locks until it commits).
#: 单批最多操作数（一个事务持有其案件的锁直到提交）。
MAX_BATCH_ACTIONS = 1000


@dataclass(frozen=True, slots=True)
class BatchAction:
    """One item of a batch: the case, the action, its body. 批量中的一项。"""

    case_id: uuid.UUID
    action: Action
    body: dict[str, Any]


async def perform_actions(
    *,
    session: AsyncSession,
    items: Sequence[BatchAction],
    actor: Actor,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    max_rejections: int,
    correlation_id: str,
) -> list[ActionOutcome | None]:
    """Each item's outcome in the items' order; ``None`` where the case does not exist or ``actor``
    may not see it (when the item comes to be applied). 逐项结果（案件不存在或不可见为 None）。"""
    locked = await load_many_for_update(session, [item.case_id for item in items])
    outcomes: list[ActionOutcome | None] = []
    pending = Pending()
    touched: dict[uuid.UUID, CaseRecord] = {}

    async def write() -> None:
        nonlocal pending
        await update_cases(session, list(touched.values()))
        await write_pending(session, pending)
        touched.clear()
        pending = Pending()

    for item in items:
        record = locked.get(item.case_id)
        if record is None or not can_see(record.snapshot, actor):
            outcomes.append(None)
            continue
        outcome = stage_action(
            record=record,
            action=item.action,
            body=item.body,
            actor=actor,
            now=now,
            jurisdiction=jurisdiction,
            max_rejections=max_rejections,
            correlation_id=correlation_id,
            pending=pending,
        )
        outcomes.append(outcome)
        if outcome.refused is not None:
            continue
        touched[record.id] = record
        if follow_up_due(outcome, item.action):  # the parent's rows first, as a single action writes them
            await write()
            await create_follow_up_if_due(
                session=session,
                outcome=outcome,
                action=item.action,
                jurisdiction=jurisdiction,
                correlation_id=correlation_id,
            )
    if touched:
        await write()
    return outcomes
