"""Byte-for-byte fingerprint of what dispatch writes (派遣写库指纹): a guard for pure restructurings.

派遣写库结果的逐字节指纹：用于纯重构前后的对比。

A scratch database on the machine's PostgreSQL (127.0.0.1:5432, or ``TEST_DATABASE_URL``),
migrated as ``tests/conftest.py`` does it. A fixed, deterministic set of incidents on the demo
county 青溪县 goes through ``handle_incidents`` with a fixed ``now`` (all three sources, all
urgencies, duplicates that merge, triage for unmapped or unlocatable reports, a replay, a
self-handled report, a critical case, a stationed-agency case, a rule with a co-handler and a
matter that auto-escalates when overdue). Then a fixed sequence of lifecycle actions through
``perform_action`` (签收, 延期申请/审批, 吹哨/报到, 增加协办, 办结, 核查, 结案, 回访, 重办, 退单 →
再派遣 → 转人工 → 手动派遣, a refusal) and ``sweep_overdue`` at a later fixed time.

The ``cases``, ``case_transitions`` and ``outbox`` rows are dumped, ordered by their identity
columns, as canonical JSON (sorted keys), together with what each call returned. Dropped columns,
all server-default wall-clock times: ``cases.created_at``, ``cases.updated_at``,
``case_transitions.recorded_at``, ``outbox.created_at``. Identity columns (``cases.seq``,
``case_transitions.id``, ``outbox.id``) are kept: in a fresh database they are deterministic and
record the write order. Prints the sha256 of the JSON and writes it to ``--out``.

Usage: python bench/dispatch_fingerprint.py --out /tmp/fp.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.dispatch.actions import ActionOutcome, perform_action  # noqa: E402
from services.dispatch.case_model import Action, Actor, Role  # noqa: E402
from services.dispatch.grid_client import LoadedJurisdiction  # noqa: E402
from services.dispatch.incidents import handle_incidents  # noqa: E402
from services.dispatch.lifecycle import DEFAULT_MAX_REJECTIONS  # noqa: E402
from services.dispatch.sweep import sweep_overdue  # noqa: E402
from shared.calendar import load_calendar  # noqa: E402
from shared.db import create_engine, session_factory  # noqa: E402
from shared.embedded import MACHINE_POSTGRES  # noqa: E402
from shared.events import IncidentReported, make_envelope  # noqa: E402
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot  # noqa: E402
from tests.conftest import create_database, drop_database  # noqa: E402

DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
#: The fixed "now" of intake (a Tuesday). 固定的当前时间（周二）。
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
#: The sweep's "now": well past every deadline. 超期扫描时间。
SWEEP_AT = NOW + timedelta(days=30)
NAMESPACE = uuid.UUID("6f1d2a40-13c5-4b8e-9a77-0d5e3c2b1f90")

BAISHA, QINGXI, FENGLIN = "330127001", "330127101", "330127102"
G_BAISHA = "330127001003005"  # 桥西社区第5网格
G_QINGXI = "330127101001003"  # 青溪社区第3网格
G_FENGLIN = "330127102001001"  # 枫林社区第1网格

ADMIN = Actor(Role.ADMIN, township="*", id="fp-admin")
HOTLINE = Actor(Role.HOTLINE, id="fp-hotline")
TOWNSHIP_ADMIN_QX = Actor(Role.TOWNSHIP_ADMIN, township=QINGXI, id="fp-ta-qx")


def dispatcher(township: str) -> Actor:
    return Actor(Role.DISPATCHER, township=township, id=f"fp-disp-{township}")


def unit(unit_id: str) -> Actor:
    return Actor(Role.UNIT, unit=unit_id, id=f"fp-{unit_id}")


def centre(snapshot: JurisdictionSnapshot, code: str, dx_m: float = 0.0) -> tuple[float, float]:
    division = snapshot.division(code)
    assert division is not None and division.geometry is not None
    point = division.geometry.representative_point()
    return round(float(point.x) + dx_m / 96_800, 7), round(float(point.y), 7)


def incident(
    name: str,
    *,
    source: str,
    key: str,
    point: tuple[float, float] | None,
    minutes_ago: int,
    urgency: str = "normal",
    phone: str | None = None,
    self_handled: bool = False,
    **extra: Any,
) -> IncidentReported:
    """One report, every id derived from ``name``. 一条报告（各 id 由 name 派生）。"""
    reported = NOW - timedelta(minutes=minutes_ago)
    location = None
    if point is not None:
        lng, lat = point
        location = {"lng": lng, "lat": lat, "original_crs": "wgs84", "original_lng": lng, "original_lat": lat}
    return IncidentReported.model_validate(
        {
            "event_id": uuid.uuid5(NAMESPACE, name),
            "source": source,
            "source_id": f"FP-{name}",
            "reported_at": reported,
            "received_at": reported + timedelta(seconds=30),
            "title": f"指纹 {name}",
            "description": f"指纹测试 fingerprint {name}",
            "category_codes": {"code": key},
            "category_key": key,
            "location": location,
            "urgency": urgency,
            "reporter_kind": "grid_worker" if source == "gridworker" else "caller",
            "appeal_type": "complaint" if source == "12345" else None,
            "caller": {"phone_hash": phone, "phone_masked": "138****0000"} if phone else None,
            "worker_id": "GW330127102001001" if source == "gridworker" else None,
            "self_handled": self_handled,
            **extra,
        }
    )


def batches(snapshot: JurisdictionSnapshot) -> list[list[IncidentReported]]:
    """Two batches of reports; the second repeats one of the first (a replay). 两批报告（第二批含重放）。"""
    qx, bs, fl = centre(snapshot, G_QINGXI), centre(snapshot, G_BAISHA), centre(snapshot, G_FENGLIN)
    first = [
        incident("hotline-qx", source="12345", key="010101", point=qx, minutes_ago=60, phone="phone-a"),
        incident("hotline-qx-near", source="12345", key="010101", point=centre(snapshot, G_QINGXI, 20),
                 minutes_ago=50, phone="phone-b"),  # 20 m away, same matter → merged
        incident("cityops-bs", source="cityops", key="01-02", point=bs, minutes_ago=45, urgency="urgent"),
        incident("grid-fl-self", source="gridworker", key="GW-SR-01", point=fl, minutes_ago=40, self_handled=True),
        incident("grid-fl", source="gridworker", key="GW-WJ-01", point=centre(snapshot, G_FENGLIN, 300),
                 minutes_ago=35),
        incident("unmapped", source="12345", key="UNMAPPED", point=qx, minutes_ago=30),  # → triage uncategorised
        incident("nowhere", source="12345", key="010102", point=None, minutes_ago=29),  # → triage unlocated
        incident("critical-bs", source="12345", key="020101", point=centre(snapshot, G_BAISHA, 500),
                 minutes_ago=28, urgency="critical"),
        incident("agency-qx", source="12345", key="020101", point=centre(snapshot, G_QINGXI, 900),
                 minutes_ago=27),  # 无照经营, devolved nowhere → stationed agency 派驻机构
        incident("sand-qx", source="12345", key="080101", point=centre(snapshot, G_QINGXI, 1500),
                 minutes_ago=26, urgency="urgent"),  # rule sand-mining
        incident("escalating-qx", source="12345", key="040101", point=centre(snapshot, G_QINGXI, 2100),
                 minutes_ago=25),  # auto-escalates when overdue
        incident("cityops-bs-2", source="cityops", key="01-02", point=centre(snapshot, G_BAISHA, 10),
                 minutes_ago=20),  # near cityops-bs, same matter → merged
    ]  # fmt: skip
    second = [
        first[2],  # replay → exists
        incident("caller-again", source="12345", key="010102", point=centre(snapshot, G_QINGXI, 2600),
                 minutes_ago=10, phone="phone-a"),  # the same caller, another matter
        incident("code-only", source="cityops", key="01-01", point=None, minutes_ago=5, division_code=BAISHA),
        incident("twice-in-batch", source="12345", key="010103", point=centre(snapshot, G_FENGLIN, 900),
                 minutes_ago=4),
    ]  # fmt: skip
    second.append(second[-1])  # twice in one batch → exists
    return [first, second]


def outcome_json(outcome: ActionOutcome) -> dict[str, Any]:
    refused = outcome.refused
    return {
        "applied": [[a.event_type, str(a.action), a.at.isoformat()] for a in outcome.applied],
        "refused": None if refused is None else [str(refused.kind), refused.reason],
        "state": None if outcome.record is None else str(outcome.record.snapshot.state),
        "version": None if outcome.record is None else outcome.record.snapshot.version,
    }


async def scenario(url: str) -> dict[str, Any]:
    """Run everything; returns what the calls answered. 运行全部步骤，返回各调用结果。"""
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    loaded = LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))
    engine = create_engine(url, pool_size=1)
    sessions = session_factory(engine)
    answers: dict[str, Any] = {"incidents": [], "actions": [], "sweep": []}
    ids: dict[str, uuid.UUID] = {}
    try:
        for n, batch in enumerate(batches(snapshot)):
            envelopes = [
                make_envelope(
                    event_type="incident.reported",
                    data=e,
                    source=f"/intake/{e.source}",
                    correlation_id=f"fp-batch-{n}",
                    subject=str(e.event_id),
                    time=e.received_at,
                    event_id=e.event_id,
                )
                for e in batch
            ]
            async with sessions() as session, session.begin():
                outcomes = await handle_incidents(session=session, envelopes=envelopes, jurisdiction=loaded)
            for e, o in zip(batch, outcomes, strict=True):
                ids.setdefault(e.source_id.removeprefix("FP-"), o.case_id)
                merged = None if o.merged_into is None else str(o.merged_into)
                answers["incidents"].append([e.source_id, str(o.case_id), o.status, o.outcome, merged])

        versions: dict[uuid.UUID, int] = {}
        step = 0

        async def act(name: str, action: Action, actor: Actor, **body: Any) -> ActionOutcome | None:
            nonlocal step
            step += 1
            case_id = ids[name]
            body.setdefault("expected_version", versions.get(case_id, 0))
            async with sessions() as session, session.begin():
                try:
                    outcome = await perform_action(
                        session=session,
                        case_id=case_id,
                        action=action,
                        body=body,
                        actor=actor,
                        now=NOW + timedelta(hours=1, minutes=step),
                        jurisdiction=loaded,
                        max_rejections=DEFAULT_MAX_REJECTIONS,
                        correlation_id=f"fp-action-{step}",
                    )
                except LookupError as exc:  # not found, or not visible to the actor 不存在或不可见
                    answers["actions"].append([name, str(action), {"not_found": type(exc).__name__}])
                    return None
            if outcome.record is not None:
                versions[case_id] = outcome.record.snapshot.version
            answers["actions"].append([name, str(action), outcome_json(outcome)])
            return outcome

        async with sessions() as session:
            for row in await session.execute(text("SELECT id, version FROM dispatch.cases")):
                versions[row.id] = row.version

        # 12345 闭环: 签收 → 延期 → 吹哨 / 报到 → 协办 → 办结 → 核查 → 回访 → 重办 → 办结 → 结案
        hq, zfd_qx = "hotline-qx", unit("330127101-zfd")
        await act(hq, Action.ACCEPT, zfd_qx)
        await act(hq, Action.REQUEST_EXTENSION, zfd_qx, new_deadline=(NOW + timedelta(days=20)).isoformat(),
                  reason="需协调业主，申请延期")  # fmt: skip
        await act(hq, Action.DECIDE_EXTENSION, dispatcher(QINGXI), approved=True, note="同意")
        await act(hq, Action.ESCALATE, TOWNSHIP_ADMIN_QX, department="dept-cgj", reason="需县城管局支持")
        await act(hq, Action.REPORT_IN, unit("dept-cgj"), note="已到场")
        await act(hq, Action.ADD_COHANDLER, dispatcher(QINGXI), unit="330127101-shsw")
        await act(hq, Action.SUPERVISE, dispatcher(QINGXI), note="请加快办理")
        await act(hq, Action.RESOLVE, zfd_qx, result="已劝离摊贩", photos=["p1.jpg"])
        await act(hq, Action.VERIFY, dispatcher(QINGXI), passed=False, note="现场仍有摊贩")
        await act(hq, Action.RESOLVE, zfd_qx, result="已设置隔离栏")
        await act(hq, Action.VERIFY, dispatcher(QINGXI), passed=True, note="已核实")
        await act(hq, Action.CALLBACK, HOTLINE, satisfaction="unsatisfied", solved=False, note="早上又来了")
        await act(hq, Action.REOPEN, dispatcher(QINGXI), reason="回访不满意，重办")
        await act(hq, Action.RESOLVE, zfd_qx, result="联合派出所长效管控")
        await act(hq, Action.CLOSE, dispatcher(QINGXI), note="结案")
        # refusals: stale version, invisible case, merged report, unknown unit
        await act(hq, Action.REOPEN, dispatcher(QINGXI), reason="过期版本", expected_version=1)
        await act("hotline-qx-near", Action.ACCEPT, zfd_qx)  # not visible to the unit
        await act("hotline-qx-near", Action.SUPERVISE, ADMIN, note="并案件")
        await act("agency-qx", Action.REASSIGN, dispatcher(QINGXI), unit="no-such-unit", reason="试派")
        await act("cityops-bs", Action.ACCEPT, zfd_qx)  # another township's unit

        # 退单 → 再派遣 → 退单 → 转人工 → 判定退单 → 手动派遣
        cb = "cityops-bs"
        await act(cb, Action.REJECT, unit("330127001-zfd"), reason="垃圾清运不属执法队职责")
        await act(cb, Action.REJECT, unit("dept-cgj"), reason="属地问题，应由街道处理")
        await act(cb, Action.RULE_REJECTION, dispatcher(BAISHA), valid=False, note="退单理由不成立",
                  unit="330127001-zfd")  # fmt: skip
        await act(cb, Action.ASSIGN, dispatcher(BAISHA), unit="330127001-csgl", reason="人工判定", matter="SR002")
        await act(cb, Action.ACCEPT, unit("330127001-csgl"))
        await act(cb, Action.REASSIGN, dispatcher(BAISHA), unit="330127001-zfd", reason="改派执法队")

        # triage → 手动派遣 with a matter; 改派 of a stationed-agency case
        await act("unmapped", Action.ASSIGN, ADMIN, unit="330127101-zfd", reason="人工定性", matter="SR001")
        await act("agency-qx", Action.ACCEPT, unit("pz-scjgs-qingxi"))
        await act("agency-qx", Action.REJECT, unit("pz-scjgs-qingxi"), reason="不属本所")
        await act("critical-bs", Action.ACCEPT, unit(await case_unit(sessions, ids["critical-bs"])))

        async with sessions() as session, session.begin():
            flagged = await sweep_overdue(
                session=session, now=SWEEP_AT, jurisdiction=loaded, correlation_id="fp-sweep", limit=500
            )
        answers["sweep"] = sorted(str(x) for x in flagged)
        async with sessions() as session, session.begin():
            again = await sweep_overdue(session=session, now=SWEEP_AT, jurisdiction=loaded, correlation_id="fp-sweep")
        answers["sweep_again"] = [str(x) for x in again]
    finally:
        await engine.dispose()
    return answers


async def case_unit(sessions: Any, case_id: uuid.UUID) -> str:
    async with sessions() as session:
        value = await session.scalar(text("SELECT unit FROM dispatch.cases WHERE id = :id"), {"id": case_id})
    return str(value)


DUMPS = {
    "cases": "SELECT to_jsonb(c) - 'created_at' - 'updated_at' FROM dispatch.cases c ORDER BY seq",
    "case_transitions": "SELECT to_jsonb(t) - 'recorded_at' FROM dispatch.case_transitions t ORDER BY id",
    "outbox": (
        "SELECT jsonb_build_object('id', id, 'event_id', event_id, 'topic', topic, 'event_type', event_type, "
        "'key', key, 'value', convert_from(value, 'UTF8'), 'headers', headers) FROM dispatch.outbox ORDER BY id"
    ),
}


async def dump(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
        return {name: [json.loads(r[0]) for r in await conn.fetch(q)] for name, q in DUMPS.items()}
    finally:
        await conn.close()


async def run() -> dict[str, Any]:
    server_url = os.environ.get("TEST_DATABASE_URL") or MACHINE_POSTGRES
    url = await create_database(server_url, ("dispatch",))
    try:
        answers = await scenario(url)
        tables = await dump(url)
    finally:
        await drop_database(server_url, url)
    return {"answers": answers, **tables}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where to write the canonical JSON")
    out: Path = parser.parse_args().out
    document = asyncio.run(run())
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, indent=1) + "\n"
    out.write_text(canonical, encoding="utf-8")
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    counts = ", ".join(f"{name} {len(document[name])}" for name in DUMPS)
    answers = document["answers"]
    print(f"{digest}  {out}  ({counts}; {len(answers['actions'])} actions, {len(answers['sweep'])} flagged)")


if __name__ == "__main__":
    main()
