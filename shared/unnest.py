"""Set-based inserts and updates 批量插入与更新: one ``INSERT … SELECT FROM unnest(<one array per
column>)`` per table, or one ``UPDATE … FROM unnest(…)`` for many rows by key.

Any number of rows in one statement, whose SQL text never changes (no per-row binds, nothing to
compile per call): the arrays are unnested server-side. Dispatch writes its cases and timeline rows
this way, and metrics its case events and facts. 任意多行一条语句、语句文本固定（无逐行绑定，无需每次编译）。
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,  # the generic type: postgresql.ARRAY is a subclass of it
    Column,
    Table,
    TextClause,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["UnnestColumns", "unnest_insert", "unnest_update"]


def _pg_type(column: Column[Any]) -> str:
    """PostgreSQL type name of a column (for ``CAST(:x AS <type>[])``). 列的 PostgreSQL 类型名。"""
    return str(column.type.compile(dialect=postgresql.dialect()))


def unnest_insert(
    table: Table, columns: Sequence[str], *, suffix: str = "", where: str = "", prefix: str = "p_"
) -> TextClause:
    """``INSERT … SELECT * FROM unnest(<one array per column>) ORDER BY ordinality`` (+ ``suffix``).

    One statement whatever the number of rows (arrays unnested server-side, no per-row binds; see
    :func:`shared.messaging.outbox.add_events`); rows are inserted in list order, so identities (a
    ``seq``, an ``id``) follow it. Array-typed columns (``text[]``) travel as JSON arrays and JSONB
    columns as JSON, both as UTF-8 bytes (``bytea``, via :func:`_json`: no text decoding and
    re-encoding on the way). 一条语句插入多行：每列一个数组在服务端展开，按列表顺序插入；
    数组列以 JSON 数组、JSONB 列以 JSON 传入，均为 UTF-8 字节（免去文本解码再编码）。

    ``where``: a condition on the unnested row ``u`` (only those rows are inserted); ``prefix``: the
    parameters' names are ``<prefix><column>`` (two such inserts in one statement need two prefixes).
    ``where`` 为对展开行 ``u`` 的筛选条件；``prefix`` 为参数名前缀（同一语句中的两个插入需不同前缀）。
    """
    casts, selected = _unnested(table, columns, prefix)
    names = ", ".join(columns)
    return text(
        f"INSERT INTO {table.fullname} ({names}) SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(casts)}) WITH ORDINALITY AS u({names}, ord) {f'WHERE {where} ' if where else ''}"
        f"ORDER BY u.ord {suffix}"
    )


def _unnested(table: Table, columns: Sequence[str], prefix: str) -> tuple[list[str], list[str]]:
    """Per column: the array parameter's cast, and the unnested value ``u.<column>`` as the column's
    type (JSON arrays and JSONB travel as UTF-8 bytes). 各列的数组参数与展开后的列值表达式。"""
    selected: list[str] = []
    casts: list[str] = []
    for name in columns:
        column = table.c[name]
        if isinstance(column.type, ARRAY):
            element = str(column.type.item_type.compile(dialect=postgresql.dialect()))
            casts.append(f"CAST(:{prefix}{name} AS bytea[])")
            selected.append(
                f"CAST(ARRAY(SELECT jsonb_array_elements_text(CAST(convert_from(u.{name}, 'UTF8') AS jsonb)))"
                f" AS {element}[])"
            )
        elif isinstance(column.type, JSONB):
            casts.append(f"CAST(:{prefix}{name} AS bytea[])")
            selected.append(f"CAST(convert_from(u.{name}, 'UTF8') AS jsonb)")
        else:
            casts.append(f"CAST(:{prefix}{name} AS {_pg_type(column)}[])")
            selected.append(f"u.{name}")
    return casts, selected


def unnest_update(table: Table, key: str, columns: Sequence[str], *, also: str = "", prefix: str = "p_") -> TextClause:
    """``UPDATE <table> SET <column> = u.<column>, … FROM unnest(…) WHERE <key> = u.<key>``: many rows,
    each by its key, in one statement (``columns`` starts with ``key``); ``also``: further assignments
    (``"updated_at = now()"``). Values travel as in :func:`unnest_insert`. 一条语句按键更新多行。"""
    if not columns or columns[0] != key:
        raise ValueError("the key column comes first")
    casts, selected = _unnested(table, columns, prefix)
    sets = [f"{name} = {value}" for name, value in zip(columns[1:], selected[1:], strict=True)]
    if also:
        sets.append(also)
    return text(
        f"UPDATE {table.fullname} AS t SET {', '.join(sets)} "
        f"FROM unnest({', '.join(casts)}) AS u({', '.join(columns)}) WHERE t.{key} = u.{key}"
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

    __slots__ = ("_get", "json", "names", "prefix", "statement")

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        suffix: str = "",
        where: str = "",
        prefix: str = "p_",
        update_key: str | None = None,
        also: str = "",
    ) -> None:
        self.names = tuple(columns)
        self.prefix = prefix
        #: Positions of the columns that travel as JSON. 以 JSON 传输的列位置。
        self.json = tuple(i for i, name in enumerate(self.names) if isinstance(table.c[name].type, ARRAY | JSONB))
        #: An insert, or with ``update_key`` an update by that key (:func:`unnest_update`). 插入，或按键更新。
        self.statement = (
            unnest_update(table, update_key, self.names, also=also, prefix=prefix)
            if update_key is not None
            else unnest_insert(table, self.names, suffix=suffix, where=where, prefix=prefix)
        )
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
        return {f"{self.prefix}{name}": list(column) for name, column in zip(self.names, columns, strict=True)}
