"""The consumer folds the events it has just stored as it holds them, not read back
(``recompute_facts(in_hand=…)``); every fact must still be the one all of the case's stored events
give. 手中事件不再读回，事实仍须等于由全部已存事件归约的结果。

The seeded cases (``accountability_cases.py``: times in China Standard Time, every kind of history)
go in through ``apply_events`` in small shuffled batches, so most cases have events stored by an
earlier batch and events in hand at once, and some events come twice.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metrics.facts import CaseEventRecord, reduce_events
from services.metrics.models import case_facts
from services.metrics.store import EVENT_RECORD_COLUMNS, apply_events, event_record, fact_row
from shared.calendar import load_calendar
from shared.db import UnitOfWork, create_engine, session_factory
from tests.integration.accountability_cases import generate

CALENDAR = load_calendar()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


async def test_facts_from_events_in_hand_equal_the_facts_of_every_stored_event(engine: AsyncEngine) -> None:
    records = generate(300, seed=7)
    assert any(r.occurred_at.utcoffset() for r in records)  # times not in UTC: the read-back differs in form
    rng = random.Random(7)
    shuffled = records + rng.sample(records, 200)  # redelivered copies
    rng.shuffle(shuffled)
    sessions = session_factory(engine)
    for i in range(0, len(shuffled), 37):
        async with UnitOfWork(sessions) as uow:
            await apply_events(session=uow.session, records=shuffled[i : i + 37], calendar=CALENDAR)

    async with engine.connect() as conn:
        stored = (await conn.execute(select(*EVENT_RECORD_COLUMNS))).all()
        facts = {row["case_id"]: dict(row) for row in (await conn.execute(select(case_facts))).mappings()}
    history: dict[uuid.UUID, list[CaseEventRecord]] = {}
    for row in stored:
        history.setdefault(row.case_id, []).append(event_record(row))
    assert len(stored) == len({r.event_id for r in records})
    assert set(facts) == set(history) and len(facts) >= 300

    def compared(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k != "updated_at"}

    expected = {case_id: fact_row(reduce_events(events), CALENDAR) for case_id, events in history.items()}
    differing = [case_id for case_id in facts if compared(facts[case_id]) != compared(expected[case_id])]
    assert differing == []
