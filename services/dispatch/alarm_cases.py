"""监测告警 become cases 告警立案: bursts join the open case, clearings close it (use cases; no commit).

:func:`handle_alarms` takes a batch of ``alarm.reported``: an alarm of the same device and type
within the type's window of an open case's latest occurrence joins that case — one
``alarm_occurrences`` row per alarm (a replay adds nothing) and one ``case.occurrence_added`` per
case and batch with the count; every other alarm becomes a case through the incidents path
(:func:`services.dispatch.incidents.handle_incidents`, where :mod:`services.dispatch.source_kinds`
sends a low-confidence one to 复核). The device-and-type keys are locked (advisory, sorted) for
the transaction, so two replicas never open two cases for one burst.

:func:`handle_clearings` takes ``alarm.cleared``: the case of the cleared alarm closes with
自动恢复 when it is not accepted yet and the cleared alarm is its latest occurrence
(:func:`services.dispatch.alarms.recovers`). An alarm that arrives already cleared is treated the
same right after its case is created. 同设备同类型窗口内的告警并入未结案件计次；其余立案；
告警恢复且案件未签收时自动结案（自动恢复）。
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.alarms import AddOccurrenceBody, AutoRecoverBody, BurstPlan, plan_bursts, recovers
from services.dispatch.case_model import Action, Applied
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import SYSTEM_ACTOR, case_id_for
from services.dispatch.incidents import handle_incidents
from services.dispatch.lifecycle import apply
from services.dispatch.models import alarm_occurrences, cases
from services.dispatch.staging import Pending, stage_applied
from services.dispatch.store import load_for_update, save
from shared.events import AlarmCleared, AlarmReported, EventEnvelope

__all__ = ["handle_alarms", "handle_clearings", "lock_alarm_keys"]

_LOCK_KEYS = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k")
_SEEN = text(f"SELECT incident_id FROM {alarm_occurrences.fullname} WHERE incident_id = ANY(CAST(:ids AS uuid[]))")
_OPEN_CASES = text(
    f"""
    SELECT id, device_id, alarm_type, (snapshot->>'last_raised_at')::timestamptz AS last_raised_at, reported_at
    FROM {cases.fullname}
    WHERE state <> 'closed' AND device_id = ANY(CAST(:devices AS text[])) AND merged_into IS NULL
    """
)
_RECORD = text(
    f"""
    INSERT INTO {alarm_occurrences.fullname} (incident_id, case_id, alarm_id, raised_at)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:cases AS uuid[]), CAST(:alarms AS text[]),
                         CAST(:raised AS timestamptz[]))
    ON CONFLICT (incident_id) DO NOTHING
    RETURNING incident_id, case_id
    """
)
_KEYS_OF_CLEARED = text(
    f"""
    SELECT c.device_id, c.alarm_type FROM {alarm_occurrences.fullname} o JOIN {cases.fullname} c ON c.id = o.case_id
    WHERE o.incident_id = ANY(CAST(:ids AS uuid[])) AND c.device_id IS NOT NULL
    """
)
_OCCURRENCE_OF = text(f"SELECT case_id, raised_at FROM {alarm_occurrences.fullname} WHERE incident_id = :incident_id")


def _lock_key(device_id: str, alarm_type: str) -> int:
    """A stable signed 64-bit advisory-lock key of (device, type). 设备与类型的咨询锁键。"""
    digest = hashlib.blake2b(f"alarm:{device_id}:{alarm_type}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_alarm_keys(*, session: AsyncSession, envelopes: Sequence[EventEnvelope[Any]]) -> None:
    """Take the (device, type) advisory locks of every alarm and clearing of a batch, sorted, at once.

    Later locks of the same keys in this transaction are re-entrant, so two transactions never wait
    for each other's alarm keys in opposite orders. 一次按序取得本批全部告警键的咨询锁，避免交叉等待。
    """
    keys = {_lock_key(e.data.alarm.device_id, e.data.alarm.alarm_type) for e in envelopes
            if isinstance(e.data, AlarmReported)}  # fmt: skip
    cleared = [e.data.event_id for e in envelopes if isinstance(e.data, AlarmCleared)]
    if cleared:
        for row in await session.execute(_KEYS_OF_CLEARED, {"ids": cleared}):
            keys.add(_lock_key(row.device_id, row.alarm_type))
    if keys:
        await session.execute(_LOCK_KEYS, {"keys": sorted(keys)})


async def _open_cases(
    session: AsyncSession, alarms: Sequence[AlarmReported]
) -> dict[tuple[str, str], list[tuple[uuid.UUID, datetime]]]:
    devices = sorted({a.alarm.device_id for a in alarms})
    found: dict[tuple[str, str], list[tuple[uuid.UUID, datetime]]] = defaultdict(list)
    for row in await session.execute(_OPEN_CASES, {"devices": devices}):
        found[(row.device_id, row.alarm_type)].append((row.id, row.last_raised_at or row.reported_at))
    return found


async def _record_occurrences(
    session: AsyncSession, pairs: Sequence[tuple[AlarmReported, uuid.UUID]]
) -> set[uuid.UUID]:
    """Insert one occurrence row per (alarm, case); the incident ids newly recorded. 记录告警次数。"""
    if not pairs:
        return set()
    params = {
        "ids": [a.event_id for a, _ in pairs],
        "cases": [c for _, c in pairs],
        "alarms": [a.source_id for a, _ in pairs],
        "raised": [a.alarm.raised_at for a, _ in pairs],
    }
    return {row.incident_id for row in await session.execute(_RECORD, params)}


async def _add_occurrences(
    session: AsyncSession, case_id: uuid.UUID, alarms: Sequence[AlarmReported], correlation_id: str
) -> Applied | None:
    """One ``case.occurrence_added`` for ``alarms`` joining ``case_id``. 并入告警计次。"""
    record = await load_for_update(session, case_id)
    if record is None:
        return None
    case = record.snapshot
    at = max(max(a.received_at for a in alarms), case.previous_at)
    body = AddOccurrenceBody(
        expected_version=case.version, count=len(alarms), last_raised_at=max(a.alarm.raised_at for a in alarms)
    )
    result = apply(case, Action.ADD_OCCURRENCE, body, SYSTEM_ACTOR, at)
    if not isinstance(result, Applied):  # closed meanwhile by a person: the alarms stay recorded against it
        return None
    pending = Pending()
    stage_applied(pending, record, result, correlation_id=correlation_id, extra={"details": {"count": len(alarms)}})
    await save(session, record, pending)
    return result


async def handle_alarms(
    *,
    session: AsyncSession,
    envelopes: Sequence[EventEnvelope[Any]],
    jurisdiction: LoadedJurisdiction,
    duplicate_distance_m: float = 50.0,
    duplicate_window: timedelta = timedelta(hours=24),
) -> BurstPlan:
    """A batch of ``alarm.reported`` → new cases and counted occurrences (see the module). 告警批处理。"""
    alarms = [e for e in envelopes if isinstance(e.data, AlarmReported)]
    if not alarms:
        return BurstPlan(new=[], joined={})
    keys = sorted({_lock_key(e.data.alarm.device_id, e.data.alarm.alarm_type) for e in alarms})
    await session.execute(_LOCK_KEYS, {"keys": keys})
    seen = {row.incident_id for row in await session.execute(_SEEN, {"ids": [e.data.event_id for e in alarms]})}
    fresh = [e for e in alarms if e.data.event_id not in seen]
    snapshot = jurisdiction.snapshot
    window_of = {
        e.data.alarm.alarm_type: timedelta(minutes=snapshot.alarm_type(e.data.alarm.alarm_type).burst_window_minutes)
        for e in fresh
    }
    plan = plan_bursts(fresh, await _open_cases(session, [e.data for e in fresh]), window_of)
    if plan.new:
        await handle_incidents(
            session=session,
            envelopes=plan.new,
            jurisdiction=jurisdiction,
            duplicate_distance_m=duplicate_distance_m,
            duplicate_window=duplicate_window,
        )
    own = [(e.data, case_id_for(e.data.event_id)) for e in plan.new]
    joined = [(a, case_id) for case_id, batch in plan.joined.items() for a in batch]
    recorded = await _record_occurrences(session, own + joined)
    correlation = {e.data.event_id: e.correlation_id for e in fresh}
    for case_id, batch in plan.joined.items():
        counted = [a for a in batch if a.event_id in recorded]
        if counted:
            await _add_occurrences(session, case_id, counted, correlation[counted[0].event_id])
    for e in plan.new:
        facts = e.data.alarm
        if facts.cleared_at is not None:
            await _clear(session, e.data.event_id, facts.cleared_at, e.data.received_at, e.correlation_id)
    return plan


async def _clear(
    session: AsyncSession, incident_id: uuid.UUID, cleared_at: datetime, received_at: datetime, correlation_id: str
) -> Applied | None:
    """自动恢复 of the case of the cleared alarm, if it applies. 告警恢复：视情况自动结案。"""
    row = (await session.execute(_OCCURRENCE_OF, {"incident_id": incident_id})).first()
    if row is None:
        return None
    record = await load_for_update(session, row.case_id)
    if record is None or not recovers(record.snapshot, row.raised_at):
        return None
    case = record.snapshot
    at = max(received_at, cleared_at, case.previous_at)
    body = AutoRecoverBody(expected_version=case.version, cleared_at=cleared_at)
    result = apply(case, Action.AUTO_RECOVER, body, SYSTEM_ACTOR, at)
    if not isinstance(result, Applied):
        return None
    pending = Pending()
    stage_applied(
        pending,
        record,
        result,
        correlation_id=correlation_id,
        extra={"details": {"cleared_at": cleared_at.isoformat()}},
    )
    await save(session, record, pending)
    return result


async def handle_clearings(*, session: AsyncSession, envelopes: Sequence[EventEnvelope[Any]]) -> int:
    """A batch of ``alarm.cleared`` → 自动恢复 where it applies; how many cases closed. 告警恢复批处理。"""
    closed = 0
    for e in envelopes:
        fact = e.data
        if isinstance(fact, AlarmCleared):
            if await _clear(session, fact.event_id, fact.cleared_at, fact.received_at, e.correlation_id) is not None:
                closed += 1
    return closed
