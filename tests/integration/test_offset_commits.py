"""Offset commits off the consumer's loop (shared.messaging.offset_commits), against real Tansu:
the latest offsets reach the broker, and a failed commit is raised to the runner on its next batch.
偏移量后台提交：最新偏移到达代理；提交失败在下一批时抛给运行器。"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalOperation

from shared.embedded import TansuBroker
from shared.events import JURISDICTION_CHANGED
from shared.messaging.offset_commits import OffsetCommits
from shared.messaging.topics import ensure_topics


@pytest.fixture
async def member(own_broker: TansuBroker) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer in group ``g-commits`` that holds partition 0 of the topic."""
    await ensure_topics(own_broker.bootstrap, [JURISDICTION_CHANGED])
    consumer = AIOKafkaConsumer(bootstrap_servers=own_broker.bootstrap, group_id="g-commits",
                                enable_auto_commit=False)
    await consumer.start()
    consumer.assign([TopicPartition(JURISDICTION_CHANGED, 0)])
    try:
        yield consumer
    finally:
        await consumer.stop()


async def test_the_latest_offsets_handed_over_reach_the_broker(member: AIOKafkaConsumer) -> None:
    tp = TopicPartition(JURISDICTION_CHANGED, 0)
    commits = OffsetCommits(group_id="g-commits")
    for offset in (3, 5, 4):  # handed over one after the other: the last one stands (a rewind goes back)
        commits.add(member, {tp: offset})
    await commits.flush()
    assert await member.committed(tp) == 4


async def test_a_failed_commit_is_raised_by_the_next_hand_over(own_broker: TansuBroker) -> None:
    """A consumer that is in no group cannot commit: the background commit fails, and the runner
    learns it when it hands over its next batch's offsets (it then reconnects)."""
    await ensure_topics(own_broker.bootstrap, [JURISDICTION_CHANGED])
    loner = AIOKafkaConsumer(bootstrap_servers=own_broker.bootstrap, group_id=None, enable_auto_commit=False)
    await loner.start()
    try:
        tp = TopicPartition(JURISDICTION_CHANGED, 0)
        commits = OffsetCommits(group_id="none")
        commits.add(loner, {tp: 1})
        await commits.flush()  # waits, raises nothing: the failure is kept for the next hand-over
        with pytest.raises(IllegalOperation):
            commits.add(loner, {tp: 2})
        commits.add(loner, {tp: 3})  # raised once only; this one fails again in the background
        await commits.flush()
        commits.forget()  # the runner's new consumer after a reconnect: the old failure is not raised
        commits.add(loner, {tp: 4})
    finally:
        await commits.flush()
        await loner.stop()
