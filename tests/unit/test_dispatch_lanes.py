"""Which intake lanes a dispatch process consumes (``DISPATCH_INCIDENT_LANES``). 派遣进程消费的通道。"""

from __future__ import annotations

import orjson
import pytest

from services.dispatch.app import create_app
from services.dispatch.settings import DispatchSettings

COMMON = {
    "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    "staff_tokens": orjson.dumps({"t-admin": {"role": "admin", "township": "*"}}).decode(),
    "service_token": "t-admin",
    "log_json": False,
}


def incident_groups(lanes: str) -> list[tuple[str, list[str], bool]]:
    """The incident consumer groups the app registers (waiting for a snapshot): group, topics, bulk."""
    app = create_app(DispatchSettings(**COMMON, incident_lanes=lanes))
    waiting = app.state.dispatch.runtime.waiting
    return sorted((r.group_id, r.topics, r.bulk) for r in waiting)


@pytest.mark.parametrize(
    ("lanes", "expected"),
    [
        ("both", [("dispatch", ["incident.reported"], False), ("dispatch-bulk", ["incident.reported.bulk"], True)]),
        ("live", [("dispatch", ["incident.reported"], False)]),
        ("bulk", [("dispatch-bulk", ["incident.reported.bulk"], True)]),
        ("none", []),
    ],
)
def test_a_process_consumes_the_lanes_it_is_given(lanes: str, expected: list[tuple[str, list[str], bool]]) -> None:
    assert incident_groups(lanes) == expected


def test_an_unknown_lane_is_refused() -> None:
    with pytest.raises(ValueError, match="incident_lanes"):
        DispatchSettings(**COMMON, incident_lanes="everything")
