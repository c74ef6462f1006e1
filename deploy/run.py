"""``make run``: the whole platform on the embedded default, on this machine, no Docker.

* PostgreSQL: ``DATABASE_URL`` when set, else an embedded PostgreSQL 16 (``pgserver``)
  with its data under ``$ZHPT_DATA_DIR/pg`` (default ``./var/pg``), so a restart keeps it.
* Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a Tansu broker on 127.0.0.1:9092
  (memory only: the outbox tables are the durable record, and relays republish).
* Runs every service's migrations, creates the topics, starts intake 8001, dispatch 8002,
  grid 8003, metrics 8004 (``ZHPT_PORT_BASE`` moves all four), loads the demo county into
  grid, prints where everything listens and the dev credentials.
* Owns its embedded parts: each runs in a session of its own, so Ctrl-C reaches only this
  launcher, which stops them in order — the services first (they finish what they hold and
  commit), then the broker, then PostgreSQL. An embedded broker that dies is started again
  on the same port; the services' outboxes republish whatever it forgot.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.auth import DEV_SERVICE_TOKEN, DEV_STAFF_TOKENS  # noqa: E402
from shared.embedded import EmbeddedPostgres, TansuBroker, port_open  # noqa: E402
from shared.messaging.topics import ensure_topics  # noqa: E402
from shared.migrations import upgrade_all  # noqa: E402

PORT_BASE = int(os.environ.get("ZHPT_PORT_BASE", "8001"))
SERVICES = {name: PORT_BASE + i for i, name in enumerate(("intake", "dispatch", "grid", "metrics"))}
DATA_DIR = Path(os.environ.get("ZHPT_DATA_DIR", ROOT / "var")).resolve()


def say(text: str) -> None:
    print(text, flush=True)


def start_database() -> tuple[str, EmbeddedPostgres | None]:
    url = os.environ.get("DATABASE_URL")
    if url:
        say(f"• PostgreSQL: {url.split('@')[-1]} (DATABASE_URL)")
        return url, None
    pg = EmbeddedPostgres(DATA_DIR / "pg")
    url = pg.start()
    say(f"• PostgreSQL 16 (embedded, pgserver): data in {DATA_DIR / 'pg'}")
    return url, pg


def start_broker() -> tuple[str, TansuBroker | None]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        say(f"• Kafka: {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
        return bootstrap, None
    port = int(os.environ.get("TANSU_PORT", "9092"))
    if port_open("127.0.0.1", port):
        sys.exit(f"port {port} is taken: stop what listens there or set TANSU_PORT / KAFKA_BOOTSTRAP_SERVERS")
    broker = TansuBroker(port=port, log_path=DATA_DIR / "tansu.log")
    broker.start()
    say(f"• Kafka-compatible broker (Tansu, memory only) on {broker.bootstrap}")
    return broker.bootstrap, broker


def start_services(env: dict[str, str]) -> dict[str, subprocess.Popen[bytes]]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, port in SERVICES.items():
        if port_open("127.0.0.1", port):
            raise SystemExit(f"port {port} ({name}) is taken: stop what listens there first")
        log = open(DATA_DIR / f"{name}.log", "ab")
        procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{name}.app:create_app",
                "--host",
                os.environ.get("ZHPT_HOST", "127.0.0.1"),
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops them in order
        )
    return procs


def wait_healthy(procs: dict[str, subprocess.Popen[bytes]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    pending = dict(SERVICES)
    while pending:
        for name, port in list(pending.items()):
            if procs[name].poll() is not None:
                raise SystemExit(f"{name} exited ({procs[name].returncode}); see {DATA_DIR / (name + '.log')}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    pending.pop(name)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise SystemExit(f"not healthy after {timeout_s}s: {', '.join(pending)}; see {DATA_DIR}/*.log")
        time.sleep(0.2)


def service_token() -> str:
    """The one service credential: ``SERVICE_TOKEN`` (required with custom ``STAFF_TOKENS``), else the dev admin."""
    token = os.environ.get("SERVICE_TOKEN", "").strip()
    if token:
        return token
    if os.environ.get("STAFF_TOKENS", "").strip():
        sys.exit("STAFF_TOKENS is set but SERVICE_TOKEN is not: set SERVICE_TOKEN to one of its admin tokens")
    return DEV_SERVICE_TOKEN


def load_demo_county(token: str) -> None:
    bundle = (ROOT / "deploy" / "demo" / "county.json").read_bytes()
    try:
        response = httpx.put(
            f"http://127.0.0.1:{SERVICES['grid']}/v1/jurisdiction",
            content=bundle,
            timeout=30,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    except httpx.HTTPError as exc:
        say(f"! demo county not loaded: {exc}")
        return
    if response.status_code in (401, 403):
        raise SystemExit(
            f"grid refused SERVICE_TOKEN (HTTP {response.status_code}): it must be an admin token of STAFF_TOKENS"
        )
    if response.status_code < 300:
        body = response.json()
        say(
            f"• demo county 青溪县 (330127) loaded into grid: version {body.get('version')}"
            f"{' (unchanged)' if body.get('changed') is False else ''}"
        )
    else:
        say(f"! demo county not loaded: HTTP {response.status_code} {response.text[:300]}")


def load_demo_forces(token: str, timeout_s: float = 60.0) -> None:
    """The demo county's people, teams and rosters (deploy/demo/forces.json) into dispatch, once dispatch
    has the county's jurisdiction (it answers 503/422 until then). 载入示范县人员、编组与排班。"""
    doc = (ROOT / "deploy" / "demo" / "forces.json").read_bytes()
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.put(
                f"http://127.0.0.1:{SERVICES['dispatch']}/v1/forces/330127",
                content=doc,
                timeout=30,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            last = str(exc)
        else:
            if response.status_code < 300:
                body = response.json()
                say(f"• demo forces loaded into dispatch: {body['members']} members, {body['shifts']} shifts")
                return
            last = f"HTTP {response.status_code} {response.text[:200]}"
        time.sleep(1.0)
    say(f"! demo forces not loaded: {last}")


def banner() -> None:
    tokens = "\n".join(
        f"    {t:<24} {v['role']:<15} township {v['township']}"
        + (f", unit {v['unit']}" if v.get("unit") else "")
        + (f", member {v['member']}" if v.get("member") else "")
        for t, v in DEV_STAFF_TOKENS.items()
    )
    if os.environ.get("STAFF_TOKENS", "").strip():
        tokens = "    (STAFF_TOKENS from the environment)"
    intake, dispatch, grid, metrics = (SERVICES[n] for n in ("intake", "dispatch", "grid", "metrics"))
    say(f"""
综合指挥平台 is running (Ctrl-C stops everything):
  intake    http://127.0.0.1:{intake}   (API docs: /docs)
  dispatch  http://127.0.0.1:{dispatch}   (调度台 dashboard: http://127.0.0.1:{dispatch}/dashboard/)
  grid      http://127.0.0.1:{grid}
  metrics   http://127.0.0.1:{metrics}
  every service: /healthz /readyz /metrics

Producer keys (header X-API-Key): dev-12345, dev-cityops, dev-gridworker, dev-approval, dev-alarm
Staff tokens (header Authorization: Bearer <token>):
{tokens}

Try:
  curl -s -X POST http://127.0.0.1:{intake}/v1/events/12345 -H 'X-API-Key: dev-12345' \\
       -H 'Content-Type: application/json' -d @deploy/demo/examples/12345.json
Logs: {DATA_DIR}/*.log
""")


def stop_all(
    procs: dict[str, subprocess.Popen[bytes]], broker: TansuBroker | None, pg: EmbeddedPostgres | None
) -> None:
    """Services first (each drains its consumers, commits, stops its relay), then the broker, then
    PostgreSQL. 先停服务（排空并提交），再停代理，最后停数据库。"""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            say(f"  {name} did not stop in 30 s: killing (its outbox and offsets keep what it held)")
            proc.kill()
            proc.wait(5)
    if broker is not None:
        broker.stop()
    if pg is not None:
        pg.stop()


def supervise(procs: dict[str, subprocess.Popen[bytes]], broker: TansuBroker | None) -> None:
    """Until Ctrl-C: restart an embedded broker that died; a service that exits stops the platform."""
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"! {name} exited with {proc.returncode}; see {DATA_DIR / (name + '.log')}")
        if broker is not None and not broker.running:
            say(f"! the embedded broker exited; starting it again on {broker.bootstrap} (outboxes republish)")
            try:
                broker.start()
            except (RuntimeError, TimeoutError, OSError) as exc:
                say(f"  broker did not start yet ({exc}); trying again")
        time.sleep(0.5)


def main() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    database_url, pg = start_database()
    bootstrap, broker = start_broker()
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    code: int | str | None = 0
    try:
        say("• migrating schemas intake, grid, dispatch, metrics")
        upgrade_all(database_url)
        asyncio.run(ensure_topics(bootstrap))
        say("• topics ready")
        token = service_token()
        env = {
            **os.environ,
            # Dev credentials where STAFF_TOKENS / INTAKE_API_KEYS are empty: the launcher asks, production never does.
            "ZHPT_DEV_CREDENTIALS": "true",
            "SERVICE_TOKEN": token,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "LOG_JSON": os.environ.get("LOG_JSON", "true"),
            "DISPATCH_GRID_URL": f"http://127.0.0.1:{SERVICES['grid']}",
            "METRICS_GRID_URL": f"http://127.0.0.1:{SERVICES['grid']}",
            "DISPATCH_METRICS_URL": f"http://127.0.0.1:{SERVICES['metrics']}",
        }
        procs.update(start_services(env))
        wait_healthy(procs)
        load_demo_county(token)
        load_demo_forces(token)
        banner()
        supervise(procs, broker)
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        code = exc.code
    finally:
        # A second Ctrl-C must not cut the orderly stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("\nstopping… (services drain and commit, then the broker, then PostgreSQL)")
        stop_all(procs, broker, pg)
        say("stopped.")
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
