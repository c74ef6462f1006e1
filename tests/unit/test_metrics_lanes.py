"""Which case-event lanes a metrics process scores (``METRICS_CASE_LANES``). 绩效进程计分的通道。"""

from __future__ import annotations

import orjson
import pytest

from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings

COMMON = {
    "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    "staff_tokens": orjson.dumps({"t-admin": {"role": "admin", "township": "*"}}).decode(),
    "service_token": "t-admin",
    "log_json": False,
}


def consumer_groups(lanes: str) -> list[tuple[str, list[str]]]:
    """The consumer groups the app registers: group, topics."""
    app = create_app(MetricsSettings(**COMMON, case_lanes=lanes))
    return sorted((r.group_id, r.topics) for r in app.state.metrics.runtime.consumers)


@pytest.mark.parametrize(
    ("lanes", "expected"),
    [
        (
            "both",
            [
                ("metrics", ["case.events", "case.events.bulk"]),
                ("metrics-jurisdiction", ["jurisdiction.changed"]),
                ("metrics-operations", ["operation.events"]),
            ],
        ),
        (
            "live",
            [
                ("metrics", ["case.events"]),
                ("metrics-jurisdiction", ["jurisdiction.changed"]),
                ("metrics-operations", ["operation.events"]),
            ],
        ),
        ("bulk", [("metrics", ["case.events.bulk"])]),
    ],
)
def test_a_process_scores_the_lanes_it_is_given(lanes: str, expected: list[tuple[str, list[str]]]) -> None:
    assert consumer_groups(lanes) == expected


def test_an_unknown_lane_is_refused() -> None:
    with pytest.raises(ValueError, match="case_lanes"):
        MetricsSettings(**COMMON, case_lanes="everything")
