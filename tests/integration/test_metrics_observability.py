"""Prometheus rules and the Grafana dashboard of the metrics service.

* ``promtool check rules`` accepts ``deploy/prometheus/rules.yml`` and ``promtool test rules``
  proves the new alerts fire (overdue rising, consumer lag, DLQ) and the 4 original alerts
  are still there.
* Every series the dashboard queries is one the service exposes (or a recording rule).

promtool is the real binary (``apt-get download prometheus`` unpacked at /tmp/prom-deb, or on
PATH); without it the promtool tests are skipped, saying how to get it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "metrics-dashboard.json"


def promtool() -> str | None:
    for candidate in (shutil.which("promtool"), "/tmp/prom-deb/usr/bin/promtool"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


_IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
# Locally a missing promtool skips with how to get it; in CI (.ci/run installs it) it must not skip.
needs_promtool = pytest.mark.skipif(
    promtool() is None and not _IN_CI,
    reason="promtool not installed (apt-get download prometheus && dpkg-deb -x prometheus_*.deb /tmp/prom-deb)",
)


def _alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def _render(template: str, labels: dict[str, str], value: str) -> str:
    """The few template forms the rules use: ``{{ $labels.x }}`` and ``{{ $value }}``."""
    out = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    return out.replace("{{ $value }}", value)


def _expect(alert: str, labels: dict[str, str], value: str) -> dict[str, Any]:
    rule = _alert_rules()[alert]
    return {
        "exp_labels": {**rule["labels"], **labels},
        "exp_annotations": {k: _render(v, labels, value) for k, v in rule["annotations"].items()},
    }


def rule_tests() -> dict[str, Any]:
    """``promtool test rules`` input: the new alerts fire on made-up series, and only then."""
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # township T1: one more overdue case every minute; T2 steady
                    {
                        "series": 'metrics_overdue_cases{job="metrics", township="T1", unit_kind="enforcement_team"}',
                        "values": "0+1x300",
                    },
                    {
                        "series": 'metrics_overdue_cases{job="metrics", township="T2", unit_kind="township_office"}',
                        "values": "3x300",
                    },
                    {
                        "series": 'consumer_lag{job="metrics", topic="case.events", partition="0"}',
                        "values": "0x10 2000x60",
                    },
                    {
                        "series": 'consumer_events_total{job="metrics", topic="case.events", outcome="applied"}',
                        "values": "0+10x10 100x60",
                    },
                    {"series": 'dlq_messages_total{job="metrics", topic="case.events"}', "values": "0x30 1x40"},
                ],
                "promql_expr_test": [
                    {
                        "expr": "township:metrics_overdue_cases:sum",
                        "eval_time": "60m",
                        "exp_samples": [
                            {"labels": 'township:metrics_overdue_cases:sum{township="T1"}', "value": 60},
                            {"labels": 'township:metrics_overdue_cases:sum{township="T2"}', "value": 3},
                        ],
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "170m",
                        "alertname": "OverdueCasesRising",
                        "exp_alerts": [_expect("OverdueCasesRising", {"township": "T1"}, "120")],
                    },
                    {"eval_time": "20m", "alertname": "OverdueCasesRising", "exp_alerts": []},
                    {
                        "eval_time": "40m",
                        "alertname": "CaseEventsConsumerLagging",
                        "exp_alerts": [_expect("CaseEventsConsumerLagging", {"job": "metrics"}, "2000")],
                    },
                    {
                        "eval_time": "45m",
                        "alertname": "CaseEventsDeadLettered",
                        "exp_alerts": [
                            _expect("CaseEventsDeadLettered", {"job": "metrics", "topic": "case.events"}, "1")
                        ],
                    },
                    {"eval_time": "5m", "alertname": "CaseEventsDeadLettered", "exp_alerts": []},
                ],
            }
        ],
    }


@needs_promtool
def test_promtool_check_rules() -> None:
    tool = promtool()
    assert tool is not None
    done = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    tool = promtool()
    assert tool is not None
    spec = tmp_path / "rules_test.yml"
    spec.write_text(yaml.safe_dump(rule_tests(), allow_unicode=True, sort_keys=False), encoding="utf-8")
    done = subprocess.run([tool, "test", "rules", str(spec)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_original_alerts_are_kept_and_labels_bounded() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert {"ServiceDown", "OutboxBacklogGrowing", "DLQNotEmpty", "ConsumerLagHigh"} <= alerts
    assert {"OverdueCasesRising", "CaseEventsConsumerLagging", "CaseEventsDeadLettered"} <= alerts
    exprs = " ".join(r["expr"] for g in groups for r in g["rules"])
    assert "case_id" not in exprs and "unit=" not in exprs


def _exposed_names() -> set[str]:
    app = create_app(
        MetricsSettings(
            database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", log_json=False, dev_credentials=True
        )
    )
    registry = app.state.runtime.registry
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        for suffix in ("_total", "_bucket", "_count", "_sum", "_created"):
            names.add(family.name + suffix)
    return names


def test_dashboard_queries_exposed_series_only() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    known = _exposed_names() | recorded
    functions = {
        "sum", "by", "max", "min", "rate", "increase", "delta", "histogram_quantile", "clamp_min", "time", "le",
        "source", "township", "unit_kind", "topic", "partition", "outcome", "type", "route", "status", "job",
    }  # fmt: skip
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10 and dashboard["uid"] == "zhpt-metrics"
    for panel in panels:
        for target in panel["targets"]:
            expr = re.sub(r'"[^"]*"|\$\w+|\[[^\]]*\]|\{\{\w+\}\}', "", target["expr"])
            for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
                assert name in functions or name in known, f"{panel['title']}: unknown series {name}"
