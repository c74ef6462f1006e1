"""Consumers of the metrics service 消费者 (thin: the rules live in the pure modules).

``case.events`` → :class:`CaseEventConsumer`: store a batch of events, recompute each touched
case's fact once from all its events (:func:`services.metrics.store.apply_events`), and — when the fact changed
and it touches a signed-off period — mark that period for a revision. Counters and histograms
are observed only after the transaction commits (registered on the unit of work).
``jurisdiction.changed`` → :func:`jurisdiction_handler`: refresh the units directory (asked for
after the commit; the directory fetches on its own task).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Any

from services.metrics.facts import CaseEventRecord
from services.metrics.signoff import mark_changed_many
from services.metrics.store import apply_events, moments_of
from services.metrics.telemetry import MetricsTelemetry
from services.metrics.units import UnitDirectory
from shared.calendar import WorkingCalendar
from shared.db import UnitOfWork
from shared.events import CaseEvent, ContractError, EventEnvelope
from shared.messaging.consumer import Handler

__all__ = ["CaseEventConsumer", "jurisdiction_handler"]


class CaseEventConsumer:
    """Folds ``case.*`` events into case facts. 将案件事件归约为案件事实。"""

    def __init__(
        self, *, calendar: WorkingCalendar, telemetry: MetricsTelemetry, revisions_wake: asyncio.Event | None = None
    ) -> None:
        self.calendar = calendar
        self.telemetry = telemetry
        self.revisions_wake = revisions_wake

    async def __call__(self, uow: UnitOfWork, envelopes: list[EventEnvelope[Any]]) -> None:
        """A batch of ``case.*`` events (a poll's, each partition's in order; a case's events are all in
        one partition): each touched case's fact is recomputed once. 一批案件事件：每个涉及的案件只重算一次。"""
        records = [_record_of(envelope) for envelope in envelopes]
        session = uow.session
        changed: list[tuple[str, list[datetime]]] = []
        for change, fresh in await apply_events(session=session, records=records, calendar=self.calendar):
            for record in fresh:  # events already folded in (replay, redelivery) count nothing
                label = self.telemetry.type_label(record.type)
                uow.after_commit(partial(self.telemetry.events.labels(label).inc))
            new = change.new
            if change.newly_resolved:
                source, natural, working = (
                    new.get("source"), new.get("handling_natural_h"), new.get("handling_working_h")
                )  # fmt: skip
                uow.after_commit(partial(self.telemetry.observe_handling, source, natural, working))
            if change.changed:
                changed.append((f"case:{change.case_id}", moments_of(change)))
        marked = await mark_changed_many(session=session, changes=changed)
        if marked and self.revisions_wake is not None:
            uow.after_commit(self.revisions_wake.set)


def _record_of(envelope: EventEnvelope[Any]) -> CaseEventRecord:
    payload = envelope.data
    if not isinstance(payload, CaseEvent):  # the runner decoded it by type; guard anyway
        raise ContractError(f"{envelope.type} does not carry a CaseEvent")
    return CaseEventRecord(
        event_id=str(envelope.id),
        case_id=str(payload.case_id),
        type=envelope.type,
        occurred_at=payload.occurred_at,
        version=payload.version,
        data=payload.model_dump(mode="json"),
    )


def jurisdiction_handler(directory: UnitDirectory) -> Handler:
    """``jurisdiction.changed`` → fetch the units again (on the directory's own task, asked for once
    the transaction has committed). 辖区变更：提交后请求单位目录在其自身任务中刷新。"""

    async def handle(uow: UnitOfWork, envelope: EventEnvelope[Any]) -> None:
        uow.after_commit(directory.request_refresh)

    return handle
