"""The action-batch route 批量流转接口: ``POST /v1/cases/actions`` (thin; the use case is
:mod:`services.dispatch.action_batches`).

A history import posts its cases' lifecycle (签收, 办结, 核查 … with ``occurred_at``) in batches of up
to :data:`~services.dispatch.action_batches.MAX_BATCH_ACTIONS` items, as the caller. Each item is
checked on its own (a malformed one answers 422 and the others still apply) and answered in order,
with the status and body its single action would give. 历史导入按批提交流转；逐项校验、逐项应答。
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from services.dispatch.action_batches import MAX_BATCH_ACTIONS, BatchAction, perform_actions
from services.dispatch.actions import API_ACTIONS, ActionOutcome
from services.dispatch.answers import ActionBatchResult
from services.dispatch.api_common import (
    Ctx,
    Staff,
    actor_of,
    applied_transitions,
    refusal_answer,
    request_correlation_id,
)
from services.dispatch.case_model import Action
from services.dispatch.context import utc_now
from shared.answers import documented
from shared.inputs import NulFreeModel

router = APIRouter()
TAG = "dispatch 派遣"


class ActionBatchItem(NulFreeModel):
    """One action of a batch 批量中的一项: the case, the action, the action's body."""

    case_id: uuid.UUID
    action: str = Field(description="one of the actions of `POST /v1/cases/{case_id}/actions/{action}`")
    body: dict[str, Any] = Field(
        default_factory=dict, description="the action's fields with `expected_version`, optional `occurred_at`"
    )


class ActionBatchRequest(NulFreeModel):
    """A batch of lifecycle actions 批量流转, applied in this order. An item that is not a well-formed
    :class:`ActionBatchItem` is answered 422 on its own. 格式有误的项单独答 422。"""

    items: list[ActionBatchItem | dict[str, Any]] = Field(min_length=1)


def _batch_item(index: int, raw: ActionBatchItem | dict[str, Any]) -> BatchAction | dict[str, Any]:
    """The item as a :class:`BatchAction`, or its 422 answer. 解析一项，或其 422 应答。"""
    if isinstance(raw, ActionBatchItem):
        item = raw
    else:
        try:
            item = ActionBatchItem.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            case_id = raw.get("case_id")
            return {"index": index, "case_id": case_id if isinstance(case_id, str) else None, "status": 422,
                    "detail": f"{where}: {first['msg']}", "kind": "invalid"}  # fmt: skip
    try:
        action: Action | None = Action(item.action)
    except ValueError:
        action = None
    if action is None or action not in API_ACTIONS:
        return {"index": index, "case_id": str(item.case_id), "status": 422,
                "detail": f"unknown action {item.action!r} 未知操作", "kind": "invalid"}  # fmt: skip
    return BatchAction(item.case_id, action, item.body)


def _item_answer(index: int, item: BatchAction, outcome: ActionOutcome | None) -> dict[str, Any]:
    """One applied or refused item as answered (404 when the case is not there for the caller). 逐项应答。"""
    answer: dict[str, Any] = {"index": index, "case_id": str(item.case_id)}
    if outcome is None:
        return answer | {"status": 404, "detail": "no such case 案件不存在", "kind": "not_found"}
    if outcome.refused is not None:
        code, refusal = refusal_answer(outcome.refused)
        return answer | {"status": code, **refusal}
    after = outcome.applied[-1].new_case  # the record itself moves on with later items on the case
    return answer | {"status": 200, "state": str(after.state), "version": after.version,
                     "transitions": applied_transitions(outcome)}  # fmt: skip


@router.post(
    "/v1/cases/actions",
    tags=[TAG],
    summary="Perform a batch of lifecycle actions 批量流转 (history import 历史导入)",
    description=f"Up to {MAX_BATCH_ACTIONS} items `{{case_id, action, body}}` in one transaction, applied in order, "
    "each exactly as `POST /v1/cases/{case_id}/actions/{action}` would apply it (a later item on the same case sees "
    "the earlier ones), as the caller. Answers per item, in order: `status` 200 with the case's state and version "
    "after it, or the single action's refusal (403, 404, 409, 422) with `detail`. A refused item changes nothing; "
    "the others still apply.",
    **documented(ActionBatchResult, 413, extra={422: {"description": "no items 无操作项"}}),
)
async def act_in_batch(request: Request, ctx: Ctx, body: ActionBatchRequest, principal: Staff) -> JSONResponse:
    if len(body.items) > MAX_BATCH_ACTIONS:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"a batch holds at most {MAX_BATCH_ACTIONS} actions, got {len(body.items)}",
        )
    parsed = [_batch_item(index, raw) for index, raw in enumerate(body.items)]
    valid = [(index, item) for index, item in enumerate(parsed) if isinstance(item, BatchAction)]
    async with ctx.runtime.uow() as uow:
        outcomes = await perform_actions(
            session=uow.session,
            items=[item for _, item in valid],
            actor=actor_of(principal),
            now=utc_now(),
            jurisdiction=ctx.source.current,
            max_rejections=ctx.settings.max_rejections,
            correlation_id=request_correlation_id(request),
        )
    outcome_of = dict(zip((index for index, _ in valid), outcomes, strict=True))
    results = [
        _item_answer(index, item, outcome_of[index]) if isinstance(item, BatchAction) else item
        for index, item in enumerate(parsed)
    ]
    applied = sum(1 for r in results if r["status"] == 200)
    return JSONResponse({"applied": applied, "refused": len(results) - applied, "results": results})
