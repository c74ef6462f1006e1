"""``store.save`` writes only the columns of a case that changed since ``load_for_update`` read it;
the row read back must still be exactly the record as saved, whatever changed and however (a new
value, a value changed in place inside a JSON column, the lifecycle snapshot). 只写变化的列，读回的行
仍须与保存的记录完全一致。
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatch.case_model import Action, Actor, Role
from services.dispatch.lifecycle import apply
from services.dispatch.models import cases
from services.dispatch.records import CaseRecord
from services.dispatch.staging import Pending, must, stage_applied
from services.dispatch.store import LockedCase, load_for_update, load_many_for_update, save, update_cases
from shared.db import UnitOfWork, create_engine, session_factory
from shared.embedded import TansuBroker
from tests.integration.test_dispatch_support import Stack, platform, record


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(stack.database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


async def _row(engine: AsyncEngine, case_id: uuid.UUID) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(cases).where(cases.c.id == case_id))).mappings().one()
    return dict(row)


async def test_the_row_read_back_is_the_record_saved(stack: Stack, engine: AsyncEngine) -> None:
    case = await stack.case_of(await stack.post("cityops", record("cityops")))
    case_id = uuid.UUID(case["id"])
    sessions = session_factory(engine)
    before = await _row(engine, case_id)

    async with UnitOfWork(sessions) as uow:
        locked = await load_for_update(uow.session, case_id)
        assert isinstance(locked, LockedCase)
        pending = Pending()
        locked.explanation["manual_decisions"] = [{"unit": "u-1", "reason": "in place"}]  # changed in place
        locked.urgency = "urgent"
        locked.accept_deadline = None
        await save(uow.session, locked, pending)
    after = await _row(engine, case_id)
    assert after["explanation"]["manual_decisions"] == [{"unit": "u-1", "reason": "in place"}]
    assert (after["urgency"], after["accept_deadline"]) == ("urgent", None)
    unchanged = {k for k in before if k not in ("explanation", "urgency", "accept_deadline", "updated_at")}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}

    async with UnitOfWork(sessions) as uow:  # a lifecycle transition: the snapshot and its columns
        locked = await load_for_update(uow.session, case_id)
        assert locked is not None
        pending = Pending()
        applied = must(
            apply(
                locked.snapshot,
                Action.ACCEPT,
                {"expected_version": locked.snapshot.version},
                Actor(Role.UNIT, unit=case["unit"], id="tester"),
                datetime.now(UTC),
            )
        )
        stage_applied(pending, locked, applied, correlation_id="test")
        await save(uow.session, locked, pending)
        saved = locked.to_row()
    after = await _row(engine, case_id)
    assert {k: after[k] for k in saved if k != "snapshot"} == {k: v for k, v in saved.items() if k != "snapshot"}
    assert after["snapshot"] == locked.snapshot.model_dump(mode="json")
    assert (after["state"], after["version"]) == ("accepted", before["version"] + 1)


async def test_a_second_save_in_one_transaction_compares_with_the_first(stack: Stack, engine: AsyncEngine) -> None:
    """A column changed and saved, then changed back and saved again in the same transaction, ends
    as it was: the second save compares with what the first wrote, not with the row as read."""
    case = await stack.case_of(await stack.post("cityops", record("cityops")))
    case_id = uuid.UUID(case["id"])
    before = await _row(engine, case_id)
    async with UnitOfWork(session_factory(engine)) as uow:
        locked = await load_for_update(uow.session, case_id)
        assert locked is not None
        locked.urgency = "critical" if before["urgency"] != "critical" else "normal"
        await save(uow.session, locked, Pending())
        locked.urgency = before["urgency"]
        await save(uow.session, locked, Pending())
        copied = copy.copy(locked)  # a follow-up case starts so: a record of its own, every column written
        assert type(copied) is CaseRecord and copied.to_row() == locked.to_row()
    assert (await _row(engine, case_id))["urgency"] == before["urgency"]


async def test_many_cases_changing_different_columns_are_each_written_as_saved(
    stack: Stack, engine: AsyncEngine
) -> None:
    """``update_cases``: rows that change different columns (one statement per set of columns), a
    JSON column, an array column and a record not read ``FOR UPDATE`` (every column) in one call;
    each row read back is its record as saved. 多行、不同变化列一次更新，逐行读回核对。"""
    ids = [uuid.UUID((await stack.case_of(await stack.post("cityops", record("cityops"))))["id"]) for _ in range(4)]
    before = {i: await _row(engine, i) for i in ids}
    async with UnitOfWork(session_factory(engine)) as uow:
        locked = await load_many_for_update(uow.session, ids[::-1])
        assert list(locked) == sorted(ids)
        a, b, c, d = (locked[i] for i in ids)
        a.urgency = "critical" if before[ids[0]]["urgency"] != "critical" else "normal"
        b.urgency = a.urgency
        b.explanation = {**b.explanation, "note": "batch"}
        c.snapshot = c.snapshot.model_copy(update={"cohandlers": ("u-x", "u-y")})
        plain = CaseRecord(**{f: getattr(d, f) for f in CaseRecord.__dataclass_fields__})  # every column
        plain.accept_deadline = None
        await update_cases(uow.session, [a, b, c, plain])
        saved = {r.id: r.to_row() for r in (a, b, c, plain)}
    for case_id in ids:
        after = await _row(engine, case_id)
        assert {k: after[k] for k in saved[case_id]} == saved[case_id], case_id
        assert after["updated_at"] > before[case_id]["updated_at"]
    assert (await _row(engine, ids[2]))["cohandlers"] == ["u-x", "u-y"]
