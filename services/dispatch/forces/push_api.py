"""任务推送's routes (thin): subscribe a webhook for a unit or a member, list, remove; deliveries and dead
letters, visible; a dead letter sent again. 订阅推送、查看投递与死信、死信重投。"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field, HttpUrl

from services.dispatch.api_common import Ctx, Staff
from services.dispatch.context import utc_now
from services.dispatch.forces import push, store
from services.dispatch.forces.answers import DeliveryList, Subscription, SubscriptionList
from shared.answers import documented
from shared.auth import StaffPrincipal
from shared.inputs import NulFreeModel

router = APIRouter()
TAG = "forces 力量调度"
_404: dict[int | str, dict[str, Any]] = {404: {"description": "no such subscription or delivery in your scope"}}


class SubscribeBody(NulFreeModel):
    """A webhook for a unit's (or one member's) new tasks and changes 订阅任务推送."""

    url: HttpUrl = Field(description="http(s) URL receiving signed POSTs 接收地址")
    secret: str = Field(min_length=16, max_length=200, description="HMAC-SHA256 key 签名密钥")
    unit: str | None = Field(None, description="admin only: the unit (others: their own) 单位")
    member: str | None = Field(None, description="one member of the unit (a member token: itself) 队员")


def _sub_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "unit": row["unit"],
        "member": row["member"],
        "url": row["url"],
        "created_at": row["created_at"].isoformat() if row.get("created_at") else None,
    }


def _owns(principal: StaffPrincipal, row: dict[str, Any]) -> bool:
    if principal.role in ("admin", "dispatcher") and principal.whole_county:
        return True
    if principal.role == "unit":
        return principal.unit == row["unit"]
    if principal.role == "member":
        return principal.member == row["member"] and principal.unit == row["unit"]
    return False


@router.post(
    "/v1/forces/webhooks",
    tags=[TAG],
    summary="Subscribe a webhook to a unit's or a member's tasks 订阅任务推送 (unit, member, admin)",
    description="Deliveries are POSTs signed with `X-ZHPT-Signature: sha256=HMAC-SHA256(secret, "
    '"<X-ZHPT-Timestamp>.<body>")`, at least once (`X-ZHPT-Delivery` names each), retried with backoff and '
    "dead-lettered after N failures (listed, never dropped).",
    **documented(Subscription, 401, 403, 422, status=201, description="Created"),
    status_code=201,
)
async def post_webhook(ctx: Ctx, body: SubscribeBody, principal: Staff) -> dict[str, Any]:
    unit, member = body.unit, body.member
    if principal.role == "member":
        unit, member = principal.unit, member or principal.member
        if member != principal.member:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a member subscribes for itself only 只能订阅本人任务")
    elif principal.role == "unit":
        if unit not in (None, principal.unit):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a unit subscribes for itself only 只能订阅本单位任务")
        unit = principal.unit
    elif principal.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not subscribe")
    if not unit:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unit is required 须指定单位")
    async with ctx.runtime.uow() as uow:
        if member is not None:
            found = await store.member(session=uow.session, member_id=member)
            if found is None or found["unit"] != unit:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{member} is not a member of {unit}")
        sub_id = await push.subscribe(
            session=uow.session, unit=unit, member=member, url=str(body.url), secret=body.secret,
            by=principal.member or principal.token_name,
        )  # fmt: skip
    return {"id": str(sub_id), "unit": unit, "member": member, "url": str(body.url), "created_at": None}


@router.get(
    "/v1/forces/webhooks",
    tags=[TAG],
    summary="Subscriptions in the caller's scope 推送订阅 (secrets never shown)",
    **documented(SubscriptionList, 401),
)
async def get_webhooks(ctx: Ctx, principal: Staff) -> dict[str, Any]:
    async with ctx.runtime.uow() as uow:
        rows = await push.subscriptions(session=uow.session, unit=None, member=None)
    return {"items": [_sub_json(r) for r in rows if _owns(principal, r)]}


async def _owned(ctx: Ctx, principal: StaffPrincipal, sub_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.runtime.uow() as uow:
        rows = await push.subscriptions(session=uow.session, unit=None, member=None)
    row = next((r for r in rows if r["id"] == sub_id), None)
    if row is None or not _owns(principal, row):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such subscription 订阅不存在")
    return row


@router.delete(
    "/v1/forces/webhooks/{sub_id}",
    tags=[TAG],
    summary="Remove a subscription 取消订阅 (its deliveries stay listed)",
    **documented(Subscription, 401, 404, extra=_404),
)
async def delete_webhook(ctx: Ctx, sub_id: uuid.UUID, principal: Staff) -> dict[str, Any]:
    row = await _owned(ctx, principal, sub_id)
    async with ctx.runtime.uow() as uow:
        await push.delete_subscription(session=uow.session, sub_id=sub_id)
    return _sub_json(row)


def _delivery_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "webhook_id": str(row["webhook_id"]),
        "transition_id": row["transition_id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "next_attempt_at": row["next_attempt_at"].isoformat(),
        "delivered_at": row["delivered_at"].isoformat() if row["delivered_at"] else None,
        "payload": row["payload"],
    }


@router.get(
    "/v1/forces/deliveries",
    tags=[TAG],
    summary="Deliveries of the caller's subscriptions 投递记录; `status=dead`: the dead letters 死信",
    **documented(DeliveryList, 401),
)
async def get_deliveries(
    ctx: Ctx,
    principal: Staff,
    webhook: Annotated[uuid.UUID | None, Query(description="one subscription 订阅")] = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(pending|delivered|dead)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    async with ctx.runtime.uow() as uow:
        subs = [r for r in await push.subscriptions(session=uow.session, unit=None, member=None) if _owns(principal, r)]
        ids = [r["id"] for r in subs if webhook is None or r["id"] == webhook]
        rows = await push.deliveries(session=uow.session, webhook_ids=ids, status=status_, limit=limit)
    return {"items": [_delivery_json(r) for r in rows]}


@router.post(
    "/v1/forces/deliveries/{delivery_id}/retry",
    tags=[TAG],
    summary="Send a dead letter again 死信重投",
    **documented(DeliveryList, 401, 404, extra=_404),
)
async def retry(ctx: Ctx, delivery_id: int, principal: Staff) -> dict[str, Any]:
    async with ctx.runtime.uow() as uow:
        subs = [r for r in await push.subscriptions(session=uow.session, unit=None, member=None) if _owns(principal, r)]
        rows = await push.deliveries(session=uow.session, webhook_ids=[r["id"] for r in subs], status="dead",
                                     limit=10_000)  # fmt: skip
        if not any(r["id"] == delivery_id for r in rows) or not await push.retry_delivery(
            session=uow.session, delivery_id=delivery_id, now=utc_now()
        ):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such dead letter 无此死信")
    return {"items": []}
