"""Dispatch's writes 派遣写库: the set-based ``unnest`` inserts and the case row update.

Nothing here commits: the caller's transaction (the unit of work or the consumer
runner) does. 不提交：由调用方事务负责。

* :data:`CASE_COLUMNS` / :data:`TRANSITION_COLUMNS` — one ``INSERT … SELECT FROM unnest(…)`` per
  table (:class:`shared.unnest.UnnestColumns`): any number of rows in one statement, in list order.
* :func:`insert_cases` — new cases with their timeline rows and events, in one statement. 新案件一条语句写入。
* :func:`write_staged` / :func:`write_pending` — timeline rows and outbox events. 写时间线与发件箱。
* :func:`load_for_update` / :func:`save` — one case under ``SELECT … FOR UPDATE``, its changed columns
  written back. 加锁读取与保存案件（只写变化的列）。
* :func:`load_many_for_update` — several cases locked in one statement, in id order (two batches
  locking overlapping cases never wait on each other crosswise). 按 id 顺序批量加锁读取。
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.models import case_transitions, cases, outbox
from services.dispatch.records import CaseRecord
from services.dispatch.staging import Pending
from shared.events import CASE_EVENTS, CASE_EVENTS_BULK, EventEnvelope
from shared.messaging.outbox import add_events, outbox_arrays, outbox_params, queue_events_sql
from shared.unnest import UnnestColumns, unnest_insert

__all__ = [
    "CASE_COLUMNS",
    "TRANSITION_COLUMNS",
    "LockedCase",
    "NewCaseRows",
    "UnnestColumns",
    "insert_cases",
    "load_for_update",
    "load_many_for_update",
    "save",
    "unnest_insert",
    "update_cases",
    "write_pending",
    "write_staged",
]


#: New cases, many rows in one statement; an incident that has its case already is skipped. 批量立案（已存在则跳过）。
CASE_COLUMNS = UnnestColumns(
    cases,
    [c.name for c in cases.columns if c.name not in ("seq", "created_at", "updated_at")],
    suffix="ON CONFLICT (incident_id) DO NOTHING RETURNING id",
)
#: Timeline rows, many in one statement. 批量写时间线。
TRANSITION_COLUMNS = UnnestColumns(
    case_transitions, [c.name for c in case_transitions.columns if c.name not in ("id", "recorded_at")]
)
#: The timeline rows of the cases :func:`insert_cases` inserted (the ``inserted`` item of its ``WITH``).
_NEW_TIMELINE = UnnestColumns(
    case_transitions, TRANSITION_COLUMNS.names, where="u.case_id IN (SELECT id FROM inserted)", prefix="t_"
)
#: New cases, their timeline rows and their events on both lanes, in one statement: an incident that has
#: its case already (another replica made it) is skipped with its rows and events; the ids inserted come
#: back. On a busy machine each round trip waits for the CPU on both sides, more than the statements take.
#: 新案件、时间线与两条通道的事件一条语句写入；已有案件的事件连同其行与事件一并跳过；返回新插入的 id。
_INSERT_CASES = text(
    f"WITH inserted AS ({CASE_COLUMNS.statement.text}), "
    f"timeline AS ({_NEW_TIMELINE.statement.text}), "
    f"{queue_events_sql(outbox, CASE_EVENTS, name='live', prefix='e', cases_in='SELECT id FROM inserted')}, "
    f"{queue_events_sql(outbox, CASE_EVENTS_BULK, name='bulk', prefix='b', cases_in='SELECT id FROM inserted')} "
    f"SELECT id FROM inserted"
)


@dataclass(frozen=True, slots=True)
class NewCaseRows:
    """A new case as statement values: its row (:data:`CASE_COLUMNS`), its timeline rows
    (:data:`TRANSITION_COLUMNS`) and its events, on ``case.events`` and (a history import's) on
    ``case.events.bulk``. 一个新案件的语句值：案件行、时间线行与事件。"""

    case_id: uuid.UUID
    case_values: list[Any]
    transition_values: Sequence[list[Any]]
    events: Sequence[EventEnvelope[Any]]
    bulk_events: Sequence[EventEnvelope[Any]] = ()


async def insert_cases(session: AsyncSession, new: Sequence[NewCaseRows]) -> set[uuid.UUID]:
    """Insert ``new`` (in order) with their timeline rows and events, in one statement; the ids of
    those inserted (an incident whose case exists already keeps it, and nothing of it is written).
    按序插入新案件及其时间线与事件（一条语句）；返回插入的 id（事件已有案件则整体跳过）。"""
    if not new:
        return set()
    events = [(case.case_id, e) for case in new for e in case.events]
    bulk = [(case.case_id, e) for case in new for e in case.bulk_events]
    params = {
        **CASE_COLUMNS.params([case.case_values for case in new]),
        **_NEW_TIMELINE.params([row for case in new for row in case.transition_values]),
        **outbox_params(outbox_arrays(CASE_EVENTS, [e for _, e in events]), prefix="e", cases=[c for c, _ in events]),
        **outbox_params(outbox_arrays(CASE_EVENTS_BULK, [e for _, e in bulk]), prefix="b", cases=[c for c, _ in bulk]),
    }
    return set((await session.execute(_INSERT_CASES, params)).scalars().all())


async def write_staged(
    session: AsyncSession,
    transitions: Sequence[Sequence[Any]],
    events: Sequence[EventEnvelope[Any]],
    bulk_events: Sequence[EventEnvelope[Any]] = (),
) -> None:
    """Timeline rows (statement values, one statement) and outbox events (one statement per lane):
    ``events`` on ``case.events``, ``bulk_events`` (cases a history import created) on
    ``case.events.bulk``. 写时间线与发件箱（实时 / 批量导入案件的事件各一条语句）。"""
    if transitions:
        await session.execute(TRANSITION_COLUMNS.statement, TRANSITION_COLUMNS.params(transitions))
    if events:
        await add_events(session, outbox, CASE_EVENTS, events)
    if bulk_events:
        await add_events(session, outbox, CASE_EVENTS_BULK, bulk_events)


async def write_pending(session: AsyncSession, pending: Pending) -> None:
    """Timeline rows (one statement) and outbox events (one statement). 写时间线与发件箱（各一条语句）。"""
    await write_staged(
        session, [TRANSITION_COLUMNS.values(row) for row in pending.rows], pending.events, pending.bulk_events
    )


@dataclass
class LockedCase(CaseRecord):
    """A case read ``FOR UPDATE``, with its row's values as read (comparable forms), so that
    :func:`save` writes only the columns that changed: an action leaves the explanation (≈ 1.8 KB,
    compressed and kept out of line) as it was, and PostgreSQL then keeps the stored value instead
    of compressing, storing and logging it again. 加锁读取的案件及读取时的列值：保存时只写变化的列。"""

    as_read: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __copy__(self) -> CaseRecord:
        """A copy is a record of its own, not the row as read (a follow-up case starts as a copy of
        its parent): it writes every column. 副本是独立记录，写入全部列。"""
        return CaseRecord(**{f.name: getattr(self, f.name) for f in fields(CaseRecord)})


def _comparable(value: Any) -> Any:
    """A column value in a form that is equal only when the stored value would be: JSON values
    (dicts, lists) as their key-sorted JSON, since an object's key order is not kept by ``jsonb``
    and an in-place change must not go unseen; other values as they are. 可比较的列值。"""
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


_UNREAD = object()


def locked_case(row: Any) -> LockedCase:
    """A ``cases`` row the caller has locked (``FOR UPDATE``), as a record that writes only the
    columns changed since. 调用方已加锁的案件行（保存时只写变化的列）。"""
    record = LockedCase.from_row(row)
    assert isinstance(record, LockedCase)
    record.as_read = {k: _comparable(v) for k, v in record.to_row(snapshot_json=row["snapshot"]).items()}
    return record


async def load_for_update(session: AsyncSession, case_id: uuid.UUID) -> LockedCase | None:
    """The case ``case_id`` locked ``FOR UPDATE`` (None if there is none). 加锁读取案件。"""
    row = (await session.execute(select(cases).where(cases.c.id == case_id).with_for_update())).mappings().first()
    return None if row is None else locked_case(row)


async def load_many_for_update(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, LockedCase]:
    """The cases among ``case_ids`` that exist, locked ``FOR UPDATE`` in id order, by id. 按 id 顺序加锁读取多件案件。

    Rows are locked as the ordered scan reaches them, so two transactions locking overlapping sets
    this way take their common rows in the same order and cannot deadlock. 按同一顺序加锁，不会互相死锁。"""
    wanted = sorted(set(case_ids))
    if not wanted:
        return {}
    statement = select(cases).where(cases.c.id.in_(wanted)).order_by(cases.c.id).with_for_update()
    rows = (await session.execute(statement)).mappings().all()
    return {row["id"]: locked_case(row) for row in rows}


async def save(session: AsyncSession, record: CaseRecord, pending: Pending) -> None:
    """Update the case row and write ``pending``'s timeline rows and events. 保存案件及其流转。

    A case read with :func:`load_for_update` gets only its changed columns written. 只写变化的列。"""
    await update_cases(session, [record])
    await write_pending(session, pending)


async def update_cases(session: AsyncSession, records: Sequence[CaseRecord]) -> None:
    """Update the case rows: a :class:`LockedCase` only its columns changed since read (or last
    written), another record every column. The rows that change the same columns go in one
    statement (``UPDATE … FROM unnest``): a batch of actions updates its cases in one or a few.
    更新案件行（加锁读取的案件只写变化的列）；变化列相同的行一条语句更新。"""
    groups: dict[UnnestColumns, list[list[Any]]] = {}
    for record in records:
        values = _changed_values(record)
        columns = _update_columns(("id", *values))
        groups.setdefault(columns, []).append(columns.values({"id": record.id, **values}))
    for columns, rows in groups.items():
        await session.execute(columns.statement, columns.params(rows))


def _changed_values(record: CaseRecord) -> dict[str, Any]:
    """The column values to write: a :class:`LockedCase`'s changed ones (which then become its row as
    read, so a second save compares with the first), another record's every one. 需写入的列值。"""
    values = record.to_row()
    for key in ("id", "incident_id", "incident"):
        values.pop(key)
    if not isinstance(record, LockedCase):
        return values
    changed: dict[str, Any] = {}
    for key, value in values.items():
        comparable = _comparable(value)
        if comparable != record.as_read.get(key, _UNREAD):
            changed[key] = value
            record.as_read[key] = comparable
    return changed


#: One set-based update per set of changed columns, made once (a few sets occur: an accept's, a result's …).
#: 每组变化列一条批量更新语句（缓存）。
_UPDATES: dict[tuple[str, ...], UnnestColumns] = {}


def _update_columns(names: tuple[str, ...]) -> UnnestColumns:
    found = _UPDATES.get(names)
    if found is None:
        if len(_UPDATES) >= 512:
            _UPDATES.clear()
        found = _UPDATES[names] = UnnestColumns(cases, names, update_key="id", also="updated_at = now()")
    return found
