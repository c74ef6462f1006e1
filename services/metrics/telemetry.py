"""Domain metrics on ``/metrics`` 领域监控指标 (besides the platform's HTTP/consumer/DLQ figures).

* ``metrics_open_cases{township, unit_kind}`` — 在办案件 (gauge, refreshed before each scrape);
* ``metrics_overdue_cases{township, unit_kind}`` — 超期在办案件 (gauge);
* ``metrics_handling_working_hours{source}`` / ``metrics_handling_natural_hours{source}`` —
  处置时长 histograms, observed when a case gets its 办结 (after the transaction commits: the
  consumer registers the observation on its unit of work, :meth:`shared.db.UnitOfWork.after_commit`);
* ``metrics_case_events_total{type}`` — case events folded into facts;
* ``metrics_score_revisions_total`` — revisions of signed-off periods.

Labels stay bounded: township codes (capped, the rest ``other``), the four unit kinds,
three sources and the event types of the contract — never a case id or free text.
标签取值有界：乡镇编码（有上限）、单位类型、来源、事件类型；绝不用案件 id 或自由文本。
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics.queries import gauge_counts
from shared.events import CASE_EVENT_TYPES
from shared.vocabulary import Source, UnitKind

__all__ = ["HOUR_BUCKETS", "MetricsTelemetry"]

#: Handling-time buckets in hours 处置时长分桶（小时）: half an hour … a month.
HOUR_BUCKETS: Final = (0.5, 1.0, 2.0, 4.0, 7.5, 15.0, 24.0, 37.5, 48.0, 75.0, 120.0, 240.0, 720.0)
_SOURCES: Final = frozenset(get_args(Source))
_KINDS: Final = frozenset(get_args(UnitKind))
_TYPES: Final = frozenset(CASE_EVENT_TYPES)


class MetricsTelemetry:
    """The metrics service's own Prometheus series, in the app's registry. 本服务的监控指标。"""

    def __init__(self, registry: CollectorRegistry, *, max_townships: int = 200) -> None:
        self.max_townships = max_townships
        self.open_cases = Gauge(
            "metrics_open_cases",
            "Open (dispatched, not closed) cases 在办案件",
            ["township", "unit_kind"],
            registry=registry,
        )
        self.overdue_cases = Gauge(
            "metrics_overdue_cases",
            "Open cases past their deadline in force 超期在办案件",
            ["township", "unit_kind"],
            registry=registry,
        )
        self.handling_working = Histogram(
            "metrics_handling_working_hours",
            "处置时长 dispatched → resolved, working hours 工作时",
            ["source"],
            buckets=HOUR_BUCKETS,
            registry=registry,
        )
        self.handling_natural = Histogram(
            "metrics_handling_natural_hours",
            "处置时长 dispatched → resolved, natural hours 自然时",
            ["source"],
            buckets=HOUR_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "metrics_case_events_total", "Case events folded into facts 已归约的案件事件", ["type"], registry=registry
        )
        self.revisions = Counter(
            "metrics_score_revisions_total",
            "Revisions recorded for signed-off periods 已签发周期的修订",
            registry=registry,
        )
        self.gauges_refreshed = Gauge(
            "metrics_gauges_refreshed_timestamp_seconds",
            "When the case gauges were last refreshed from the database",
            registry=registry,
        )

    # -- labels
    @staticmethod
    def source_label(source: Any) -> str:
        return source if source in _SOURCES else "unknown"

    @staticmethod
    def kind_label(kind: Any) -> str:
        return kind if kind in _KINDS else "unknown"

    @staticmethod
    def type_label(event_type: str) -> str:
        return event_type if event_type in _TYPES else "other"

    # -- observations made once the transaction has committed (registered on the unit of work)
    def observe_handling(self, source: Any, natural_h: float | None, working_h: float | None) -> None:
        label = self.source_label(source)
        if natural_h is not None:
            self.handling_natural.labels(label).observe(natural_h)
        if working_h is not None:
            self.handling_working.labels(label).observe(working_h)

    # -- gauges
    async def refresh_gauges(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Refresh the case gauges with ONE grouped query (called before each scrape). 刷新在办/超期。"""
        now = datetime.now(UTC)
        async with sessions() as session:
            rows = await gauge_counts(session=session, now=now)
        totals: dict[tuple[str, str], list[int]] = {}
        townships = sorted({t for t, _, _, _ in rows})
        allowed = set(townships[: self.max_townships])
        for township, kind, open_, overdue in rows:
            key = (township if township in allowed else "other", self.kind_label(kind))
            acc = totals.setdefault(key, [0, 0])
            acc[0] += open_
            acc[1] += overdue
        self.open_cases.clear()
        self.overdue_cases.clear()
        for (township, kind), (open_, overdue) in totals.items():
            self.open_cases.labels(township, kind).set(open_)
            self.overdue_cases.labels(township, kind).set(overdue)
        self.gauges_refreshed.set(now.timestamp())
