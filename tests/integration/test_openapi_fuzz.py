"""A bounded schemathesis run over the four services' OpenAPI documents (接口文档模糊测试).

The four services run for real (uvicorn on loopback ports, the demo county in grid, PostgreSQL and
a Tansu broker of their own). For every documented operation schemathesis generates a fixed number
of valid and invalid requests (fixed seed, derandomised: the same requests every run) with an
admin's credentials, and every answer must

* never be a 5xx (``not_a_server_error``),
* have a status code the operation documents (``status_code_conformance``),
* have the documented content type and match the documented schema (``content_type_conformance``,
  ``response_schema_conformance``).

Excluded, and why: ``GET /v1/stream`` (dispatch) is a server-sent event stream that never ends by
design; its authentication and headers are covered by the dispatch and browser tests.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from shared.embedded import TansuBroker
from tests.browser.stack import KEYS, Platform, running_platform
from tests.conftest import ARTIFACTS, create_database, drop_database

#: Examples per operation and generation mode (valid, invalid). Fixed: the run is bounded and repeatable.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
SEED = 20261204
EXCLUDED = {("GET", "/v1/stream")}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ADMIN = {"Authorization": "Bearer t-admin"}


@pytest.fixture(scope="module")
async def platform(postgres_server_url: str) -> AsyncIterator[Platform]:
    ARTIFACTS.mkdir(exist_ok=True)
    broker = TansuBroker(log_path=ARTIFACTS / "tansu-fuzz.log")
    await asyncio.to_thread(broker.start)
    url = await create_database(postgres_server_url)
    try:
        async with running_platform(url, broker.bootstrap) as running:
            for source in ("12345", "cityops", "gridworker"):
                await running.post_record(source)
            yield running
    finally:
        await drop_database(postgres_server_url, url)
        await asyncio.to_thread(broker.stop)


def _headers(path: str) -> dict[str, str]:
    for source, key in KEYS.items():
        if path.startswith(f"/v1/events/{source}"):
            return {**ADMIN, "X-API-Key": key}
    return dict(ADMIN)


def fuzz(base_url: str) -> list[str]:
    """Run every operation of one service; the failures, one line each (empty: none)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, headers=_headers(operation.path))

            @hypothesis.seed(SEED)
            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            @hypothesis.given(case=strategy)
            def check(case: Any) -> None:
                response = case.call(base_url=base_url, timeout=30)
                case.validate_response(response, checks=CHECKS)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing invalid to send (no parameters, or any string is valid): nothing to test
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
                lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
                failures.append(f"{operation.label} [{mode.value}]: {' | '.join(lines[:14])}")
    return failures


async def test_no_5xx_and_every_answer_matches_its_document(platform: Platform) -> None:
    failures: list[str] = []
    for served in (platform.intake, platform.grid, platform.metrics, platform.dispatch):
        found = await asyncio.to_thread(fuzz, served.url)
        failures.extend(f"{served.name}: {line}" for line in found)
    assert not failures, f"{len(failures)} operation(s) failed:\n" + "\n".join(failures)
