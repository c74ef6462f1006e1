"""The year replay's floors (重放基准的下限): what the hardware allows for the work dispatch does.

(a) raw aiokafka consume of the replay's ``incident.reported`` records (no group, JSON decode);
(b) a raw asyncpg binary COPY of the rows dispatch wrote per case — cases, timeline, and one outbox
row per timeline row shaped like the relay's — into empty copies of its tables with the same
indexes, in one transaction. ``bench/replay.py`` measures both after its run, on the same data.

Standalone, on a database a run kept (``replay.py --keep-database`` prints its ``replay_*`` name), when the
run could not measure them (not enough disk beside the run's own database)::

    python bench/replay_floors.py --dsn postgresql://postgres@127.0.0.1:5432/replay_xxxx [--dispatch-rate R]

(b) as in the run; (a) after producing the database's accepted reports again, as
``incident.reported`` envelopes of the same shape, into a fresh Tansu broker (the run's broker kept
everything in memory and is gone). With ``--dispatch-rate``: dispatch's rate as a ratio to each.
下限：(a) 原始消费；(b) 派遣写入行的原始二进制 COPY。可在保留的重放库上单独测量。
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.embedded import TansuBroker  # noqa: E402
from shared.events import CASE_EVENTS, INCIDENT_REPORTED_BULK  # noqa: E402
from shared.messaging.topics import ensure_topics  # noqa: E402

#: Beyond twice dispatch's tables (the spool, then the copies), room for the WAL the copy writes
#: before a checkpoint recycles it. 暂存与副本之外，为复制期间的 WAL 预留的空间。
_WAL_MARGIN_BYTES = 5_000_000_000


async def consume_floor(bootstrap: str, topic: str) -> tuple[float, int]:
    """(a) Every record of ``topic`` read and JSON-decoded by one raw consumer: (records/s, records)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        expected = sum((await consumer.end_offsets(partitions)).values())
        t = time.perf_counter()
        read = 0
        while read < expected:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    orjson.loads(record.value)
                    read += 1
            if time.perf_counter() - t > 600:
                break
        return read / (time.perf_counter() - t), read
    finally:
        await consumer.stop()


async def insert_floor(conn: asyncpg.Connection, dsn: str) -> dict[str, float]:
    """(b) dispatch's rows copied out to binary files and timed back in: ``{insert (cases/s), cases, timeline}``.

    Through files: a 2 M-case run does not fit in Python objects. Raises :class:`OSError` before
    writing anything when the disk cannot hold the spool and the copies. 经二进制 COPY 文件往返。
    """
    queries = {
        "cases": "SELECT * FROM dispatch.cases",
        "case_transitions": "SELECT * FROM dispatch.case_transitions",
        "outbox": (
            f"SELECT gen_random_uuid(), '{CASE_EVENTS}'::text, event_type, case_id::text, "
            "convert_to(row_to_json(t)::text, 'UTF8'), '{}'::jsonb FROM dispatch.case_transitions t"
        ),
    }
    cases = await conn.fetchval("SELECT count(*) FROM dispatch.cases")
    timeline = await conn.fetchval("SELECT count(*) FROM dispatch.case_transitions")
    spool = Path(tempfile.mkdtemp(prefix="replay-floor-"))
    # The spool takes at most what dispatch's tables take, and so do the copies (a 2 M run: ~18 GB).
    # 暂存文件与副本各不超过派遣表的大小。
    tables_bytes = int(
        await conn.fetchval(
            "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['dispatch.cases', "
            "'dispatch.case_transitions', 'dispatch.outbox']::regclass[]) AS t"
        )
        or 0
    )
    needed = 2 * tables_bytes + _WAL_MARGIN_BYTES
    free = shutil.disk_usage(spool).free
    if free < needed:
        shutil.rmtree(spool, ignore_errors=True)
        raise OSError(f"{free / 1e9:.0f} GB free, the floors need about {needed / 1e9:.0f} GB")
    schema = f"floor_{uuid.uuid4().hex[:6]}"
    await conn.execute(f"CREATE SCHEMA {schema}")
    writer = await asyncpg.connect(dsn)
    try:
        for table, query in queries.items():
            await conn.copy_from_query(query, output=spool / table, format="binary")
        for table in ("cases", "case_transitions", "outbox", "outbox_pending"):
            await conn.execute(f"CREATE TABLE {schema}.{table} (LIKE dispatch.{table} INCLUDING ALL)")
        t = time.perf_counter()
        async with writer.transaction():
            for table in ("cases", "case_transitions"):
                await writer.copy_to_table(table, schema_name=schema, source=spool / table, format="binary")
            await writer.copy_to_table(
                "outbox",
                schema_name=schema,
                source=spool / "outbox",
                columns=["event_id", "topic", "event_type", "key", "value", "headers"],
                format="binary",
            )
            await writer.execute(f"INSERT INTO {schema}.outbox_pending (id) SELECT id FROM {schema}.outbox")
        insert_s = time.perf_counter() - t
    finally:
        await writer.close()
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        shutil.rmtree(spool, ignore_errors=True)
    return {"insert": cases / insert_s, "cases": cases, "timeline": timeline}


async def measure_floors(conn: asyncpg.Connection, bootstrap: str, dsn: str, topic: str) -> str:
    """Both floors after a run, as JSON: ``consume``, ``consumed``, ``insert``, ``cases``, ``timeline``, ``outbox``."""
    consume, consumed = await consume_floor(bootstrap, topic)
    inserted = await insert_floor(conn, dsn)
    return json.dumps({"consume": consume, "consumed": consumed, **inserted, "outbox": inserted["timeline"]})


async def reproduce_reports(conn: asyncpg.Connection, bootstrap: str, topic: str) -> int:
    """The database's accepted reports as ``incident.reported`` envelopes (the shape intake's relay
    sends: ``EventEnvelope`` with the normalised report as ``data``) on ``topic``. 重新发布已受理报告。"""
    await ensure_topics(bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20, acks="all")
    await producer.start()
    sent = 0
    try:
        async with conn.transaction():
            cursor = conn.cursor(
                "SELECT event_id, source, received_at, normalised::text AS data FROM intake.accepted_events "
                "ORDER BY received_at",
                prefetch=5000,
            )
            pending = []
            async for row in cursor:
                envelope = (
                    b'{"id":"%s","type":"incident.reported","source":"/intake/%s","time":%s,"schema_version":1,'
                    b'"correlation_id":"%s","subject":"%s","data":%s}'
                    % (
                        str(row["event_id"]).encode(),
                        row["source"].encode(),
                        orjson.dumps(row["received_at"]),
                        uuid.uuid4().hex.encode(),
                        str(row["event_id"]).encode(),
                        row["data"].encode(),
                    )
                )
                pending.append(await producer.send(topic, envelope, key=str(row["event_id"]).encode()))
                sent += 1
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def standalone(dsn: str, dispatch_rate: float | None) -> None:
    """Both floors on a kept replay database (see the module docstring). 在保留的重放库上测量两项下限。"""
    conn = await asyncpg.connect(dsn)
    broker = TansuBroker(log_path=ROOT / "test-artifacts" / "tansu-floors.log")
    broker.start()
    try:
        t = time.perf_counter()
        produced = await reproduce_reports(conn, broker.bootstrap, INCIDENT_REPORTED_BULK)
        print(f"reproduced {produced:,} incident.reported records in {time.perf_counter() - t:.0f} s")
        consume, consumed = await consume_floor(broker.bootstrap, INCIDENT_REPORTED_BULK)
        print(f"floor (a) raw aiokafka consume: {consume:,.0f} /s over {consumed:,} records")
        if dispatch_rate:
            print(f"  → dispatch / (a) = {dispatch_rate / consume:.3f}")
        inserted = await insert_floor(conn, dsn)
        print(
            f"floor (b) raw asyncpg COPY of dispatch's rows ({inserted['cases']:,.0f} cases, "
            f"{inserted['timeline']:,.0f} timeline, {inserted['timeline']:,.0f} outbox): "
            f"{inserted['insert']:,.0f} cases/s"
        )
        if dispatch_rate:
            print(f"  → dispatch / (b) = {dispatch_rate / inserted['insert']:.3f}  (aim ≥ 0.5)")
    finally:
        broker.stop()
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="a kept replay database (postgresql://…/replay_xxxx)")
    parser.add_argument("--dispatch-rate", type=float, default=None, help="dispatch's steady rate in that run")
    args = parser.parse_args()
    asyncio.run(standalone(args.dsn, args.dispatch_rate))


if __name__ == "__main__":
    main()
