"""``make run``: the whole platform on the embedded default, on this machine, no Docker.

* PostgreSQL: ``DATABASE_URL`` when set, else an embedded PostgreSQL 16 (``pgserver``)
  with its data under ``$ZHPT_DATA_DIR/pg`` (default ``./var/pg``), so a restart keeps it.
* Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a Tansu broker on 127.0.0.1:9092
  (memory only: the outbox tables are the durable record, and relays republish).
* Runs every service's migrations, creates the topics, starts intake 8001, dispatch 8002,
  grid 8003, metrics 8004, loads the demo county into grid, prints where everything
  listens and the dev credentials, and stops it all cleanly on Ctrl-C.
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
from shared.kafka import ensure_topics  # noqa: E402
from shared.migrations import upgrade_all  # noqa: E402

SERVICES = {"intake": 8001, "dispatch": 8002, "grid": 8003, "metrics": 8004}
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
            "http://127.0.0.1:8003/v1/jurisdiction",
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


def banner() -> None:
    tokens = "\n".join(
        f"    {t:<24} {v['role']:<15} township {v['township']}" + (f", unit {v['unit']}" if v.get("unit") else "")
        for t, v in DEV_STAFF_TOKENS.items()
    )
    if os.environ.get("STAFF_TOKENS", "").strip():
        tokens = "    (STAFF_TOKENS from the environment)"
    say(f"""
综合指挥平台 is running (Ctrl-C stops everything):
  intake    http://127.0.0.1:8001   (API docs: /docs)
  dispatch  http://127.0.0.1:8002   (调度台 dashboard: http://127.0.0.1:8002/dashboard/)
  grid      http://127.0.0.1:8003
  metrics   http://127.0.0.1:8004
  every service: /healthz /readyz /metrics

Producer keys (header X-API-Key): dev-12345, dev-cityops, dev-gridworker
Staff tokens (header Authorization: Bearer <token>):
{tokens}

Try:
  curl -s -X POST http://127.0.0.1:8001/v1/events/12345 -H 'X-API-Key: dev-12345' \\
       -H 'Content-Type: application/json' -d @deploy/demo/examples/12345.json
Logs: {DATA_DIR}/*.log
""")


def main() -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    database_url, pg = start_database()
    bootstrap, broker = start_broker()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int | None = None, frame: FrameType | None = None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        say("\nstopping…")
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                say(f"  {name} did not stop in 20 s: killing")
                proc.kill()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        say("stopped.")

    signal.signal(signal.SIGTERM, stop)
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
        }
        procs.update(start_services(env))
        wait_healthy(procs)
        load_demo_county(token)
        banner()
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None and not stopping:
                    say(f"! {name} exited with {proc.returncode}; see {DATA_DIR / (name + '.log')}")
                    stop()
                    sys.exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()


if __name__ == "__main__":
    main()
