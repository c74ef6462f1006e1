"""What an idle consumer costs on the embedded broker, by fetch wait / 空闲消费者按拉取等待的开销.

Tansu (the embedded default) holds a fetch that found nothing for the whole ``fetch_max_wait_ms``
and does not answer early when a record arrives, so the fetch wait is the latency one consumer hop
adds there (see :class:`shared.messaging.consumer.ConsumerRunner`). A shorter wait cuts that hop but
costs CPU all day, records or not: this prints the CPU of the broker and of the consumer while one
consumer of the live lane's ``incident.reported`` polls an empty topic, for each wait. The
reference line is the same consumer at aiokafka's default wait (500 ms). 在 Tansu 上，拉取等待即每跳
增加的时延；等待越短，空闲时越耗 CPU。本脚本测量空主题上一个消费者在不同等待下的代理与消费者 CPU。

Asserts nothing; prints figures. Usage / 用法::

    .venv/bin/python bench/idle_fetch.py [--waits 5,10,20,100] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import cpu_by_command  # noqa: E402
from shared.embedded import TansuBroker, free_port  # noqa: E402
from shared.events import INCIDENT_REPORTED, TOPICS  # noqa: E402
from shared.messaging.topics import ensure_topics  # noqa: E402

TOPIC = INCIDENT_REPORTED  # the live lane's topic, as dispatch's live consumer reads it
PARTITIONS = TOPICS[TOPIC].partitions


def broker_cpu_s(bootstrap: str) -> float:
    """CPU seconds of the one broker listening at ``bootstrap`` (not any other Tansu on the machine)."""
    return cpu_by_command({"broker": f"tansu broker --listener-url tcp://{bootstrap}"})["broker"]


async def idle_cpu(bootstrap: str, wait_ms: int, seconds: float) -> tuple[float, float]:
    """Share of one core used by the broker and by this process while one consumer idles at ``wait_ms``."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"idle-{wait_ms}",
        enable_auto_commit=False,
        fetch_max_wait_ms=wait_ms,
    )
    await consumer.start()
    try:
        settle = time.monotonic() + 3  # the group's join and the first fetches
        while time.monotonic() < settle:
            await consumer.getmany(timeout_ms=200)
        broker0, me0, t0 = broker_cpu_s(bootstrap), time.process_time(), time.monotonic()
        while time.monotonic() < t0 + seconds:
            await consumer.getmany(timeout_ms=200)
        elapsed = time.monotonic() - t0
        return (broker_cpu_s(bootstrap) - broker0) / elapsed, (time.process_time() - me0) / elapsed
    finally:
        await consumer.stop()


async def main(args: argparse.Namespace) -> None:
    broker = TansuBroker(port=free_port())
    broker.start()
    try:
        await ensure_topics(broker.bootstrap, [TOPIC])
        print(
            f"one consumer of {TOPIC} ({PARTITIONS} partitions), nothing produced, {args.seconds:.0f} s a wait "
            "(share of one core):"
        )
        for wait_ms in [*args.waits, 500]:
            on_broker, on_consumer = await idle_cpu(broker.bootstrap, wait_ms, args.seconds)
            label = f"{wait_ms} ms" + ("  (aiokafka's default, the reference)" if wait_ms == 500 else "")
            print(
                f"  fetch wait {label:44s} broker {on_broker:6.1%}  consumer {on_consumer:6.1%}"
                f"  together {on_broker + on_consumer:6.1%}"
            )
    finally:
        broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10, 20, 100])
    parser.add_argument("--seconds", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))
