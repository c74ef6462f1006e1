"""What ``/readyz`` says of a consumer group: unreachable broker, not connected, stalled, behind, consuming."""

from __future__ import annotations

from aiokafka import TopicPartition

from shared.db import create_engine, service_metadata, session_factory
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.tables import processed_messages_table
from shared.service import consumer_check


def runner() -> ConsumerRunner:
    async def handler(session: object, env: object) -> None:
        return None

    metadata = service_metadata("readiness_probe")
    return ConsumerRunner(
        group_id="g",
        topics=["case.events"],
        bootstrap="127.0.0.1:1",
        sessions=session_factory(create_engine("postgresql://nobody@127.0.0.1:1/none")),
        processed=processed_messages_table(metadata),
        handler=handler,  # type: ignore[arg-type]
        publisher=KafkaPublisher(bootstrap="127.0.0.1:1", client_id="probe"),
    )


def test_broker_unreachable_is_degraded_and_says_it_resumes() -> None:
    check = consumer_check(runner(), "broker unreachable at 127.0.0.1:9092: ConnectionRefusedError", 100.0, 30)
    assert not check.ok and not check.required and "resumes" in check.detail


def test_not_connected() -> None:
    check = consumer_check(runner(), None, 100.0, 30)
    assert not check.ok and check.detail == "not connected to the broker"


def test_behind_and_applying_is_ok_with_the_figure() -> None:
    r = runner()
    r.running, r.last_progress = True, 95.0
    r.lag = {TopicPartition("case.events", 0): 120, TopicPartition("case.events", 1): 30}
    check = consumer_check(r, None, 100.0, 30)
    assert check.ok and check.detail == "consuming; 150 behind"


def test_behind_and_applying_nothing_is_stalled() -> None:
    r = runner()
    r.running, r.last_progress = True, 10.0
    r.lag = {TopicPartition("case.events", 0): 7}
    check = consumer_check(r, None, 100.0, 30)
    assert not check.ok and check.detail == "stalled: 7 behind, nothing applied for 90 s"


def test_caught_up_is_consuming() -> None:
    r = runner()
    r.running = True
    assert consumer_check(r, None, 1000.0, 30).detail == "consuming"
