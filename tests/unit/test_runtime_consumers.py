"""A consumer group registered to start later: ``/readyz`` reports it as not started until
:meth:`ServiceRuntime.start_consumer` starts it, once. 延后启动的消费组：启动前如实报告未启动。"""

from __future__ import annotations

from typing import Any

from shared.db import UnitOfWork, service_metadata
from shared.events import EventEnvelope
from shared.service import ServiceRuntime
from shared.settings import ServiceSettings


async def handler(uow: UnitOfWork, env: EventEnvelope[Any]) -> None:
    return None


def runtime() -> ServiceRuntime:
    settings = ServiceSettings(database_url="postgresql://nobody@127.0.0.1:1/none",
                               kafka_bootstrap_servers="127.0.0.1:1",
                               staff_tokens='{"probe-token": {"role": "admin"}}')
    return ServiceRuntime(settings, service="probe", metadata=service_metadata("runtime_probe"))


async def test_a_consumer_registered_to_start_later_is_reported_and_not_run() -> None:
    rt = runtime()
    later = rt.add_consumer(group_id="later", topics=["t"], handler=handler, start=False,
                            starts_when="a snapshot is loaded")
    now = rt.add_consumer(group_id="now", topics=["t"], handler=handler)
    assert rt.consumers == [now] and later not in rt.consumers
    _, report = await rt.readiness_report()
    check = report["checks"]["consumer:later"]
    assert check == {"ok": False, "required": False, "detail": "not started yet: starts once a snapshot is loaded"}
    await rt.engine.dispose()


async def test_start_consumer_before_the_service_starts_it_with_the_others() -> None:
    rt = runtime()
    later = rt.add_consumer(group_id="later", topics=["t"], handler=handler, start=False)
    rt.start_consumer(later)
    rt.start_consumer(later)  # once only
    assert rt.consumers == [later] and not rt.waiting
    _, report = await rt.readiness_report()
    assert report["checks"]["consumer:later"]["detail"] != "not started yet: starts once the service starts it"
    await rt.engine.dispose()
