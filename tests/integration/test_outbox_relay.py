"""Outbox relays of several replicas: everything published once, a key's events in written order.

多副本发件箱中继：每条事件都发布，且同键事件按写入顺序到达 Kafka。
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy import text

from shared.db import create_engine, driver_connection, service_metadata
from shared.embedded import TansuBroker
from shared.messaging.outbox import OutboxRelay
from shared.messaging.outbox_tables import outbox_tables
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.retention import RetentionKeeper
from shared.messaging.topics import ensure_topics
from tests.conftest import read_topic
from tests.helpers import eventually, plan_reads_of

KEYS = 7
ROWS = 1400


def _written(topic: str, key: str, n: int) -> dict[str, Any]:
    """An outbox row: the ``n``-th event of ``key`` on ``topic``. 一行发件箱：某键的第 n 个事件。"""
    return {
        "event_id": uuid.uuid4(),
        "topic": topic,
        "event_type": "test.written",
        "key": key,
        "value": orjson.dumps({"key": key, "n": n}),
        "headers": [["ce_type", "test.written"]],
    }


async def test_two_replicas_relaying_keep_each_keys_order(own_database_url: str, kafka: TansuBroker) -> None:
    topic = f"test.relay.order.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka.bootstrap, [topic])
    metadata = service_metadata("relaytest")
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA relaytest"))
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            table.insert(),
            [_written(topic, f"case-{i % KEYS}", i // KEYS) for i in range(ROWS)],
        )
        await conn.execute(text("INSERT INTO relaytest.outbox_pending (id) SELECT id FROM relaytest.outbox"))
    replicas = [
        OutboxRelay(
            engine=create_engine(own_database_url),
            table=table,
            publisher=KafkaPublisher(bootstrap=kafka.bootstrap, client_id=f"relay-{r}"),
            batch_size=50,
            poll_interval_s=0.01,
            linger_s=0.0,
        )
        for r in range(2)
    ]
    for relay in replicas:
        relay.start()
        relay.wake()

    async def all_sent() -> bool:
        async with engine.connect() as conn:
            unsent = await conn.scalar(text("SELECT count(*) FROM relaytest.outbox_pending"))
        return unsent == 0

    try:
        await eventually(all_sent, timeout_s=120)
    finally:
        for relay in replicas:
            await relay.stop()
            await relay.publisher.stop()
            await relay.engine.dispose()
        await engine.dispose()

    assert sum(relay.published for relay in replicas) == ROWS
    records = await read_topic(kafka.bootstrap, topic, expect=ROWS, timeout_s=90)
    seen: dict[str, list[int]] = {}
    for record in records:
        body = orjson.loads(record.value)
        assert record.key.decode() == body["key"]
        seen.setdefault(body["key"], []).append(body["n"])
    assert seen == {f"case-{k}": list(range(ROWS // KEYS)) for k in range(KEYS)}


async def test_a_live_row_is_published_before_the_bulk_backlog_ahead_of_it(
    own_database_url: str, kafka: TansuBroker
) -> None:
    """Each lane is claimed on its own: the live lane's relay takes the live row at once, however many
    bulk rows were written before it; then both lanes run side by side and every row goes once, in
    order per key. 实时行不排在其前的批量积压之后；两个通道并行，每行一次、同键有序。"""
    live_topic, bulk_topic = (f"test.relay.{lane}.{uuid.uuid4().hex[:8]}" for lane in ("live", "bulk"))
    await ensure_topics(kafka.bootstrap, [live_topic, bulk_topic])
    schema = f"relaylanes{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    backlog = 3 * KEYS * 100
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
        await conn.run_sync(metadata.create_all)
        rows = [(bulk_topic, f"case-{i % KEYS}", i // KEYS) for i in range(backlog)] + [(live_topic, "live-case", 0)]
        await conn.execute(
            table.insert(),
            [_written(topic, key, n) for topic, key, n in rows],
        )
        await conn.execute(
            text(
                f"INSERT INTO {schema}.outbox_pending (id, lane) "
                f"SELECT id, CASE WHEN topic = :bulk THEN 1 ELSE 0 END FROM {schema}.outbox"
            ),
            {"bulk": bulk_topic},
        )
    relay = OutboxRelay(
        engine=create_engine(own_database_url),
        table=table,
        publisher=KafkaPublisher(bootstrap=kafka.bootstrap, client_id="relay-lanes"),
        batch_size=100,
        poll_interval_s=0.01,
        linger_s=0.0,
    )

    async def pending(lane: int) -> int:
        async with engine.connect() as conn:
            found = await conn.scalar(text(f"SELECT count(*) FROM {schema}.outbox_pending WHERE lane = {lane}"))
        return int(found or 0)

    try:
        assert await relay.relay_once(lane=0) == 1
        assert (await pending(0), await pending(1)) == (0, backlog)
        [live] = await read_topic(kafka.bootstrap, live_topic, expect=1)
        assert orjson.loads(live.value) == {"key": "live-case", "n": 0}

        relay.start()
        relay.wake()

        async def all_sent() -> bool:
            return await pending(1) == 0

        await eventually(all_sent, timeout_s=120)
    finally:
        await relay.stop()
        await relay.publisher.stop()
        await relay.engine.dispose()
        await engine.dispose()

    assert relay.published == backlog + 1
    records = await read_topic(kafka.bootstrap, bulk_topic, expect=backlog, timeout_s=90)
    seen: dict[str, list[int]] = {}
    for record in records:
        body = orjson.loads(record.value)
        seen.setdefault(body["key"], []).append(body["n"])
    assert seen == {f"case-{k}": list(range(backlog // KEYS)) for k in range(KEYS)}


async def test_a_relay_standing_by_publishes_soon_after_the_holder_lets_go(
    own_database_url: str, kafka: TansuBroker
) -> None:
    """A relay that found its lane's lock held (another replica publishing: a dispatch API process and
    its live worker share the live lane) tries again soon, not at its next poll (an hour here): a row
    committed after the holder's claim is not left for the poll. 锁被占用的中继稍后即重试，不等下一次轮询。"""
    topic = f"test.relay.standby.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka.bootstrap, [topic])
    schema = f"relaystandby{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            table.insert(),
            [_written(topic, "case-1", 0)],
        )
        await conn.execute(text(f"INSERT INTO {schema}.outbox_pending (id) SELECT id FROM {schema}.outbox"))
    relay = OutboxRelay(
        engine=create_engine(own_database_url),
        table=table,
        publisher=KafkaPublisher(bootstrap=kafka.bootstrap, client_id="relay-standby"),
        poll_interval_s=3600.0,
        linger_s=0.0,
    )

    async def pending() -> int:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(f"SELECT count(*) FROM {schema}.outbox_pending")) or 0)

    holder = await engine.connect()  # the other replica, holding the live lane's lock 另一副本持有实时通道锁
    try:
        await holder.begin()
        await holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": relay.lock_keys[0]})
        relay.start()
        relay.wake()
        await eventually(lambda: _true(0 in relay.standing_by))
        assert await pending() == 1
        await holder.commit()  # the holder's batch is done 持锁者发布完毕
        await eventually(lambda: _pending_is(pending, 0), timeout_s=30)
        assert relay.standing_by == set()
    finally:
        await holder.close()
        await relay.stop()
        await relay.publisher.stop()
        await relay.engine.dispose()
        await engine.dispose()
    [record] = await read_topic(kafka.bootstrap, topic, expect=1)
    assert orjson.loads(record.value) == {"key": "case-1", "n": 0}


async def _true(value: bool) -> bool:
    return value


async def _pending_is(pending: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await pending() == expected


def _outbox_rows(schema: str, n: int) -> str:
    """``n`` outbox rows of 800 bytes each (the ids they get: the next ``n``). 插入 n 行发件箱。"""
    return (
        f"INSERT INTO {schema}.outbox (event_id, topic, event_type, key, value, headers) "
        "SELECT gen_random_uuid(), 'test.plan', 'test.written', g::text, convert_to(repeat('x', 800), 'UTF8'), "
        f"'[]'::jsonb FROM generate_series(1, {n}) g"
    )


async def test_a_claim_reads_its_batch_whatever_the_outbox_holds(own_database_url: str) -> None:
    """The claim's plan, cached when the relay started on an empty outbox (as a service's prepared
    statement is), still reads only the batch's rows once the outbox holds a backlog and thousands of
    retained rows: by primary key, never a scan of the table, never the whole backlog before the limit.
    认领语句的计划在空发件箱时缓存（如服务的预备语句），积压与保留行增多后仍只按主键读取本批行。"""
    schema = f"relayplan{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    relay = OutboxRelay(engine=engine, table=table, publisher=KafkaPublisher(bootstrap="127.0.0.1:9", client_id="x"))
    batch, retained, backlog = 50, 5000, 400

    def rows(n: int) -> str:
        return _outbox_rows(schema, n)

    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(metadata.create_all)
        async with driver_connection(engine) as conn:
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE claim(int) AS {relay.claim_sql(1)}")
            assert await conn.fetch("EXECUTE claim(50)") == []  # the generic plan, made on an empty outbox
            await conn.execute(rows(retained))  # published and retained until every consumer has them
            await conn.execute(
                f"WITH o AS ({rows(backlog)} RETURNING id) "
                f"INSERT INTO {schema}.outbox_pending (id, lane) SELECT id, 1 FROM o"
            )
            explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim({batch})")
            [plan] = orjson.loads(explained) if isinstance(explained, str) else explained  # the pool decodes JSON
            claimed = await conn.fetch(f"EXECUTE claim({batch})")
            await conn.execute("DEALLOCATE claim")
            await conn.execute("RESET plan_cache_mode")
    finally:
        await engine.dispose()

    assert [r["id"] for r in claimed] == list(range(retained + 1, retained + batch + 1))  # the first pending, in order
    scans = plan_reads_of(plan["Plan"], "outbox")
    assert scans and all(s["Node Type"] in ("Index Scan", "Index Only Scan") for s in scans), scans
    assert sum(s["Actual Rows"] * s["Actual Loops"] for s in scans) == batch


async def test_the_relay_vacuums_its_queue_so_a_claim_skips_what_it_sent(own_database_url: str) -> None:
    """Rows the relay sent and deleted leave dead entries at the head of the pending index, which every
    claim walks until a ``VACUUM`` removes them (new ids go to the index's other end). The relay vacuums
    its queue tables itself, every ``vacuum_interval_s``, whatever the server's autovacuum (off here for
    the table, as on this machine's server): the next claim reads a handful of pages, not thousands.
    已发送并删除的行在待发索引头部留下死项，每次认领都要读过；中继自行定期清理队列表，之后的认领只读几页。"""
    schema = f"relayvac{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    relay = OutboxRelay(
        engine=engine,
        table=table,
        publisher=KafkaPublisher(bootstrap="127.0.0.1:9", client_id="x"),
        vacuum_interval_s=0.1,
    )
    sent = 30_000

    async def pages_read_by_a_claim(conn: Any) -> int:
        explained = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE claim(50)")
        [plan] = orjson.loads(explained) if isinstance(explained, str) else explained
        return int(plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"])

    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(metadata.create_all)
            await conn.execute(text(f"ALTER TABLE {schema}.outbox_pending SET (autovacuum_enabled = false)"))
        async with driver_connection(engine) as conn:
            await conn.execute(
                f"WITH o AS (INSERT INTO {schema}.outbox (event_id, topic, event_type, key, value, headers) "
                "SELECT gen_random_uuid(), 'test.vacuum', 'test.written', g::text, '\\x00'::bytea, '[]'::jsonb "
                f"FROM generate_series(1, {sent}) g RETURNING id) "
                f"INSERT INTO {schema}.outbox_pending (id, lane) SELECT id, 0 FROM o"
            )
            await conn.execute(f"DELETE FROM {schema}.outbox_pending")  # as the relay does once they are sent
            await conn.execute(f"PREPARE claim(int) AS {relay.claim_sql(0)}")
            before = await pages_read_by_a_claim(conn)
            await conn.execute("DEALLOCATE claim")

        relay.start()

        async def vacuumed() -> bool:
            return relay.upkeep.passes >= 1

        await eventually(vacuumed, timeout_s=60)
        await relay.stop()
        async with driver_connection(engine) as conn:
            await conn.execute(f"PREPARE claim(int) AS {relay.claim_sql(0)}")
            assert await conn.fetch("EXECUTE claim(50)") == []
            after = await pages_read_by_a_claim(conn)
            await conn.execute("DEALLOCATE claim")
    finally:
        await relay.stop()
        await engine.dispose()

    assert before > 50, before  # the claim walked the dead entries of 30 k sent rows
    assert after <= 5, after


async def test_a_live_claim_never_reads_the_bulk_backlog_whatever_the_statistics(own_database_url: str) -> None:
    """Statistics taken while only live rows were pending (autovacuum's or the upkeep's ANALYZE after a
    quiet spell), then an import's backlog queued ahead of the next live rows: the live claim still
    reads the live rows alone, from the lane's first entry. With an index on ``id`` besides ``(lane, id)``
    the planner walked ``id`` order filtering on the lane, through the whole backlog, on every claim
    (a 60 k replay with autovacuum on: live reports 1.5 s late at p50, 12 s at p99).
    只有实时行时取得的统计信息、其后导入积压排在新实时行之前：实时认领仍只读实时行，不读过积压。"""
    schema = f"relaylane{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    relay = OutboxRelay(engine=engine, table=table, publisher=KafkaPublisher(bootstrap="127.0.0.1:9", client_id="x"))
    quiet, backlog, fresh = 200, 20_000, 3

    def queue(n: int, lane: int) -> str:
        return (
            f"WITH o AS (INSERT INTO {schema}.outbox (event_id, topic, event_type, key, value, headers) "
            "SELECT gen_random_uuid(), 'test.lanes', 'test.written', g::text, '\\x00'::bytea, '[]'::jsonb "
            f"FROM generate_series(1, {n}) g RETURNING id) "
            f"INSERT INTO {schema}.outbox_pending (id, lane) SELECT id, {lane} FROM o"
        )

    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(metadata.create_all)
            await conn.execute(text(f"ALTER TABLE {schema}.outbox_pending SET (autovacuum_enabled = false)"))
        async with driver_connection(engine) as conn:
            await conn.execute(queue(quiet, 0))
            await conn.execute(f"ANALYZE {schema}.outbox_pending")  # every pending row is live
            await conn.execute(queue(backlog, 1))
            await conn.execute(queue(fresh, 0))
            explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {relay.claim_sql(0).replace('$1', '500')}")
            [plan] = orjson.loads(explained) if isinstance(explained, str) else explained
            claimed = await conn.fetch(relay.claim_sql(0), 500)
    finally:
        await engine.dispose()

    live_ids = [*range(1, quiet + 1), *range(quiet + backlog + 1, quiet + backlog + fresh + 1)]
    assert [r["id"] for r in claimed if r["id"] is not None] == live_ids
    scans = plan_reads_of(plan["Plan"], "outbox_pending")
    assert scans, plan
    read = sum(s["Actual Rows"] * s["Actual Loops"] + s.get("Rows Removed by Filter", 0) for s in scans)
    assert read == quiet + fresh, scans  # not one bulk row read and thrown away


async def test_a_claim_planned_while_the_queue_was_known_empty_still_reads_by_key(own_database_url: str) -> None:
    """A queue table is empty, and known empty to the planner after a vacuum (autovacuum's or the
    upkeep's), many times an hour. A claim planned then — a prepared statement's generic plan, kept
    until the next ``ANALYZE`` — must still read the outbox by key once a backlog and thousands of
    retained rows are there: in the relay's transaction seq scans are off. Without that the plan read
    the whole outbox once per pending row (1–179 s a claim in a 100 k replay with autovacuum on). Nor is
    the claim compiled (JIT): with seq scans off its cost passes ``jit_above_cost``.
    队列表清理后被认定为空时缓存的认领计划，在积压出现后仍须按键读取（中继事务内禁用顺序扫描）。"""
    schema = f"relayempty{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    relay = OutboxRelay(engine=engine, table=table, publisher=KafkaPublisher(bootstrap="127.0.0.1:9", client_id="x"))
    batch, retained, backlog = 50, 5000, 400
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(metadata.create_all)
        async with driver_connection(engine) as conn:
            for queue_table in ("outbox", "outbox_pending", "outbox_partitions"):
                await conn.execute(f"VACUUM ANALYZE {schema}.{queue_table}")  # 0 pages, 0 rows: known empty
            async with conn.transaction():
                await conn.fetchval(relay.lock_sql, relay.lock_keys[1])
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                await conn.execute(f"PREPARE claim(int) AS {relay.claim_sql(1)}")
                assert await conn.fetch("EXECUTE claim(50)") == []  # the generic plan, made now
            await conn.execute(_outbox_rows(schema, retained))
            await conn.execute(
                f"WITH o AS ({_outbox_rows(schema, backlog)} RETURNING id) "
                f"INSERT INTO {schema}.outbox_pending (id, lane) SELECT id, 1 FROM o"
            )
            async with conn.transaction():
                await conn.fetchval(relay.lock_sql, relay.lock_keys[1])
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim({batch})")
                [plan] = orjson.loads(explained) if isinstance(explained, str) else explained
                claimed = await conn.fetch(f"EXECUTE claim({batch})")
            await conn.execute("DEALLOCATE claim")
    finally:
        await engine.dispose()

    assert [r["id"] for r in claimed if r["id"] is not None] == list(range(retained + 1, retained + batch + 1))
    scans = plan_reads_of(plan["Plan"], "outbox")
    assert scans and all(s["Node Type"] in ("Index Scan", "Index Only Scan") for s in scans), scans
    assert sum(s["Actual Rows"] * s["Actual Loops"] for s in scans) == batch
    assert "JIT" not in plan  # a plan priced above jit_above_cost was compiled: 100 ms a claim


async def test_the_queue_statements_planned_while_empty_read_by_key_once_full(own_database_url: str) -> None:
    """Besides the claim, the relay's record of where a batch went (its pending rows deleted) and the
    retention's pass (each partition's newest record and its last row; releasing consumed rows), each
    planned while the queue tables were known empty, read by key once a backlog and thousands of
    retained rows are there: not one row of the backlog or of the outbox beyond those asked for.
    In a 100 k replay the first read the lane's whole backlog (up to 31 s) and the second the whole
    outbox (3.7 s). 发布记录与留存核对的语句在空表时缓存计划，表满后仍按键读取。"""
    schema = f"relaykeys{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    relay = OutboxRelay(engine=engine, table=table, publisher=KafkaPublisher(bootstrap="127.0.0.1:9", client_id="x"))
    keeper = RetentionKeeper(engine=engine, schema=schema, bootstrap="127.0.0.1:9", retention_s=60.0)
    backlog, batch, partitions, records = 5000, 50, 3, 40  # records of `batch` rows per partition
    published = partitions * records * batch
    prepared = {
        "placed": ("(text[], int[], bigint[], bigint[], text[], smallint)", relay.placed_sql),
        "retained": ("", keeper.retained_sql),
        "release": ("(text, int, bigint)", keeper.release_sql),
    }
    sent = list(range(published + 1, published + batch + 1))  # a batch of the backlog, sent to partition 0
    executions = (
        f"placed(ARRAY{['test.plan'] * batch}, ARRAY{[0] * batch}, "
        f"ARRAY{list(range(records * batch, records * batch + batch))}, ARRAY{sent}, ARRAY{['e'] * batch}, 1)",
        "retained",
        f"release('test.plan', 1, {batch * 2})",  # partition 1's first two records
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(metadata.create_all)
        async with driver_connection(engine) as conn:
            for queue_table in ("outbox", "outbox_pending", "outbox_partitions", "outbox_published"):
                await conn.execute(f"VACUUM ANALYZE {schema}.{queue_table}")  # known empty
            async with conn.transaction():
                await conn.fetchval(relay.lock_sql, relay.lock_keys[1])
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                for name, (types, sql) in prepared.items():
                    await conn.execute(f"PREPARE {name}{types} AS {sql}")
                for execute in executions:
                    await conn.execute(f"EXPLAIN EXECUTE {execute}")  # the generic plans, made now
            # Published and retained: `records` records of `batch` rows in each partition, their log state.
            await conn.execute(_outbox_rows(schema, published))
            await conn.execute(
                f"INSERT INTO {schema}.outbox_published (topic, partition, first_offset, last_offset, outbox_ids) "
                f"SELECT 'test.plan', p, r * {batch}, r * {batch} + {batch - 1}, "
                f"ARRAY(SELECT ((p * {records} + r) * {batch} + g)::bigint FROM generate_series(1, {batch}) g) "
                f"FROM generate_series(0, {partitions - 1}) p, generate_series(0, {records - 1}) r"
            )
            await conn.execute(
                f"INSERT INTO {schema}.outbox_partitions (topic, partition, epoch, last_offset) "
                f"SELECT 'test.plan', p, 'e', {records * batch - 1} FROM generate_series(0, {partitions - 1}) p"
            )
            # The bulk lane's backlog.
            await conn.execute(
                f"WITH o AS ({_outbox_rows(schema, backlog)} RETURNING id) "
                f"INSERT INTO {schema}.outbox_pending (id, lane) SELECT id, 1 FROM o"
            )
            plans = {}
            async with conn.transaction():
                await conn.fetchval(relay.lock_sql, relay.lock_keys[1])
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                for name, execute in zip(prepared, executions, strict=True):
                    explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {execute}")
                    [plans[name]] = orjson.loads(explained) if isinstance(explained, str) else explained
            pending = await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox_pending")
            kept = await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")
            for name in prepared:
                await conn.execute(f"DEALLOCATE {name}")
    finally:
        await engine.dispose()

    def rows_read(plan: dict[str, Any], relation: str) -> int:
        scans = [s for s in plan_reads_of(plan["Plan"], relation) if s["Node Type"] != "ModifyTable"]
        assert scans and all(s["Node Type"] in ("Index Scan", "Index Only Scan") for s in scans), scans
        return sum((s["Actual Rows"] + s.get("Rows Removed by Filter", 0)) * s["Actual Loops"] for s in scans)

    assert pending == backlog - batch  # the batch sent left the pending list, nothing else did
    assert rows_read(plans["placed"], "outbox_pending") == batch
    assert rows_read(plans["retained"], "outbox") == partitions  # each partition's newest record's last row
    assert kept == published + backlog - batch * 2  # partition 1's two released records' rows are gone
    assert rows_read(plans["release"], "outbox") == batch * 2
