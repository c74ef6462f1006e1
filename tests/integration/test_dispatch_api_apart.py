"""The 调度台's API and the live lane in processes of their own (``DISPATCH_INCIDENT_LANES=none`` beside
``live``): the API process makes no case, the worker makes every one exactly once, and a staff action
through the API process is applied and published.

调度台接口与实时立案分进程运行：接口进程不立案，立案进程逐一精确立案，经接口进程的人工操作照常生效并发布。
"""

from __future__ import annotations

import asyncpg
import httpx

from shared.embedded import TansuBroker
from tests.helpers import eventually
from tests.processes import Platform, counts, new_tag, plain_dsn, post_many, wait_for_counts

REPORTS = 40
DISPATCHER = {"Authorization": "Bearer dev-dispatcher"}
UNIT = "330127101-zfd"  # 青溪镇综合行政执法队


async def _scalar(database_url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_an_api_process_and_a_live_worker_share_dispatch(
    own_database_url: str, module_broker: TansuBroker
) -> None:
    platform = Platform(
        own_database_url, module_broker.bootstrap, label="api-apart", env_extra={"DISPATCH_INCIDENT_LANES": "none"}
    )
    tag = new_tag()
    try:
        platform.start()
        await platform.wait_healthy()
        await platform.load_demo_county()
        assert len(await post_many(platform.url("intake"), tag, REPORTS, batch=10)) == REPORTS

        async def all_published() -> bool:  # every report on incident.reported 全部报告已发布
            return await _scalar(own_database_url, "SELECT count(*) FROM intake.outbox_pending") == 0

        await eventually(all_published, timeout_s=60)
        assert (await counts(own_database_url, tag))["cases"] == 0  # the API process makes no case 接口进程不立案

        platform.start_replica(
            "dispatch-live", "dispatch", DISPATCH_INCIDENT_LANES="live", DISPATCH_OVERDUE_SWEEP_INTERVAL_S="0"
        )
        await platform.wait_healthy("dispatch-live")
        assert await wait_for_counts(own_database_url, tag, REPORTS, timeout_s=180) == {
            "cases": REPORTS,
            "incidents": REPORTS,
            "duplicate_timeline_rows": 0,
            "metrics_facts": REPORTS,
        }

        conn = await asyncpg.connect(plain_dsn(own_database_url))
        try:
            case = await conn.fetchrow(
                "SELECT id, version, state, unit FROM dispatch.cases WHERE source_id LIKE $1 AND merged_into IS NULL "
                "ORDER BY seq LIMIT 1",
                f"GD-{tag}-%",
            )
        finally:
            await conn.close()
        assert case is not None
        assert case["state"] == "triage"  # the demo's 12345 tickets wait for a dispatcher 待人工分拨
        async with httpx.AsyncClient(base_url=platform.url("dispatch"), timeout=30) as api:
            answer = await api.post(  # 手动派遣, through the API process 经接口进程手动派遣
                f"/v1/cases/{case['id']}/assign",
                json={"unit": UNIT, "reason": "人工分拨", "expected_version": case["version"]},
                headers=DISPATCHER,
            )
        assert answer.status_code == 200, answer.text

        async def assigned_and_scored() -> bool:  # applied, published, and in metrics 已生效、已发布、已计入绩效
            return bool(
                await _scalar(
                    own_database_url,
                    "SELECT count(*) FROM metrics.case_facts WHERE case_id = $1 AND unit = $2 "
                    "AND dispatched_at IS NOT NULL",
                    case["id"],
                    UNIT,
                )
            )

        await eventually(assigned_and_scored, timeout_s=60)
        state = await _scalar(own_database_url, "SELECT state FROM dispatch.cases WHERE id = $1", case["id"])
        assert state == "dispatched"
    finally:
        platform.stop()
