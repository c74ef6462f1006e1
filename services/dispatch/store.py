"""Dispatch's writes 派遣写库: the set-based ``unnest`` inserts and the case row update.

Nothing here commits: the caller's transaction (the unit of work or the consumer
runner) does. 不提交：由调用方事务负责。

* :class:`UnnestColumns` compiles one ``INSERT … SELECT FROM unnest(…)`` per table:
  any number of rows in one statement, in list order. 多行一条语句插入，按列表顺序。
* :func:`write_staged` / :func:`write_pending` — timeline rows and outbox events. 写时间线与发件箱。
* :func:`load_for_update` / :func:`save` — one case under ``SELECT … FOR UPDATE``. 加锁读取与保存案件。
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Column, Table, TextClause, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.models import case_transitions, cases, outbox
from services.dispatch.records import CaseRecord
from services.dispatch.staging import Pending
from shared.events import CASE_EVENTS, EventEnvelope
from shared.messaging.outbox import add_events

__all__ = [
    "CASE_COLUMNS",
    "TRANSITION_COLUMNS",
    "UnnestColumns",
    "load_for_update",
    "save",
    "unnest_insert",
    "write_pending",
    "write_staged",
]


def _pg_type(column: Column[Any]) -> str:
    """PostgreSQL type name of a column (for ``CAST(:x AS <type>[])``). 列的 PostgreSQL 类型名。"""
    return str(column.type.compile(dialect=postgresql.dialect()))


def unnest_insert(table: Table, columns: Sequence[str], *, suffix: str = "") -> TextClause:
    """``INSERT … SELECT * FROM unnest(<one array per column>) ORDER BY ordinality`` (+ ``suffix``).

    One statement whatever the number of rows (arrays unnested server-side, no per-row binds; see
    :func:`shared.messaging.outbox.add_events`); rows are inserted in list order, so identities (``seq``,
    transition ``id``) follow it. Array-typed columns (``text[]``) travel as JSON arrays and JSONB
    columns as JSON, both as UTF-8 bytes (``bytea``, via :func:`_json`: no text decoding and
    re-encoding on the way). 一条语句插入多行：每列一个数组在服务端展开，按列表顺序插入；
    数组列以 JSON 数组、JSONB 列以 JSON 传入，均为 UTF-8 字节（免去文本解码再编码）。
    """
    selected: list[str] = []
    casts: list[str] = []
    for name in columns:
        column = table.c[name]
        if isinstance(column.type, ARRAY):
            element = str(column.type.item_type.compile(dialect=postgresql.dialect()))
            casts.append(f"CAST(:p_{name} AS bytea[])")
            selected.append(
                f"CAST(ARRAY(SELECT jsonb_array_elements_text(CAST(convert_from(u.{name}, 'UTF8') AS jsonb)))"
                f" AS {element}[])"
            )
        elif isinstance(column.type, JSONB):
            casts.append(f"CAST(:p_{name} AS bytea[])")
            selected.append(f"CAST(convert_from(u.{name}, 'UTF8') AS jsonb)")
        else:
            casts.append(f"CAST(:p_{name} AS {_pg_type(column)}[])")
            selected.append(f"u.{name}")
    names = ", ".join(columns)
    return text(
        f"INSERT INTO {table.fullname} ({names}) SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(casts)}) WITH ORDINALITY AS u({names}, ord) ORDER BY u.ord {suffix}"
    )


def _json(value: Any) -> bytes | None:
    """JSON as the engine writes JSONB (orjson), UTF-8 encoded. 与引擎一致的 JSON（UTF-8 字节）。"""
    return None if value is None else orjson.dumps(value)


class UnnestColumns:
    """The columns of one :func:`unnest_insert` statement and how their values travel. 批量插入的列。

    :meth:`values` turns a row into its statement values (JSON serialised) — done while staging,
    before any lock is taken; :meth:`params` transposes staged rows into the column arrays.
    :meth:`values` 在暂存时（加锁之前）把一行转为语句值；:meth:`params` 转置为各列数组。
    """

    __slots__ = ("_get", "json", "names", "statement")

    def __init__(self, table: Table, columns: Sequence[str], *, suffix: str = "") -> None:
        self.names = tuple(columns)
        #: Positions of the columns that travel as JSON. 以 JSON 传输的列位置。
        self.json = tuple(i for i, name in enumerate(self.names) if isinstance(table.c[name].type, ARRAY | JSONB))
        self.statement = unnest_insert(table, self.names, suffix=suffix)
        self._get = operator.itemgetter(*self.names)

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        """Statement values of one row, in column order. 一行的语句值（按列序）。"""
        values = list(self._get(row)) if len(self.names) > 1 else [row[self.names[0]]]
        for i in self.json:
            values[i] = _json(values[i])
        return values

    def params(self, rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
        """The column arrays of ``rows`` (each from :meth:`values`). 各列数组参数。"""
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in self.names]
        return {f"p_{name}": list(column) for name, column in zip(self.names, columns, strict=True)}


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


async def write_staged(
    session: AsyncSession, transitions: Sequence[Sequence[Any]], events: Sequence[EventEnvelope[Any]]
) -> None:
    """Timeline rows (statement values, one statement) and outbox events (one statement). 写时间线与发件箱。"""
    if transitions:
        await session.execute(TRANSITION_COLUMNS.statement, TRANSITION_COLUMNS.params(transitions))
    if events:
        await add_events(session, outbox, CASE_EVENTS, events)


async def write_pending(session: AsyncSession, pending: Pending) -> None:
    """Timeline rows (one statement) and outbox events (one statement). 写时间线与发件箱（各一条语句）。"""
    await write_staged(session, [TRANSITION_COLUMNS.values(row) for row in pending.rows], pending.events)



async def load_for_update(session: AsyncSession, case_id: uuid.UUID) -> CaseRecord | None:
    """The case ``case_id`` locked ``FOR UPDATE`` (None if there is none). 加锁读取案件。"""
    row = (await session.execute(select(cases).where(cases.c.id == case_id).with_for_update())).mappings().first()
    return CaseRecord.from_row(row) if row is not None else None


async def save(session: AsyncSession, record: CaseRecord, pending: Pending) -> None:
    """Update the case row and write ``pending``'s timeline rows and events. 保存案件及其流转。"""
    values = record.to_row()
    for key in ("id", "incident_id", "incident"):
        values.pop(key)
    values["updated_at"] = func.now()
    await session.execute(update(cases).where(cases.c.id == record.id).values(**values))
    await write_pending(session, pending)

