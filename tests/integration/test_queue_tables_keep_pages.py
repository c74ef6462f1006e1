"""The tables every lane's transactions write to keep their pages through a vacuum (no truncation), so a
vacuum never takes their ACCESS EXCLUSIVE lock (see :data:`shared.messaging.upkeep.KEEP_PAGES`).
队列表与消费位置表清理时不截断空页（截断需持排他锁，所有写入都要等待）。"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from shared.db import create_engine, driver_connection, service_metadata
from shared.messaging.outbox_tables import outbox_tables
from shared.messaging.upkeep import QueueUpkeep

#: What the migrations set, by schema: each service's outbox and its queues, each consumer's positions.
EXPECTED = {
    "intake.outbox",
    "intake.outbox_pending",
    "intake.outbox_published",
    "grid.outbox",
    "grid.outbox_pending",
    "grid.outbox_published",
    "dispatch.outbox",
    "dispatch.outbox_pending",
    "dispatch.outbox_published",
    "dispatch.consumer_positions",
    "metrics.consumer_positions",
}

_KEEPING = text(
    "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname IN ('intake', 'grid', 'dispatch', 'metrics') AND c.relkind = 'r' "
    "AND 'vacuum_truncate=false' = ANY (c.reloptions)"
)
#: Their TOAST tables (where they have one: not the pending queues, all fixed-width). 其 TOAST 表。
_TOAST_KEEPING = text(
    "SELECT n.nspname || '.' || c.relname, 'vacuum_truncate=false' = ANY (coalesce(t.reloptions, '{}')) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class t ON t.oid = c.reltoastrelid "
    "WHERE n.nspname || '.' || c.relname = ANY (:tables)"
)


async def test_the_migrations_set_it_on_every_queue_and_positions_table(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            keeping = set((await conn.scalars(_KEEPING)).all())
            toast = dict((await conn.execute(_TOAST_KEEPING, {"tables": sorted(EXPECTED)})).all())
    finally:
        await engine.dispose()
    assert keeping == EXPECTED
    assert toast == {table: True for table in EXPECTED if not table.endswith(".outbox_pending")}


async def test_a_vacuum_of_a_drained_queue_keeps_its_pages(own_database_url: str) -> None:
    """A pending queue the relay has drained, vacuumed as the upkeep does: the tables declared by the
    models keep their pages; the same table without the parameter (the control, so the test can tell)
    is truncated to nothing — which is the lock every claim and insert waited for.
    已排空的待发队列经清理后保留页面；去掉参数的对照表被截断为空。"""
    kept, control = (f"keep{uuid.uuid4().hex[:6]}", f"trunc{uuid.uuid4().hex[:6]}")
    engine = create_engine(own_database_url)
    sizes: dict[str, tuple[int, int]] = {}
    try:
        for schema in (kept, control):
            metadata = service_metadata(schema)
            outbox_tables(metadata)
            async with engine.begin() as conn:
                await conn.execute(text(f"CREATE SCHEMA {schema}"))
                await conn.run_sync(metadata.create_all)
                await conn.execute(text(f"ALTER TABLE {schema}.outbox_pending SET (autovacuum_enabled = false)"))
                if schema == control:
                    await conn.execute(text(f"ALTER TABLE {schema}.outbox_pending RESET (vacuum_truncate)"))
            async with driver_connection(engine) as conn:
                await conn.execute(
                    f"INSERT INTO {schema}.outbox_pending (id, lane) SELECT g, 0 FROM generate_series(1, 30000) g"
                )
                await conn.execute(f"DELETE FROM {schema}.outbox_pending")  # as the relay does once sent
                size = f"SELECT pg_relation_size('{schema}.outbox_pending')"
                before = int(await conn.fetchval(size))
                await QueueUpkeep(engine=engine, schema=schema).vacuum_once()
                sizes[schema] = (before, int(await conn.fetchval(size)))
    finally:
        await engine.dispose()
    assert sizes[kept][0] > 100 * 8192, sizes  # 30 k rows took pages
    assert sizes[kept][1] == sizes[kept][0], sizes
    assert sizes[control] == (sizes[kept][0], 0), sizes
