"""审批办件 become supervision tasks 监管任务 (use cases; no commit).

:func:`handle_approvals` takes a batch of ``approval.reported``: ``approved`` and
``approved_with_conditions`` become cases of kind ``inspection`` through the incidents path
(:func:`services.dispatch.incidents.handle_incidents`; :mod:`services.dispatch.source_kinds` sets
the kind and the 监管时限 deadline); ``denied`` creates nothing (intake recorded it);
``revoked`` closes the open tasks of the same licence — the same 审批事项 and applicant (an org's
统一社会信用代码, a person's ID hash), follow-up checks included — with reason 撤销.
准予/附条件准予 → 监管任务；不予许可不生成任务；撤销 → 关闭同一许可的未结监管任务。
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.case_model import Action, Applied
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import SYSTEM_ACTOR
from services.dispatch.incidents import handle_incidents
from services.dispatch.lifecycle import apply
from services.dispatch.models import cases
from services.dispatch.staging import Pending, stage_applied
from services.dispatch.store import load_for_update, save
from services.dispatch.supervision import RevokeBody, creates_task
from shared.events import ApprovalReported, EventEnvelope

__all__ = ["handle_approvals", "revoke_tasks"]

#: Open supervision tasks of one licence: the same 审批事项 and applicant. 同一许可的未结监管任务。
_OPEN_TASKS = text(
    f"""
    SELECT id FROM {cases.fullname}
    WHERE source = 'approval' AND kind = 'inspection' AND state <> 'closed'
      AND incident->'approval'->>'item_code' = :item_code
      AND coalesce(incident->'approval'->'applicant'->>'credit_code', '') = :credit_code
      AND coalesce(incident->'approval'->'applicant'->>'id_hash', '') = :id_hash
    ORDER BY seq
    """
)


async def revoke_tasks(*, session: AsyncSession, envelope: EventEnvelope[Any]) -> list[Applied]:
    """Close the open tasks of the revoked licence with reason 撤销. 撤销：关闭同一许可的未结任务。"""
    event: ApprovalReported = envelope.data
    applicant = event.approval.applicant
    params = {
        "item_code": event.approval.item_code,
        "credit_code": applicant.credit_code or "",
        "id_hash": applicant.id_hash or "",
    }
    done: list[Applied] = []
    ids: list[uuid.UUID] = [row.id for row in await session.execute(_OPEN_TASKS, params)]
    for case_id in ids:
        record = await load_for_update(session, case_id)
        if record is None:
            continue
        case = record.snapshot
        at = max(event.received_at, event.reported_at, case.previous_at)
        body = RevokeBody(expected_version=case.version, approval_no=event.source_id)
        result = apply(case, Action.REVOKE, body, SYSTEM_ACTOR, at)
        if not isinstance(result, Applied):
            continue
        pending = Pending()
        stage_applied(
            pending,
            record,
            result,
            correlation_id=envelope.correlation_id,
            extra={"details": {"revoked_by": event.source_id}},
        )
        await save(session, record, pending)
        done.append(result)
    return done


async def handle_approvals(
    *,
    session: AsyncSession,
    envelopes: Sequence[EventEnvelope[Any]],
    jurisdiction: LoadedJurisdiction,
    duplicate_distance_m: float = 50.0,
    duplicate_window: timedelta = timedelta(hours=24),
) -> None:
    """A batch of ``approval.reported`` (see the module), in order. 审批办件批处理（按序）。"""
    run: list[EventEnvelope[Any]] = []

    async def flush() -> None:
        if run:
            await handle_incidents(
                session=session,
                envelopes=list(run),
                jurisdiction=jurisdiction,
                duplicate_distance_m=duplicate_distance_m,
                duplicate_window=duplicate_window,
            )
            run.clear()

    for envelope in envelopes:
        event = envelope.data
        if not isinstance(event, ApprovalReported):
            continue
        if creates_task(event.approval.result):
            run.append(envelope)
        elif event.approval.result == "revoked":
            await flush()  # a revocation sees the tasks of the approvals before it
            await revoke_tasks(session=session, envelope=envelope)
    await flush()
