"""A synthetic year through the whole platform, stage by stage, beside floors measured in the same run.

一年的合成数据经 受理 → 派遣 → 绩效 全链路，各环节速率与同次运行测得的下限并列。

What runs: the four services as uvicorn processes (``tests/processes.Platform``) on one fresh
database and a fresh Tansu broker, the demo county (青溪县) imported into grid. A synthetic year
of reports (12345 工单 ~60 %, 数字城管 案卷 ~28 %, 网格员 上报 ~12 %, spread over the year before today with a
weekday/daytime shape, random mapped categories at random points, ~4 % near-duplicates of an
earlier report, ~2 % unmapped) is POSTed to intake's batch endpoints by ``--producers`` concurrent
producers. Meanwhile an "operator" takes ``--act-share`` of the dispatched cases through
签收 → 办结 → 核查 with the holding unit's and a dispatcher's tokens, over the real HTTP API: a live
case's actions one request each at the platform's dispatch, an imported case's (the history's own
lifecycle, part of the import) in batches (``POST /v1/cases/actions``: each unit's accepts and
results, then the verifications) at the import's own dispatch process when there is one
(``--import-processes``). The operator goes on until it has looked at every case, so its share is of
the whole year; the run prints the end-to-end time with that lifecycle too.

What it prints:
- each stage's steady rate (10 %→90 % of its final count): intake accepted, dispatch cases
  committed, metrics facts written, lifecycle actions applied;
- CPU per event of each service process (user + system, from /proc), and resident memory sampled
  through the run (start, quartiles, peak: flat memory means the quartiles do not climb);
- the CPU per event of what the services stand on, PostgreSQL (the whole server) and the broker,
  and what all of it allows on this machine's cores: the most reports/s (and hours for 24 M) with
  every process as it is, and with the services' own CPU taken as nil (PostgreSQL and the broker alone);
- the floors, measured after the run on the same data: (a) raw aiokafka consume of every
  ``incident.reported`` record (no group, JSON decode), (b) a raw asyncpg COPY of the rows
  dispatch wrote per case (cases, timeline, and one outbox row per timeline row) into empty
  copies of its tables with the same indexes; dispatch's rate is printed as a ratio to (b)
  (``bench/replay_floors.py``, which also measures them afterwards on a database a run kept);
- the end-to-end time (first batch posted → every case and metrics fact stored) and the hours 24 M
  events would take at that pace and at the slowest stage's rate;
- with ``--live-rate`` > 0: while the replay runs, live cityops records at that rate into the
  single-record endpoint, and the time from intake's 202 to ``case.dispatched`` (p50/p99), with
  the legs on the way (intake's relay, dispatch's transaction beginning; and where the server runs
  with ``track_commit_timestamp=on``, intake's and dispatch's commits too); beside it the floor:
  the same probe alone on the same platform before the replay starts, the operator acting.
  ``--live-probes K``: K probes of ``--live-seconds`` each, spread from 20 % to 80 % of the replay
  accepted, each one's p50/p99 printed beside the figures over all of them. The
  replay goes in intake's bulk lane (``?lane=bulk``, ``--lane bulk``, the default: what a history
  import does), the live records in the live lane; ``--lane live`` posts the replay as live too;
- with ``--two-dispatch``: a second run of the same events on a fresh database and broker with two
  dispatch processes in one consumer group: its rate beside the first, and whether both runs
  routed every report the same way (incident → township, unit, matter, state, merged-into; times
  are not compared: dispatch stamps its own clock today). ``--two-dispatch-events N`` runs the
  comparison (one process, then two, each on a fresh platform) on the first N reports only, so a
  2 M run need not be repeated twice. Each run's outcomes are written to
  ``test-artifacts/<label>-outcomes.tsv`` (incident, group, township, unit, matter, state) to diff.
- with ``--staged`` (and ``--import-processes``): the stages one after another instead of side by
  side — intake takes the whole year, then the import's dispatch alone makes the cases, then the
  import's metrics alone scores them while the operator acts — each stage's span and every
  process's CPU per report in it: each stage alone on the machine, as the floors are measured.
- with ``--live-worker``: the platform's dispatch serves the API alone (``DISPATCH_INCIDENT_LANES=none``:
  the operator's actions on live cases) and ``dispatch-live`` makes the live reports into cases, each
  process with an event loop of its own (its CPU is printed on its own line).

Asserts nothing; prints figures. Usage:
  python bench/replay.py [--events 200000] [--producers 2] [--batch 500] [--act-share 0.2]
                         [--live-rate 100] [--live-seconds 30] [--live-probes 1]
                         [--two-dispatch [--two-dispatch-events N]] [--seed 2026]
                         [--lane bulk|live] [--import-processes [--staged] [--import-nice N] [--import-idle]]
                         [--live-worker] [--keep-database]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import gc
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import cpu_by_command, pct, postgres_server, rss_mb, server_settings, tree_cpu_s  # noqa: E402
from bench.replay_floors import measure_floors  # noqa: E402
from shared.embedded import TansuBroker, free_port  # noqa: E402
from shared.events import CASE_EVENTS, INCIDENT_REPORTED, INCIDENT_REPORTED_BULK  # noqa: E402
from shared.messaging.topics import ensure_topics  # noqa: E402
from shared.migrations import SERVICES, upgrade  # noqa: E402
from tests.processes import ARTIFACTS, Platform, plain_dsn  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
EXAMPLES = {
    s: json.loads((ROOT / "deploy" / "demo" / "examples" / f"{s}.json").read_text(encoding="utf-8"))
    for s in ("12345", "cityops", "gridworker")
}
KEYS = {"12345": "dev-12345", "cityops": "dev-cityops", "gridworker": "dev-gridworker"}
AREA = (119.0, 29.54, 119.1, 29.62)  # the demo county's built-up area 建成区
SHARES = (("12345", 0.60), ("cityops", 0.28), ("gridworker", 0.12))
TARGET_EVENTS = 24_000_000


def _grids() -> list[tuple[str, list[list[float]]]]:
    """The demo county's grids 网格: code and exterior ring (a grid worker reports inside their own grid)."""
    out = []
    for feature in DEMO["divisions"]["features"]:
        if feature["properties"].get("level") == "grid" and feature["geometry"]["type"] == "Polygon":
            out.append((feature["properties"]["code"], feature["geometry"]["coordinates"][0]))
    return out


GRIDS = _grids()


# --------------------------------------------------------------------------- the synthetic year


def _moment(rng: random.Random, first_day: datetime) -> datetime:
    """A report time in the 365 days from ``first_day``: weekdays busier, mostly 08:00–20:00 Beijing time."""
    while True:
        day = first_day + timedelta(days=rng.randrange(365))
        if day.weekday() >= 5 and rng.random() < 0.45:
            continue
        hour = min(23, max(0, int(rng.gauss(13, 4))))
        return day + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))


def _point(rng: random.Random) -> tuple[float, float]:
    return (
        round(AREA[0] + rng.random() * (AREA[2] - AREA[0]), 6),
        round(AREA[1] + rng.random() * (AREA[3] - AREA[1]), 6),
    )


def _record(source: str, i: int, at: datetime, key: str, lng: float, lat: float, rng: random.Random) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLES[source])
    stamp = at.isoformat()
    if source == "12345":
        body.update(
            ticket_no=f"RP{i:09d}",
            received_at=stamp,
            category_code=key,
            urgency=rng.choices(["normal", "urgent", "critical"], [90, 9, 1])[0],
        )
        body.pop("division_code", None)
        body["caller"] = {"name": "市民", "phone": f"138{rng.randrange(10**8):08d}", "anonymous": False}
    elif source == "cityops":
        major, _, minor = key.partition("-")
        body.update(case_no=f"RP{i:09d}", reported_at=stamp, major_code=major, minor_code=minor)
        body.pop("cell_code", None)
    else:
        code, ring = rng.choice(GRIDS)  # a point between the grid's centre and one of its corners
        corner = rng.choice(ring[:-1])
        centre = (sum(p[0] for p in ring[:-1]) / (len(ring) - 1), sum(p[1] for p in ring[:-1]) / (len(ring) - 1))
        share = rng.uniform(0.05, 0.8)
        lng = round(centre[0] + (corner[0] - centre[0]) * share, 6)
        lat = round(centre[1] + (corner[1] - centre[1]) * share, 6)
        body.update(
            report_id=f"RP{i:09d}", reported_at=stamp, event_type=key, self_handled=rng.random() < 0.15, grid_code=code
        )
    body["location"] = {"lng": lng, "lat": lat, "crs": "wgs84"}
    return body


def synthetic_year(n: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` reports of the year before today, in time order, as producers would send them. 合成一年的上报。"""
    rng = random.Random(seed)
    today = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=366)
    mappings = DEMO["source_mappings"]
    sources = [s for s, _ in SHARES]
    weights = [w for _, w in SHARES]
    drafts: list[tuple[datetime, str, str, float, float]] = []
    for _ in range(n):
        if drafts and rng.random() < 0.04:  # a near-duplicate of a recent report 近似重复
            at, source, key, lng, lat = drafts[-rng.randrange(1, min(len(drafts), 50) + 1)]
            drafts.append(
                (
                    at + timedelta(minutes=rng.randrange(1, 90)),
                    source,
                    key,
                    round(lng + rng.uniform(-1e-4, 1e-4), 6),
                    round(lat + rng.uniform(-1e-4, 1e-4), 6),
                )
            )
            continue
        source = rng.choices(sources, weights)[0]
        key = rng.choice(list(mappings[source]))
        if rng.random() < 0.02:
            key = {"12345": "999999", "cityops": "99-99", "gridworker": "GW-XX-99"}[source]
        drafts.append((_moment(rng, first_day), source, key, *_point(rng)))
    drafts.sort(key=lambda d: d[0])
    return [(d[1], _record(d[1], i, d[0], d[2], d[3], d[4], rng)) for i, d in enumerate(drafts)]


# --------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    t: float
    accepted: int
    cases: int
    facts: int
    actions: int
    rss: dict[str, float]


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    accepted: int = 0
    #: Live records accepted (the probe's and its warm-up's): their cases count too. 实时探针受理数。
    live_accepted: int = 0
    actions: int = 0
    action_errors: int = 0
    #: Why actions were refused: the live path's HTTP status and code, "batch" for the import's items.
    #: 动作被拒原因（实时：HTTP 状态与错误码；导入：batch）。
    refusals: Counter[str] = field(default_factory=Counter)
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)
    live: list[float] = field(default_factory=list)
    #: Received → each stamp on the live record's way, in path order (what the platform stamped).
    #: 实时记录沿途各戳距受理的时长（按路径顺序）。
    live_legs: dict[str, list[float]] = field(default_factory=dict)
    live_seen: list[float] = field(default_factory=list)
    #: Each probe's own p50, p99 and count (``--live-probes`` spreads several over the replay).
    #: 每次探测各自的 p50、p99 与条数。
    live_by_probe: list[tuple[float, float, int]] = field(default_factory=list)
    #: Each probe's start (UTC, to read beside the server's log) and its legs' p99 (s), in path order.
    #: 每次探测的开始时刻（UTC，便于对照数据库日志）及各段 p99。
    live_probe_legs: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    live_warmup_s: float = 0.0
    #: The same probe on the same platform before the replay starts (the live path's own latency, the
    #: floor the figure under the replay is read against). 回放开始前同一探针（实时链路自身时延）。
    live_alone: list[float] = field(default_factory=list)
    live_alone_legs: dict[str, list[float]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    #: From the first batch posted to the last report's case and metrics fact stored. 端到端用时。
    end_to_end_s: float = 0.0
    #: From the first batch posted until the operator has acted on its share of every case and metrics
    #: holds every case event (the history's lifecycle imported too). 含历史流转的端到端用时。
    with_lifecycle_s: float = 0.0
    #: A staged replay's stages, in order (empty when pipelined). 分段回放的各段。
    stages: list[Stage] = field(default_factory=list)


def steady_rate(samples: list[Sample], attr: str) -> float:
    """Slope between 10 % and 90 % of the final count (events/s); 0 if too few samples."""
    final = getattr(samples[-1], attr)
    if final <= 0:
        return 0.0
    lo = next((s for s in samples if getattr(s, attr) >= 0.1 * final), None)
    hi = next((s for s in samples if getattr(s, attr) >= 0.9 * final), None)
    if lo is None or hi is None or hi.t <= lo.t:
        return 0.0
    return (getattr(hi, attr) - getattr(lo, attr)) / (hi.t - lo.t)


# --------------------------------------------------------------------------- the platform


def staff_tokens() -> dict[str, dict[str, str]]:
    """An admin, a county dispatcher, and one token per unit of the demo county."""
    tokens = {
        "dev-admin": {"role": "admin", "township": "*"},
        "bench-dispatcher": {"role": "dispatcher", "township": "*"},
    }
    for unit in DEMO["units"]:
        tokens[f"bench-unit-{unit['id']}"] = {
            "role": "unit",
            "township": unit.get("township_code") or "*",
            "unit": unit["id"],
        }
    return tokens


def start_extra(
    plat: Platform,
    label: str,
    name: str,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    nice: int = 0,
    idle: bool = False,
) -> subprocess.Popen[bytes]:
    """One more process of service ``name`` on the platform's database and broker (same consumer
    groups), with ``env`` added and at CPU priority ``nice`` (``idle``: under ``SCHED_IDLE``, as
    ``chrt --idle 0`` starts it)."""
    with open(ARTIFACTS / f"{label}-{name}-extra.log", "ab") as log:
        command = [sys.executable, "-m", "uvicorn", "--factory", f"services.{name}.app:create_app",
                   "--host", "127.0.0.1", "--port", str(port or free_port()), "--no-access-log"]  # fmt: skip
        if nice:
            command = ["nice", "-n", str(nice), *command]
        if idle:
            command = ["chrt", "--idle", "0", *command]
        return subprocess.Popen(
            command, cwd=ROOT, env={**plat.env(), **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _set_priority(pid: int | None, *, nice: int, idle: bool) -> None:
    """Every thread of process ``pid`` under ``SCHED_IDLE`` (``idle``) or at ``nice``, as ``chrt -a`` and
    ``renice`` would set a process started before. 设置进程全部线程的 CPU 优先级。"""
    if pid is None:
        return
    for task in os.listdir(f"/proc/{pid}/task"):
        if idle:
            os.sched_setscheduler(int(task), os.SCHED_IDLE, os.sched_param(0))
        elif nice:
            os.setpriority(os.PRIO_PROCESS, int(task), nice)


@contextlib.asynccontextmanager
async def platform(
    server_url: str,
    label: str,
    *,
    dispatchers: int = 1,
    import_processes: bool = False,
    import_nice: int = 10,
    import_idle: bool = False,
    deferred: frozenset[str] = frozenset(),
    import_dispatchers: int = 1,
    live_worker: bool = False,
    keep_database: bool = False,
    bulk_broker: bool = False,
) -> AsyncIterator[tuple[Platform, str, dict[str, subprocess.Popen[bytes]], dict[str, Callable[[], None]]]]:
    """A fresh database and broker, the four services (and extra dispatch processes), demo county loaded.
    The database is dropped afterwards unless ``keep_database`` (for ``bench/replay_floors.py``).

    ``import_processes``: the history import gets processes of its own at a lower CPU priority
    (``import_nice``), as an operator would run one: an intake (``plat.url("intake-import")``), a dispatch
    for the bulk lane and a metrics for the bulk lane's case events; the platform's dispatch and
    metrics then take the live lane only. ``deferred``: import processes (``dispatch-import``,
    ``metrics-import``) not started with the platform (``import_dispatchers``: how many processes the
    import's dispatch has, in one consumer group); the last item yielded starts each on call
    (a staged replay runs each stage alone).

    ``live_worker``: the platform's dispatch serves the 调度台's API alone (``DISPATCH_INCIDENT_LANES=none``:
    the staff's actions, the dashboard, the sweep) and a second dispatch process, ``dispatch-live``, makes
    the live reports into cases (the bulk lane too, without ``import_processes``).

    ``bulk_broker`` (with ``import_processes``): the import's processes use a broker of their own, at
    the import's CPU priority, so the bulk lane's records never take the live lane's broker's CPU
    (the live services keep the platform's broker: each lane's topics are read and written by its own
    processes only)."""
    admin = await asyncpg.connect(plain_dsn(server_url))
    database = f"replay_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{database}"')
    head, _, tail = server_url.partition("?")
    db_url = head.rsplit("/", 1)[0] + f"/{database}" + (f"?{tail}" if tail else "")
    broker = TansuBroker()
    broker.start()
    bulk_tansu = TansuBroker() if import_processes and bulk_broker else None
    if bulk_tansu is not None:
        bulk_tansu.start()
        _set_priority(bulk_tansu.pid, nice=import_nice, idle=import_idle)
    extra: dict[str, subprocess.Popen[bytes]] = {}
    starters: dict[str, Callable[[], None]] = {}
    plat = Platform(
        db_url,
        broker.bootstrap,
        label=label,
        env_extra={
            "STAFF_TOKENS": json.dumps(staff_tokens()),
            "SERVICE_TOKEN": "dev-admin",
            "LOG_LEVEL": "WARNING",
            "OUTBOX_POLL_INTERVAL_S": "0.05",
            "OUTBOX_RELEASE_GRACE_S": "30",
            "OUTBOX_KEEP_INTERVAL_S": "5",
            **(
                {"DISPATCH_INCIDENT_LANES": "live", "OUTBOX_LANES": "live", "METRICS_CASE_LANES": "live"}
                if import_processes
                else {}
            ),
            **({"DISPATCH_INCIDENT_LANES": "none"} if live_worker else {}),
        },
    )
    try:
        for service in SERVICES:
            await asyncio.to_thread(upgrade, service, db_url)
        await ensure_topics(broker.bootstrap)
        if bulk_tansu is not None:
            await ensure_topics(bulk_tansu.bootstrap)
        plat.start()
        await plat.wait_healthy()
        await plat.load_demo_county()
        for i in range(dispatchers - 1):
            extra[f"dispatch-{i + 2}"] = start_extra(plat, label, "dispatch")
        if live_worker:  # the API process keeps the overdue sweep: one sweeper, as without the worker
            worker = {
                "DISPATCH_INCIDENT_LANES": "live" if import_processes else "both",
                "DISPATCH_OVERDUE_SWEEP_INTERVAL_S": "0",
            }
            extra["dispatch-live"] = start_extra(plat, label, "dispatch", env=worker)
        if import_processes:
            priority = {
                "DB_BACKEND_NICE": str(import_nice),
                "DB_BACKEND_IDLE": str(import_idle).lower(),
                **({"KAFKA_BOOTSTRAP_SERVERS": bulk_tansu.bootstrap} if bulk_tansu is not None else {}),
            }
            bulk = {"DISPATCH_INCIDENT_LANES": "bulk", "OUTBOX_LANES": "bulk", **priority}
            own_env = {
                "dispatch-import": ("dispatch", bulk, import_dispatchers),
                "metrics-import": ("metrics", {"METRICS_CASE_LANES": "bulk", **priority}, 1),
            }
            # The import's own dispatch API (the first process): the lifecycle actions of imported cases go there.
            plat.ports["dispatch-import"] = free_port()
            for key, (service, env, count) in own_env.items():

                def start(
                    key: str = key, service: str = service, env: dict[str, str] = env, count: int = count
                ) -> None:
                    for i in range(count):  # one consumer group: the partitions are shared out
                        name = key if i == 0 else f"{key}-{i + 1}"
                        extra[name] = start_extra(
                            plat, label, service, port=plat.ports.get(name), env=env, nice=import_nice, idle=import_idle
                        )

                starters[key] = start
                if key not in deferred:
                    start()
            plat.ports["intake-import"] = free_port()
            extra["intake-import"] = start_extra(
                plat,
                label,
                "intake",
                port=plat.ports["intake-import"],
                env={"OUTBOX_LANES": "bulk", **priority},
                nice=import_nice,
                idle=import_idle,
            )
        async with httpx.AsyncClient(timeout=5) as http:
            deadline = time.monotonic() + 120
            for name in ("dispatch", *(["intake-import"] if import_processes else [])):
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{plat.url(name)}/readyz")).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} not ready")
                    await asyncio.sleep(0.5)
        yield plat, plain_dsn(db_url), extra, starters
    finally:
        for proc in extra.values():
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        plat.stop()
        broker.stop()
        if bulk_tansu is not None:
            bulk_tansu.stop()
        if keep_database:
            print(f"  [{label}] database kept: {plain_dsn(db_url)}")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def produce(
    plat: Platform, events: list[tuple[str, dict[str, Any]]], run: Run, *, producers: int, batch: int, lane: str
) -> None:
    """POST the year in batches (per source, in time order) with ``producers`` concurrent clients,
    in intake's ``lane`` (``bulk``: the history-import lane, dispatched after live reports)."""
    chunks: list[tuple[str, list[dict[str, Any]]]] = []
    current: dict[str, list[dict[str, Any]]] = {}
    for source, body in events:
        bucket = current.setdefault(source, [])
        bucket.append(body)
        if len(bucket) >= batch:
            chunks.append((source, bucket))
            current[source] = []
    chunks.extend((s, b) for s, b in current.items() if b)
    queue: asyncio.Queue[tuple[str, list[dict[str, Any]]]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    intake = plat.url("intake-import") if "intake-import" in plat.ports else plat.url("intake")

    async def producer() -> None:
        async with httpx.AsyncClient(timeout=120) as http:
            while not queue.empty():
                source, bodies = queue.get_nowait()
                while True:
                    try:
                        response = await http.post(
                            f"{intake}/v1/events/{source}/batch?lane={lane}",
                            content=orjson.dumps({"events": bodies}),
                            headers={"X-API-Key": KEYS[source], "Content-Type": "application/json"},
                        )
                    except httpx.TransportError:  # a kept-alive connection the server closed: post again
                        await asyncio.sleep(0.2)  # (idempotent: what was stored answers "duplicate")
                        continue
                    if response.status_code in (429, 502, 503):
                        await asyncio.sleep(0.2)
                        continue
                    results = response.json()["results"]
                    run.accepted += sum(r["status"] in ("accepted", "duplicate") for r in results)
                    for r in results:
                        if r["status"] not in ("accepted", "duplicate"):
                            errors = r.get("errors") or [{"msg": r.get("detail")}]
                            run.refused[f"{source} {r['status']}: {str(errors[0].get('msg'))[:80]}"] += 1
                    break

    await asyncio.gather(*(producer() for _ in range(producers)))


#: Items per batch of lifecycle actions the operator posts for imported cases (``POST /v1/cases/actions``),
#: and batches in flight at once (an import tool's workers). 每批操作数与并发批数。
ACTION_BATCH = 500
ACTION_WORKERS = 2
#: Cases (by ``seq``) the operator reads per poll. 每次读取的案件数。
OPERATOR_WINDOW = 5000


async def act_in_batches(
    http: httpx.AsyncClient, base: str, run: Run, rows: list[Any], unit_of: Any, dispatcher: dict[str, str]
) -> None:
    """Imported cases through 签收 → 办结 → 核查 as an import tool posts a history's lifecycle: each
    unit's accepts and results in its own batches (a unit acts on its own cases), then the
    dispatcher's verifications in batches. 导入案件的流转按单位批量提交，再由派遣员批量核查。"""
    by_unit: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_unit[row["unit"]].append(row)
    resolved: list[tuple[Any, int]] = []  # (case row, version after its result)

    async def post(items: list[dict[str, Any]], headers: dict[str, str]) -> list[dict[str, Any]] | None:
        try:
            response = await http.post(f"{base}/v1/cases/actions", json={"items": items}, headers=headers)
        except httpx.TransportError:  # counted as refused; the operator goes on
            run.action_errors += len(items)
            return None
        if response.status_code != 200:
            run.action_errors += len(items)
            return None
        answer = response.json()
        run.actions += answer["applied"]
        run.action_errors += answer["refused"]
        if answer["refused"]:
            run.refusals["batch items"] += answer["refused"]
        results: list[dict[str, Any]] = answer["results"]
        return results

    gate = asyncio.Semaphore(ACTION_WORKERS)

    async def unit_batch(unit_id: str, chunk: list[Any]) -> None:
        async with gate:
            items = [{"case_id": str(r["id"]), "action": "accept", "body": {"expected_version": r["version"]}}
                     for r in chunk]  # fmt: skip
            result = "已处置 handled"
            items += [{"case_id": str(r["id"]), "action": "resolve",
                       "body": {"expected_version": r["version"] + 1, "result": result}} for r in chunk]  # fmt: skip
            results = await post(items, unit_of(unit_id))
            if results is not None:
                done = results[len(chunk) :]
                resolved.extend((r, a["version"]) for r, a in zip(chunk, done, strict=True) if a["status"] == 200)

    half = ACTION_BATCH // 2
    await asyncio.gather(
        *(unit_batch(u, cases[i : i + half]) for u, cases in by_unit.items() for i in range(0, len(cases), half))
    )

    async def verify(chunk: list[tuple[Any, int]]) -> None:
        async with gate:
            items = [{"case_id": str(r["id"]), "action": "verify", "body": {"expected_version": v, "passed": True}}
                     for r, v in chunk]  # fmt: skip
            await post(items, dispatcher)

    await asyncio.gather(*(verify(resolved[i : i + ACTION_BATCH]) for i in range(0, len(resolved), ACTION_BATCH)))


async def operate(plat: Platform, dsn: str, run: Run, stop: asyncio.Event, share: float, seed: int) -> None:
    """Take ``share`` of the dispatched cases through 签收 → 办结 → 核查 over the HTTP API, until
    ``stop`` is set and every case stored by then has been looked at (so the share is of all cases).

    A live case's actions go to the platform's dispatch one request each (a dispatcher's and a
    unit's live work); an imported case's (lane ``bulk``) to the import's own dispatch process when
    it has one (``--import-processes``), in batches (``POST /v1/cases/actions``): they are the
    history's lifecycle, part of the import, as an import tool would post them.
    实时案件逐个操作，发往平台的派遣服务；导入案件的操作（属历史导入的一部分）批量发往导入自己的派遣进程。"""
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    last_seq = 0
    imported = plat.url("dispatch-import") if "dispatch-import" in plat.ports else plat.url("dispatch")
    dispatcher = {"Authorization": "Bearer bench-dispatcher"}

    def unit_of(unit_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer bench-unit-{unit_id}"}

    try:
        async with httpx.AsyncClient(timeout=60) as http:
            while True:
                # A bounded window of seq (cheap whatever the plan): "seq > $1 AND state = … LIMIT" was
                # planned as a bitmap scan of every later dispatched case, up to 47 ms of the measured
                # PostgreSQL's CPU per poll. 按 seq 窗口读取（开销有界），不拖累被测数据库。
                stopping = stop.is_set()  # read before the top: the cases stored by then are all looked at
                top = await conn.fetchval("SELECT max(seq) FROM dispatch.cases") or 0
                if top <= last_seq:
                    if stopping:
                        break
                    await asyncio.sleep(0.5)
                    continue
                upto = min(top, last_seq + OPERATOR_WINDOW)
                rows = await conn.fetch(
                    "SELECT id, seq, unit, version, state, lane FROM dispatch.cases WHERE seq > $1 AND seq <= $2 "
                    "ORDER BY seq",
                    last_seq,
                    upto,
                )
                last_seq = upto
                chosen = [r for r in rows if r["state"] == "dispatched" and rng.random() < share]
                await act_in_batches(
                    http, imported, run, [r for r in chosen if r["lane"] == "bulk"], unit_of, dispatcher
                )
                for row in chosen:
                    if row["lane"] == "bulk":
                        continue
                    version = row["version"]
                    for action, body, headers in (
                        ("accept", {}, unit_of(row["unit"])),
                        ("resolve", {"result": "已处置 handled"}, unit_of(row["unit"])),
                        ("verify", {"passed": True}, dispatcher),
                    ):
                        try:
                            response = await http.post(
                                f"{plat.url('dispatch')}/v1/cases/{row['id']}/actions/{action}",
                                json={**body, "expected_version": version},
                                headers=headers,
                            )
                        except httpx.TransportError as exc:  # counted as refused; the operator goes on
                            run.action_errors += 1
                            run.refusals[f"live {action}: {type(exc).__name__}"] += 1
                            break
                        if response.status_code != 200:
                            run.action_errors += 1
                            run.refusals[f"live {action}: {response.status_code} {_error_code(response)}"] += 1
                            break
                        version = response.json()["case"]["version"]
                        run.actions += 1
    finally:
        await conn.close()


def _error_code(response: httpx.Response) -> str:
    """The start of a refused action's ``detail`` (the platform's one error model), or of its body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:60]
    return str(body.get("detail") if isinstance(body, dict) else body)[:60]


async def live_probe(
    plat: Platform, bootstrap: str, run: Run, rate: int, seconds: int, dsn: str, *, first_id: int = 900_000_000
) -> None:
    """Live cityops records at ``rate``/s (during the replay, or alone before it): intake 202 → ``case.dispatched``.

    Two clocks. As the bench saw it (its 202 → its read of ``case.dispatched``): this includes the
    bench's own delays, and the bench process is busy producing the import. As the platform stamped
    it: intake's ``received_at`` of the record → the create time the dispatch relay gave the
    ``case.dispatched`` record (and the intake relay the ``incident.reported`` one) — the figure
    reported against the aim."""
    consumer = AIOKafkaConsumer(
        CASE_EVENTS,
        INCIDENT_REPORTED,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    await consumer.seek_to_end()
    arrived: dict[str, float] = {}
    stamped_dispatched: dict[str, float] = {}  # case.dispatched record's create time (s)
    stamped_published: dict[str, float] = {}  # incident.reported record's create time (s)
    stop = asyncio.Event()

    async def read() -> None:
        while not stop.is_set():
            for tp, records in (await consumer.getmany(timeout_ms=50)).items():
                now = time.perf_counter()
                for record in records:
                    if tp.topic == INCIDENT_REPORTED:
                        stamped_published.setdefault(orjson.loads(record.value)["id"], record.timestamp / 1000)
                    elif b'"case.dispatched"' in record.value:
                        value = orjson.loads(record.value)
                        if value["type"] == "case.dispatched" and value["data"].get("incident_id"):
                            arrived.setdefault(value["data"]["incident_id"], now)
                            stamped_dispatched.setdefault(value["data"]["incident_id"], record.timestamp / 1000)

    reader = asyncio.create_task(read())
    accepted: dict[str, float] = {}
    rng = random.Random(first_id)  # each probe its own records and places (not duplicates of another's)
    try:
        # A bounded pool: httpx walks every pooled connection on each request, so an unbounded one (grown
        # during a stall) made the probe the machine's largest CPU user (0.7 core at 100/s), taking it
        # from the platform it measures. 100/s at tens of ms needs a few connections; a request that
        # waits for one waits before intake stamps it, outside the platform-stamped figure.
        # 连接池设上限：httpx 每次请求遍历全部连接，无上限时探针本身占去 0.7 个核。
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:

            async def one(i: int, into: dict[str, float]) -> None:
                lng, lat = _point(rng)
                body = _record(
                    "cityops",
                    first_id + i,
                    datetime.now(TZ),
                    rng.choice(list(DEMO["source_mappings"]["cityops"])),
                    lng,
                    lat,
                    rng,
                )
                try:
                    response = await http.post(
                        f"{plat.url('intake')}/v1/events/cityops",
                        content=orjson.dumps(body),
                        headers={"X-API-Key": KEYS["cityops"], "Content-Type": "application/json"},
                    )
                except httpx.HTTPError as exc:
                    run.refused[f"live POST failed: {type(exc).__name__}"] += 1
                    return
                if response.status_code == 202:
                    into[response.json()["event_id"]] = time.perf_counter()

            # Warm the live lane first: the first live record after start waits for the live consumer
            # group's join (a few seconds on Tansu), which is startup, not steady-state latency; the
            # probe starts once one warm-up record came through (the wait is printed on its own).
            warm: dict[str, float] = {}
            began = time.perf_counter()
            for w in range(60):
                await one(-(w + 1), warm)  # ids just below the probe's, above the replay's
                await asyncio.sleep(0.5)
                if any(i in arrived for i in warm):
                    break
            run.live_warmup_s = time.perf_counter() - began
            run.live_accepted += len(warm)
            start = time.perf_counter()
            started_utc = datetime.now(UTC).strftime("%H:%M:%S")
            tasks = []
            for i in range(rate * seconds):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, accepted)))
            await asyncio.gather(*tasks)
            run.live_accepted += len(accepted)
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline and not all(i in arrived for i in accepted):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await reader
        await consumer.stop()
    run.live_seen.extend(arrived[i] - t for i, t in accepted.items() if i in arrived)
    conn = await asyncpg.connect(dsn)
    try:
        # Where the server tracks commit times (track_commit_timestamp), each transaction's commit too.
        # 服务器记录提交时间时（track_commit_timestamp），也取各事务的提交时刻。
        commits = await conn.fetchval("SELECT current_setting('track_commit_timestamp') = 'on'")
        committed = "extract(epoch FROM pg_xact_commit_timestamp(xmin))" if commits else "NULL::numeric"
        rows = await conn.fetch(
            f"SELECT event_id::text AS id, extract(epoch FROM received_at) AS at, {committed} AS committed "
            "FROM intake.accepted_events WHERE event_id = ANY($1::uuid[])",
            list(accepted),
        )
        begun = await conn.fetch(  # processed_messages.processed_at = now(): when dispatch's transaction began
            f"SELECT event_id::text AS id, extract(epoch FROM processed_at) AS at, {committed} AS committed "
            "FROM dispatch.processed_messages WHERE consumer = 'dispatch' AND event_id = ANY($1::uuid[])",
            list(accepted),
        )
    finally:
        await conn.close()
    received = {r["id"]: float(r["at"]) for r in rows}
    legs = {
        "intake's transaction commits": {r["id"]: r["committed"] for r in rows},
        "on incident.reported (intake's relay sends it)": stamped_published,
        "dispatch's transaction begins": {r["id"]: r["at"] for r in begun},
        "dispatch's transaction commits": {r["id"]: r["committed"] for r in begun},
    }
    probe_legs: dict[str, float] = {}
    for leg, stamps in legs.items():
        took = [float(stamps[i]) - t for i, t in received.items() if stamps.get(i) is not None]
        run.live_legs.setdefault(leg, []).extend(took)
        if took:
            probe_legs[leg] = pct(took, 0.99)
    live = [stamped_dispatched[i] - t for i, t in received.items() if i in stamped_dispatched]
    run.live.extend(live)
    if live:  # both lists or neither, so a probe's legs print beside its own p50 / p99
        run.live_by_probe.append((statistics.median(live), pct(live, 0.99), len(live)))
        run.live_probe_legs.append((started_utc, probe_legs))
    missing = sum(1 for i in accepted if i not in arrived)
    if missing:
        print(
            f"    live: {missing} of {len(accepted)} accepted live records not dispatched within 60 s "
            "(triage, merged or late)"
        )


#: Rows inserted into cases and facts so far, from the statistics counters: one cheap lookup, where two
#: count(*) a second over millions of rows took a growing share of the machine the bench measures.
#: (Flushed by the backends about once a second; the exact counts are taken once, at the end.)
#: 已插入行数取自统计计数器（廉价）；逐秒 count(*) 会随数据量增大而拖慢被测平台。
_INSERTED = (
    "SELECT coalesce(sum(n_tup_ins) FILTER (WHERE schemaname = 'dispatch' AND relname = 'cases'), 0), "
    "coalesce(sum(n_tup_ins) FILTER (WHERE schemaname = 'metrics' AND relname = 'case_facts'), 0) "
    "FROM pg_stat_user_tables"
)


async def inserted_counts(conn: asyncpg.Connection) -> tuple[int, int]:
    """Cases and metrics facts inserted so far (statistics counters). 已插入的案件与事实行数（统计计数）。"""
    row = await conn.fetchrow(_INSERTED)
    assert row is not None
    return int(row[0]), int(row[1])


async def monitor(
    plat: Platform, dsn: str, run: Run, stop: asyncio.Event, extra: dict[str, subprocess.Popen[bytes]]
) -> None:
    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    try:
        while True:
            cases, facts = await inserted_counts(conn)
            rss = {name: rss_mb(p.pid) for name, p in plat.procs.items()}
            for name, p in extra.items():
                rss[name] = rss_mb(p.pid)
            run.samples.append(Sample(time.perf_counter() - t0, run.accepted, cases, facts, run.actions, rss))
            if stop.is_set():
                return
            await asyncio.sleep(1.0)
    finally:
        await conn.close()


#: What the services stand on, by command line: PostgreSQL (every backend of the server) and the broker.
INFRASTRUCTURE = {"postgres*": "postgres", "tansu": "tansu broker"}


def cpu_all(plat: Platform, extra: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    out = {name: tree_cpu_s(p.pid) for name, p in plat.procs.items()}
    for name, p in extra.items():
        out[name] = tree_cpu_s(p.pid)
    out.update(cpu_by_command(INFRASTRUCTURE))
    return out


@dataclass
class Stage:
    """One stage of a staged replay, run alone on the machine: its span and every process's CPU in it."""

    name: str
    events: int
    seconds: float
    cpu: dict[str, float]


async def run_stages(
    plat: Platform,
    dsn: str,
    conn: asyncpg.Connection,
    run: Run,
    extra: dict[str, subprocess.Popen[bytes]],
    starters: dict[str, Callable[[], None]],
    t0: float,
    *,
    before_metrics: Callable[[], None],
) -> None:
    """A staged replay (``--staged``): intake has taken the whole year (the import's dispatch and
    metrics not yet running); then the import's dispatch alone turns it into cases; then the import's
    metrics alone scores them (while the operator acts on the dispatched cases). Each stage has the
    machine to itself, as the floors do, so its rate and CPU per report compare with theirs.
    分段回放：受理、派遣、绩效依次单独运行，与下限同样独占机器。"""
    marks = [(time.perf_counter(), cpu_all(plat, extra))]
    intake_cpu = {k: v - run.cpu_start.get(k, 0.0) for k, v in marks[0][1].items()}
    run.stages.append(Stage("intake", run.accepted, marks[0][0] - t0, intake_cpu))

    async def until(what: str, done: Callable[[int, int], bool]) -> None:
        while True:
            cases, facts = await inserted_counts(conn)
            if done(cases, facts):
                return
            await asyncio.sleep(0.5)

    accepted = run.accepted
    for key, name, done in (
        ("dispatch-import", "dispatch", lambda cases, _facts: cases >= accepted),
        ("metrics-import", "metrics", lambda cases, facts: facts >= cases),
    ):
        if name == "metrics":
            before_metrics()
        starters[key]()
        await until(name, done)
        now = (time.perf_counter(), cpu_all(plat, extra))
        spent = {k: v - marks[-1][1].get(k, 0.0) for k, v in now[1].items()}
        run.stages.append(Stage(name, accepted, now[0] - marks[-1][0], spent))
        marks.append(now)


async def replay(
    server_url: str,
    events: list[tuple[str, dict[str, Any]]],
    args: argparse.Namespace,
    *,
    label: str,
    dispatchers: int,
    live: bool,
) -> tuple[Run, str, str]:
    """One run; returns the measurements, the routing fingerprint and the floors' text."""
    run = Run()
    staged = bool(args.staged and args.import_processes)
    own = {
        "import_processes": args.import_processes,
        "import_nice": args.import_nice,
        "import_idle": args.import_idle,
        "keep_database": args.keep_database,
        "import_dispatchers": args.import_dispatchers,
        "live_worker": args.live_worker,
        "bulk_broker": args.bulk_broker,
        "deferred": frozenset({"dispatch-import", "metrics-import"}) if staged else frozenset(),
    }
    async with platform(server_url, label, dispatchers=dispatchers, **own) as (plat, dsn, extra, starters):
        stop, acting = asyncio.Event(), asyncio.Event()
        operator = None
        if not staged:  # from the start: the floor's live work includes a dispatcher's actions too
            operator = asyncio.create_task(operate(plat, dsn, run, acting, args.act_share, args.seed))
        if live and args.live_rate > 0 and not staged:  # the live path alone first: its own latency
            alone = Run()
            await live_probe(plat, plat.bootstrap, alone, args.live_rate, args.live_seconds, dsn, first_id=950_000_000)
            run.live_alone, run.live_alone_legs = alone.live, alone.live_legs
            run.live_accepted += alone.live_accepted
        run.cpu_start = cpu_all(plat, extra)
        watcher = asyncio.create_task(monitor(plat, dsn, run, stop, extra))
        t0 = time.perf_counter()
        posting = asyncio.create_task(
            produce(plat, events, run, producers=args.producers, batch=args.batch, lane=args.lane)
        )
        if live and args.live_rate > 0 and not staged:
            # The probes start at 20 % of the replay accepted and, with several, at even steps to 80 %:
            # each its own p99, so one stall (an autovacuum, a checkpoint) shows as one probe's figure.
            # 探测从回放受理 20% 时开始，多次时均匀分布到 80%：每次各有 p99。
            for k in range(args.live_probes):
                share = 0.2 + (0.6 * k / (args.live_probes - 1) if args.live_probes > 1 else 0.0)
                while run.accepted < share * len(events) and not posting.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                first = 900_000_000 + k * 1_000_000
                await live_probe(plat, plat.bootstrap, run, args.live_rate, args.live_seconds, dsn, first_id=first)
        await posting
        posted_s = time.perf_counter() - t0
        conn = await asyncpg.connect(dsn)
        try:
            if staged:  # the operator acts once cases exist: alongside the metrics stage

                def act() -> None:
                    nonlocal operator
                    operator = asyncio.create_task(operate(plat, dsn, run, acting, args.act_share, args.seed))

                await run_stages(plat, dsn, conn, run, extra, starters, t0, before_metrics=act)
            deadline = time.perf_counter() + args.timeout
            cases = facts = 0
            while time.perf_counter() < deadline:
                inserted, stored = await inserted_counts(conn)
                if inserted >= run.accepted + run.live_accepted and stored >= inserted:  # then count exactly
                    cases = await conn.fetchval("SELECT count(*) FROM dispatch.cases")
                    facts = await conn.fetchval("SELECT count(*) FROM metrics.case_facts")
                    if cases >= run.accepted + run.live_accepted and facts >= cases:
                        run.end_to_end_s = time.perf_counter() - t0
                        break
                await asyncio.sleep(1.0)
            print(
                f"  [{label}] exact count: {cases:,} cases for {run.accepted + run.live_accepted:,} accepted "
                f"({run.accepted:,} replayed + {run.live_accepted:,} live), {facts:,} metrics facts"
            )
            acting.set()
            if operator is not None:
                await operator
            while time.perf_counter() < deadline:  # metrics holds every case event: the actions' too
                transitions = await conn.fetchval(  # 立案 (case.reported) is a timeline row, never published
                    "SELECT count(*) FROM dispatch.case_transitions WHERE event_type <> 'case.reported'"
                )
                if await conn.fetchval("SELECT count(*) FROM metrics.case_events") >= transitions:
                    run.with_lifecycle_s = time.perf_counter() - t0
                    break
                await asyncio.sleep(1.0)
            stop.set()
            await watcher
            run.cpu_end = cpu_all(plat, extra)
            fingerprint = await routing_fingerprint(conn, ARTIFACTS / f"{label}-outcomes.tsv")
            floors = ""
            if args.floors:
                try:
                    floors = await measure_floors(
                        conn, plat.bootstrap, dsn, INCIDENT_REPORTED_BULK if args.lane == "bulk" else INCIDENT_REPORTED
                    )
                except (OSError, asyncpg.PostgresError) as exc:  # a full disk must not cost the run's figures
                    print(f"  [{label}] floors not measured: {type(exc).__name__}: {exc}")
        finally:
            await conn.close()
        print(f"  [{label}] posted {len(events):,} reports in {posted_s:.1f} s; accepted {run.accepted:,}")
        for reason, count in run.refused.most_common(5):
            print(f"    not accepted: {count:,} × {reason}")
    return run, fingerprint, floors


#: The routing outcome of a new case (its first such timeline row): what the fingerprint compares.
_OUTCOMES = ("case.dispatched", "case.triage_required", "case.merged", "case.self_handled")


async def routing_fingerprint(conn: asyncpg.Connection, outcomes_path: Path | None = None) -> str:
    """sha256 over every replayed report's routing outcome: township, unit, matter and the state its routing
    left it in, per group of reports merged together (并案组). Which report of a group survives and which
    are merged into it depends on the order partitions happen to be applied in (two reports of one spot in
    two partitions: whichever comes first), so a group is compared as its members and the multiset of
    their outcomes. Times are excluded (dispatch stamps its own clock), and so are the live probe's
    records (only the first run has them) and what the operator did later (which cases it reaches depends
    on speed). 路由结果指纹：按并案组比较（组内谁为主件取决于分区处理顺序），不含时间、实时探针与后续办理。"""
    query = (
        "WITH outcome AS (SELECT DISTINCT ON (case_id) case_id, state, event_type FROM dispatch.case_transitions "
        "WHERE event_type = ANY($1::text[]) ORDER BY case_id, version) "
        "SELECT c.id, c.incident_id, c.source_id, c.township, c.unit, c.matter, o.state, o.event_type, c.merged_into "
        "FROM dispatch.cases c LEFT JOIN outcome o ON o.case_id = c.id "
        "WHERE c.source_id < 'RP800000000'"
    )
    incident_of: dict[uuid.UUID, str] = {}
    outcome: dict[str, tuple[str, ...]] = {}
    merged: list[tuple[str, uuid.UUID]] = []
    detail: dict[str, str] = {}
    async with conn.transaction():
        async for row in conn.cursor(query, list(_OUTCOMES), prefetch=20_000):
            incident = str(row["incident_id"])
            incident_of[row["id"]] = incident
            outcome[incident] = tuple(str(row[k]) for k in ("township", "unit", "matter", "state"))
            detail[incident] = f"{row['source_id']}\t{row['event_type']}"
            if row["merged_into"] is not None:
                merged.append((incident, row["merged_into"]))
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for incident, into in merged:
        a, b = root(incident), root(incident_of.get(into, str(into)))
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for incident in outcome:
        groups.setdefault(root(incident), []).append(incident)
    digest = hashlib.sha256()
    lines: list[str] = []
    for key in sorted(groups):
        members = sorted(groups[key])
        digest.update(orjson.dumps([members, sorted(outcome[m] for m in members)]))
        lines.extend(f"{m}\t{key}\t" + "\t".join(outcome[m]) + f"\t{detail[m]}\n" for m in members)
    if outcomes_path is not None:  # incident, its group, township, unit, matter, state: to diff two runs
        await asyncio.to_thread(outcomes_path.write_text, "".join(lines))
    return f"{digest.hexdigest()[:16]} over {len(outcome):,} replayed reports ({len(merged):,} merged)"


# --------------------------------------------------------------------------- report


def report(label: str, run: Run, n: int, floors: dict[str, float] | None) -> float:
    s = run.samples
    rates = {
        "intake accepted": steady_rate(s, "accepted"),
        "dispatch cases": steady_rate(s, "cases"),
        "metrics facts": steady_rate(s, "facts"),
    }
    print(f"\n[{label}] stage rates (steady, 10 %→90 % of each stage's final count):")
    for name, rate in rates.items():
        print(f"  {name:<17} {rate:>9,.0f} /s")
    print(
        f"  lifecycle actions {steady_rate(s, 'actions'):>9,.0f} /s"
        f"  ({run.actions:,} applied, {run.action_errors} refused)"
    )
    if run.refusals:
        print("    refused: " + ", ".join(f"{why} × {n}" for why, n in run.refusals.most_common()))
    if floors:
        print(
            f"  floor (a) raw aiokafka consume of the replay's topic: {floors['consume']:,.0f} /s"
            f"  → dispatch / (a) = {rates['dispatch cases'] / floors['consume']:.3f}"
        )
        print(
            f"  floor (b) raw asyncpg COPY of dispatch's rows ({floors['cases']:,} cases, {floors['timeline']:,} "
            f"timeline, {floors['outbox']:,} outbox): {floors['insert']:,.0f} cases/s"
            f"  → dispatch / (b) = {rates['dispatch cases'] / floors['insert']:.3f}  (aim ≥ 0.5)"
        )
    print("  CPU per event (user+system, whole run / reports; postgres*: the whole server):")
    spent = {name: run.cpu_end[name] - run.cpu_start.get(name, 0.0) for name in run.cpu_end}
    for name, used in spent.items():
        print(f"    {name:<11} {used / max(n, 1) * 1e6:>8.0f} µs  ({used:.1f} s)")
    cores = os.cpu_count() or 1
    every = sum(spent.values()) / max(n, 1)
    under = sum(spent[k] for k in INFRASTRUCTURE) / max(n, 1)
    if every and under:
        print(
            f"    all of these {every * 1e6:,.0f} µs → at most {cores / every:,.0f} reports/s on {cores} cores"
            f" ({TARGET_EVENTS * every / cores / 3600:.1f} h for {TARGET_EVENTS / 1e6:.0f} M); PostgreSQL and the"
            f" broker alone {under * 1e6:,.0f} µs → at most {cores / under:,.0f} /s"
            f" ({TARGET_EVENTS * under / cores / 3600:.1f} h)"
        )
    if run.stages:
        print("  staged: each stage alone on the machine (span from the previous stage's end; CPU per report in it):")
        for stage in run.stages:
            busy = {k: v for k, v in stage.cpu.items() if v / max(stage.events, 1) >= 5e-6}
            total = sum(stage.cpu.values()) / max(stage.events, 1)
            print(
                f"    {stage.name:<9} {stage.seconds:>7,.0f} s = {stage.events / max(stage.seconds, 1e-9):>7,.0f} /s;"
                f" CPU {total * 1e6:,.0f} µs: "
                + ", ".join(f"{k} {v / max(stage.events, 1) * 1e6:,.0f}" for k, v in sorted(busy.items()))
            )
        staged_s = sum(stage.seconds for stage in run.stages)
        print(
            f"    stages in sequence: {staged_s:,.0f} s = {run.stages[0].events / staged_s:,.0f} reports/s"
            f" → {TARGET_EVENTS * staged_s / max(run.stages[0].events, 1) / 3600:.1f} h for {TARGET_EVENTS / 1e6:.0f} M"
        )
    print("  resident memory, MB (start · 25 % · 50 % · 75 % · end · peak):")
    for name in dict.fromkeys(name for x in s for name in x.rss):  # processes started late (staged) too
        series = [x.rss.get(name, 0.0) for x in s]
        q = [series[min(len(series) - 1, int(f * (len(series) - 1)))] for f in (0, 0.25, 0.5, 0.75, 1.0)]
        print(f"    {name:<11} " + " · ".join(f"{v:.0f}" for v in q) + f" · {max(series):.0f}")
    if run.end_to_end_s:
        whole = (run.accepted + run.live_accepted) / run.end_to_end_s
        print(
            f"  end to end (first batch posted → every case and metrics fact stored): {run.end_to_end_s:,.0f} s"
            f" = {whole:,.0f} reports/s → {TARGET_EVENTS / whole / 3600:.1f} h for {TARGET_EVENTS / 1e6:.0f} M"
        )
    if run.with_lifecycle_s:
        whole = (run.accepted + run.live_accepted) / run.with_lifecycle_s
        print(
            f"  end to end with the lifecycle (and the operator's {run.actions:,} actions applied, every case event "
            f"in metrics): {run.with_lifecycle_s:,.0f} s = {whole:,.0f} reports/s → "
            f"{TARGET_EVENTS / whole / 3600:.1f} h for {TARGET_EVENTS / 1e6:.0f} M"
        )
    slowest = min(r for r in rates.values() if r > 0) if any(rates.values()) else 0.0
    if slowest:
        print(
            f"  projected for {TARGET_EVENTS / 1e6:.0f} M events at the slowest stage:"
            f" {TARGET_EVENTS / slowest / 3600:.1f} h"
            "  (aim < 2 h)"
        )
    if run.live:
        print(
            f"  live received → case.dispatched during the replay (the platform's stamps): p50 "
            f"{statistics.median(run.live) * 1000:.0f} ms, p99 {pct(run.live, 0.99) * 1000:.0f} ms over "
            f"{len(run.live)}  (aim p99 < 250 ms)"
        )
    if len(run.live_by_probe) > 1:
        print(
            "    each probe's p50 / p99 (ms), in replay order: "
            + " · ".join(f"{p50 * 1000:.0f} / {p99 * 1000:.0f}" for p50, p99, _ in run.live_by_probe)
        )
        for started, probe_legs in run.live_probe_legs:
            print(
                f"      probe from {started} UTC, p99 by leg (ms): "
                + " · ".join(f"{leg.split(' (')[0]} {took * 1000:.0f}" for leg, took in probe_legs.items())
            )
    if run.live_warmup_s:
        print(f"    (before the probe: the live lane's first record came through after {run.live_warmup_s:.1f} s)")
    for leg, took in run.live_legs.items():
        if took:
            print(
                f"    of which received → {leg}: p50 {statistics.median(took) * 1000:.0f} ms, "
                f"p99 {pct(took, 0.99) * 1000:.0f} ms"
            )
    if run.live_seen:
        print(
            f"    as the bench saw it (its 202 → its read; includes the busy bench's own delays): p50 "
            f"{statistics.median(run.live_seen) * 1000:.0f} ms, p99 {pct(run.live_seen, 0.99) * 1000:.0f} ms"
        )
    if run.live_alone:
        legs = ", ".join(
            f"{leg.split(' (')[0]} {pct(took, 0.99) * 1000:.0f}" for leg, took in run.live_alone_legs.items() if took
        )
        print(
            f"    floor, the same probe before the replay (no import running, the operator acting): p50 "
            f"{statistics.median(run.live_alone) * 1000:.0f} ms, p99 {pct(run.live_alone, 0.99) * 1000:.0f} ms"
            f" over {len(run.live_alone)}; p99 by leg: {legs}"
        )
    return rates["dispatch cases"]


async def main_async(args: argparse.Namespace) -> None:
    async with postgres_server() as server_url:
        t = time.perf_counter()
        events = synthetic_year(args.events, args.seed)
        # Millions of report dicts live for the whole run: keep them out of the collector's passes (a
        # full pass over them stalls the bench's loop for seconds). 大量常驻对象不参与垃圾回收扫描。
        gc.collect()
        gc.freeze()
        print(
            f"replay bench: {len(events):,} reports of a synthetic year (the 366 days before today), demo county "
            f"(generated in {time.perf_counter() - t:.1f} s); {args.producers} producers × batches of {args.batch}; "
            f"operator acts on {args.act_share:.0%} of dispatched cases"
        )
        print(f"  {await server_settings(server_url)}")
        run, fingerprint, floors_text = await replay(
            server_url, events, args, label="replay-1", dispatchers=1, live=True
        )
        floors = json.loads(floors_text) if floors_text else None
        one = report("one dispatch process", run, len(events), floors)
        print(f"  routing fingerprint: {fingerprint}")
        if args.two_dispatch:
            # Scale-out the plain way: the platform's dispatch processes take both lanes (no import processes).
            quiet = argparse.Namespace(**{**vars(args), "floors": False, "import_processes": False})
            prefix = events[: args.two_dispatch_events] if args.two_dispatch_events else events
            if len(prefix) < len(events):  # both sides on the same first reports, each on a fresh platform
                print(f"\n(scale-out on the first {len(prefix):,} reports: one dispatch process, then two)")
                run1, fingerprint, _ = await replay(
                    server_url, prefix, quiet, label="replay-1p", dispatchers=1, live=False
                )
                one = report("one dispatch process (prefix)", run1, len(prefix), None)
                print(f"  routing fingerprint: {fingerprint}")
            run2, fingerprint2, _ = await replay(server_url, prefix, quiet, label="replay-2", dispatchers=2, live=False)
            two = report("two dispatch processes, one consumer group", run2, len(prefix), None)
            print(
                f"  routing fingerprint: {fingerprint2} — {'identical' if fingerprint2 == fingerprint else 'DIFFERENT'}"
            )
            if fingerprint2 != fingerprint:
                first = ARTIFACTS / f"{'replay-1p' if len(prefix) < len(events) else 'replay-1'}-outcomes.tsv"
                print(f"  {compare_outcomes(first, ARTIFACTS / 'replay-2-outcomes.tsv')}")
            print(f"\ntwo dispatch processes / one: {two / one:.2f}×" if one else "")


def compare_outcomes(first: Path, second: Path) -> str:
    """Where two runs' outcomes differ, by merge group (并案组): reports outside any group, and groups
    whose members or outcomes differ — a near-duplicate pair whose reports sit in different partitions
    keeps whichever was applied first, so its survivor (and the survivor's own unit) follows arrival
    order. 两次运行结果按并案组比较：跨分区的近似重复，先处理者为主件，随到达顺序而定。"""

    def load(path: Path) -> dict[str, list[tuple[str, ...]]]:
        groups: dict[str, list[tuple[str, ...]]] = {}
        with path.open() as lines:
            for line in lines:
                incident, group, *rest = line.rstrip("\n").split("\t")
                groups.setdefault(group, []).append((incident, *rest[:4]))
        return groups

    a, b = load(first), load(second)
    members = {m[0]: k for g in (a, b) for k, ms in g.items() for m in ms}

    def shape(members: list[tuple[str, ...]]) -> tuple[list[str], list[tuple[str, ...]]]:
        return sorted(m[0] for m in members), sorted(m[1:] for m in members)  # who, and what became of them

    differing = {k for k in a.keys() | b.keys() if shape(a.get(k, [])) != shape(b.get(k, []))}
    grouped = {m[0] for g in (a, b) for ms in g.values() if len(ms) > 1 for m in ms}  # merged in either run
    apart = sum(1 for k in differing if not any(m[0] in grouped for m in a.get(k, []) + b.get(k, [])))
    return (
        f"outcomes compared by merge group: {len(a):,} groups over {len(members):,} reports; {len(differing):,} "
        f"differ: {len(differing) - apart:,} with a report merged in either run (near-duplicates whose survivor "
        f"follows arrival order across partitions), {apart:,} never merged (a routing difference)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--act-share", type=float, default=0.2)
    parser.add_argument("--live-rate", type=int, default=100)
    parser.add_argument("--live-seconds", type=int, default=30)
    parser.add_argument(
        "--live-probes", type=int, default=1, help="live probes during the replay, from 20 %% to 80 %% of it"
    )
    parser.add_argument("--two-dispatch", action="store_true")
    parser.add_argument(
        "--two-dispatch-events",
        type=int,
        default=0,
        help="run the scale-out comparison (one process, then two) on the first N reports only (0: all)",
    )
    parser.add_argument(
        "--import-processes",
        action="store_true",
        help="run the import in processes of its own (an intake, a bulk-lane dispatch and metrics) at --import-nice",
    )
    parser.add_argument(
        "--import-nice",
        type=int,
        default=10,
        help="CPU priority of the import's processes and their database backends (nice, 0-19)",
    )
    parser.add_argument(
        "--import-idle",
        action="store_true",
        help="run the import's processes and their database backends under SCHED_IDLE (chrt --idle 0): "
        "a core only when no live process wants it",
    )
    parser.add_argument(
        "--bulk-broker",
        action="store_true",
        help="with --import-processes: the import's processes on a broker of their own, at their CPU priority",
    )
    parser.add_argument(
        "--lane",
        choices=("bulk", "live"),
        default="bulk",
        help="intake lane of the replay: bulk (history import, after live reports) or live (as one live producer)",
    )
    parser.add_argument(
        "--import-dispatchers",
        type=int,
        default=1,
        help="with --import-processes: dispatch processes of the import, in one consumer group (scale-out)",
    )
    parser.add_argument(
        "--staged",
        action="store_true",
        help="with --import-processes: intake takes the whole year first, then the import's dispatch runs alone, "
        "then its metrics alone (each stage's rate and CPU beside the floors, which also run alone); no live probe",
    )
    parser.add_argument(
        "--live-worker",
        action="store_true",
        help="the platform's dispatch serves the API alone (DISPATCH_INCIDENT_LANES=none) and a second dispatch "
        "process (dispatch-live) makes the live reports into cases: staff actions never queue ahead of a report",
    )
    parser.add_argument("--no-floors", dest="floors", action="store_false")
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="keep each run's replay_* database (printed) for inspection or bench/replay_floors.py",
    )
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds to wait for dispatch and metrics")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if args.bulk_broker and (args.floors or not args.import_processes):
        parser.error("--bulk-broker needs --import-processes and --no-floors (the floors read the platform's broker)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
