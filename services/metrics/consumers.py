"""Consumers of the metrics service 消费者 (thin: the rules live in the pure modules).

``case.events`` → :class:`CaseEventConsumer`: store the event, recompute that case's fact
from all its events (:func:`services.metrics.store.apply_event`), and — when the fact changed
and it touches a signed-off period — mark that period for a revision. Histograms are observed
only after the transaction commits.
``jurisdiction.changed`` → :func:`jurisdiction_handler`: refresh the units directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import CaseEventRecord
from services.metrics.signoff import mark_changed
from services.metrics.store import apply_event, moments_of
from services.metrics.telemetry import MetricsTelemetry
from services.metrics.units import UnitDirectory
from shared.calendar import WorkingCalendar
from shared.events import CaseEvent, ContractError, EventEnvelope

__all__ = ["CaseEventConsumer", "jurisdiction_handler"]


class CaseEventConsumer:
    """Folds ``case.*`` events into case facts. 将案件事件归约为案件事实。"""

    def __init__(
        self, *, calendar: WorkingCalendar, telemetry: MetricsTelemetry, revisions_wake: asyncio.Event | None = None
    ) -> None:
        self.calendar = calendar
        self.telemetry = telemetry
        self.revisions_wake = revisions_wake

    async def __call__(self, session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        payload = envelope.data
        if not isinstance(payload, CaseEvent):  # the runner decoded it by type; guard anyway
            raise ContractError(f"{envelope.type} does not carry a CaseEvent")
        record = CaseEventRecord(
            event_id=str(envelope.id),
            case_id=str(payload.case_id),
            type=envelope.type,
            occurred_at=payload.occurred_at,
            version=payload.version,
            data=payload.model_dump(mode="json"),
        )
        change = await apply_event(session=session, record=record, calendar=self.calendar)
        if change is None:  # already folded in (replay through another group, or redelivery)
            return
        label = self.telemetry.type_label(envelope.type)
        self.telemetry.after_commit(session, lambda: self.telemetry.events.labels(label).inc())
        new = change.new
        if change.newly_resolved:
            source, natural, working = new.get("source"), new.get("handling_natural_h"), new.get("handling_working_h")
            self.telemetry.after_commit(session, lambda: self.telemetry.observe_handling(source, natural, working))
        if change.changed:
            marked = await mark_changed(session=session, subject=f"case:{change.case_id}", moments=moments_of(change))
            if marked and self.revisions_wake is not None:
                wake = self.revisions_wake
                self.telemetry.after_commit(session, wake.set)


def jurisdiction_handler(
    directory: UnitDirectory,
) -> Callable[[AsyncSession, EventEnvelope[Any]], Awaitable[None]]:
    """``jurisdiction.changed`` → fetch the units again (in the background). 辖区变更即刷新单位。"""

    async def handle(session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        directory.request_refresh()

    return handle
