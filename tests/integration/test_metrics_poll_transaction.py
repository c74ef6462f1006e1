"""Metrics applies a poll's partitions in one transaction 同一次拉取的各分区合为一个事务.

Case events of many cases, keyed by case as dispatch's outbox keys them (so spread over every
partition of ``case.events``), are on the broker before the metrics service starts: its first polls
bring several partitions at once. Each fact row's ``xmin`` names the transaction that wrote it; one
transaction per partition would give as many writers as partitions holding events, one per poll
gives fewer. Every case still gets its exact fact.
"""

from __future__ import annotations

from sqlalchemy import text

from services.metrics.app import create_app
from shared.db import create_engine
from shared.embedded import TansuBroker
from shared.events import CASE_EVENTS, TOPICS
from tests.helpers import eventually, serve
from tests.integration.test_metrics_service import (
    GRID_UNITS,
    KINDS,
    SHIFT_OCT,
    fake_grid,
    from_pure,
    publish,
    settings_for,
)
from tests.unit.test_metrics_rules import outcome

CASES = 60


async def test_a_polls_partitions_are_applied_in_one_transaction(
    own_database_url: str, own_broker: TansuBroker
) -> None:
    sims = [from_pure(outcome(f"p{i}", "A", "T1", "ontime", 2 + i % 20).events, shift=SHIFT_OCT, kinds=KINDS)
            for i in range(CASES)]  # fmt: skip
    await publish(own_broker.bootstrap, [env for sim in sims for env in sim.envelopes])
    app = create_app(settings_for(own_database_url, own_broker.bootstrap), grid_transport=fake_grid(GRID_UNITS))
    engine = create_engine(own_database_url)
    try:
        async with engine.connect() as conn:

            async def facts() -> int:
                n = (await conn.execute(text("SELECT count(*) FROM metrics.case_facts"))).scalar_one()
                await conn.rollback()
                return int(n)

            async def all_folded() -> bool:
                return await facts() == CASES

            async with serve(app):
                await eventually(all_folded, timeout_s=60, every_s=0.3)
            partitions = (
                await conn.execute(
                    text("SELECT count(*) FROM metrics.consumer_positions WHERE topic = :t AND next_offset > 0"),
                    {"t": CASE_EVENTS},
                )
            ).scalar_one()
            writers = (
                await conn.execute(text("SELECT count(DISTINCT xmin::text) FROM metrics.case_facts"))
            ).scalar_one()
            resolved = (
                await conn.execute(text("SELECT count(*) FROM metrics.case_facts WHERE resolved_at IS NOT NULL"))
            ).scalar_one()
    finally:
        await engine.dispose()
    assert partitions == TOPICS[CASE_EVENTS].partitions  # the events reached every partition
    assert resolved == CASES  # every case folded whole
    assert writers < partitions  # fewer transactions than partitions: a poll's partitions together
