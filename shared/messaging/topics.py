"""Topics (主题): create the registry's topics and their dead-letter topics where missing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events import TOPICS, dlq_topic
from shared.logging import get_logger

log = get_logger(__name__)


async def ensure_topics(bootstrap: str, topics: Sequence[str] | None = None, *, timeout_s: float = 10.0) -> None:
    """Create the registry's topics (and their ``.dlq``) that do not exist yet."""
    wanted: dict[str, int] = {}
    for name in topics or list(TOPICS):
        partitions = TOPICS[name].partitions if name in TOPICS else 1
        wanted[name] = partitions
        wanted[dlq_topic(name)] = 1
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        # All topics (naming none: Tansu would auto-create a named missing topic with its default count).
        existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(None)}
        missing = [NewTopic(n, num_partitions=p, replication_factor=1) for n, p in wanted.items() if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        fewer = {n: (existing[n], p) for n, p in wanted.items() if n in existing and existing[n] < p}
        if fewer:
            # A broker that auto-created a topic (a consumer asked for it first) gave it its own count.
            # Correct either way (keys keep one partition each); only parallelism is lower.
            log.warning("topics have fewer partitions than the registry's", topics=fewer)
    finally:
        await admin.close()
