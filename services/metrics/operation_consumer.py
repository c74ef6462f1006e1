"""The ``operation.events`` consumer of the metrics service 联合执法事件消费者 (thin).

Each ``operation.*`` event is stored once and its operation's lapses (late and absent units) are
recomputed from all of its events (:func:`services.metrics.operation_store.apply_operation_event`);
the runner records the event id in ``processed_messages`` in the same transaction and commits the
offset after it, so a redelivery changes nothing. 逐条存储并重算；重复投递无副作用。
"""

from __future__ import annotations

from typing import Any

from services.metrics.operation_store import apply_operation_event
from services.metrics.operations import OperationEventRecord
from shared.db import UnitOfWork
from shared.events import ContractError, EventEnvelope, OperationEvent

__all__ = ["operation_handler"]


async def operation_handler(uow: UnitOfWork, envelope: EventEnvelope[Any]) -> None:
    """One ``operation.*`` event → the operation's lapses. 一条联合执法事件 → 该行动的迟到/缺席记录。"""
    payload = envelope.data
    if not isinstance(payload, OperationEvent):  # the runner decoded it by type; guard anyway
        raise ContractError(f"{envelope.type} does not carry an OperationEvent")
    record = OperationEventRecord(
        event_id=str(envelope.id),
        operation_id=str(payload.operation_id),
        type=envelope.type,
        version=payload.version,
        occurred_at=payload.occurred_at,
        data=payload.model_dump(mode="json"),
    )
    await apply_operation_event(session=uow.session, record=record)
