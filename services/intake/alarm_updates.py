"""告警恢复: an alarm re-posted with ``cleared_at`` added becomes an update, not a conflict.

:func:`resolve_clearings` looks again at the ``conflict`` outcomes of an alarm request: where the
re-post is a clearing (:func:`services.intake.alarms.is_clearing`), the stored record takes the
new content and an ``alarm.cleared`` event goes to the outbox — in one statement (atomic), and
only if the stored record is still the one compared against (a concurrent clearing wins once;
the loser is judged again: the same content → duplicate). 冲突结果中属于告警恢复的，
一条语句更新原记录并写入 ``alarm.cleared``；并发时只有一次生效，其余重新判定。
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from services.intake.alarms import clearing_of, is_clearing
from services.intake.service import Outcome, Submission
from shared.events import INCIDENT_REPORTED, AlarmReported, alarm_cleared_event_id, make_envelope
from shared.messaging.outbox import outbox_arrays

_CLEAR_SQL = """
WITH updated AS (
    UPDATE intake.accepted_events SET content_hash = $2, raw = $3, normalised = $4
    WHERE event_id = $1 AND content_hash = $5
    RETURNING event_id
), queued AS (
    INSERT INTO intake.outbox (event_id, topic, event_type, key, value, headers)
    SELECT $6, $7, $8, $9, $10, $11 FROM updated
    RETURNING id
), pending AS (
    INSERT INTO intake.outbox_pending (id) SELECT id FROM queued
)
SELECT event_id FROM updated
"""


def _decoded(value: Any) -> dict[str, Any]:
    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)


async def _clear(conn: asyncpg.Connection, s: Submission, stored_hash: str, correlation_id: str) -> bool:
    """Store the clearing of ``s`` and queue its ``alarm.cleared``; whether it was applied. 存储告警恢复。"""
    assert isinstance(s.event, AlarmReported)
    cleared = clearing_of(s.event)
    envelope = make_envelope(
        event_type="alarm.cleared",
        data=cleared,
        source="/intake/alarm",
        correlation_id=correlation_id,
        subject=str(s.event.event_id),
        time=cleared.received_at,
        event_id=alarm_cleared_event_id(s.event.event_id),
    )
    outbox_row = [column[0] for column in outbox_arrays(INCIDENT_REPORTED, [envelope])]
    row = await conn.fetchrow(
        _CLEAR_SQL,
        s.event.event_id,
        s.content_hash,
        orjson.dumps(s.raw).decode(),
        s.event.model_dump_json(),
        stored_hash,
        *outbox_row,
    )
    return row is not None


async def resolve_clearings(
    *,
    conn: asyncpg.Connection,
    submissions: Sequence[Submission],
    outcomes: Sequence[Outcome],
    correlation_id: str,
) -> list[Outcome]:
    """The outcomes with each clearing's ``conflict`` turned into ``updated`` (or ``duplicate``). 判定告警恢复。"""
    conflicts = [i for i, o in enumerate(outcomes) if o.status == "conflict"]
    if not conflicts:
        return list(outcomes)
    result = list(outcomes)
    for i in conflicts:
        s = submissions[i]
        stored = await conn.fetchrow(
            "SELECT content_hash, raw FROM intake.accepted_events WHERE event_id = $1", s.event.event_id
        )
        if stored is None:
            continue
        if stored["content_hash"] == s.content_hash:  # an earlier item of this batch cleared it already
            result[i] = Outcome("duplicate", s.event.event_id)
            continue
        if not is_clearing(_decoded(stored["raw"]), s.raw):
            continue
        if await _clear(conn, s, stored["content_hash"], correlation_id):
            result[i] = Outcome("updated", s.event.event_id)
            continue
        again = await conn.fetchval(
            "SELECT content_hash FROM intake.accepted_events WHERE event_id = $1", s.event.event_id
        )
        if again == s.content_hash:  # a concurrent request stored the same clearing
            result[i] = Outcome("duplicate", s.event.event_id)
    return result
