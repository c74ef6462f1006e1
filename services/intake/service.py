"""Intake's application service: accept validated records exactly once.

The accepted-event row and its outbox row are written by one statement, which
is its own transaction: both land or neither does. Re-posting a
record answers ``duplicate`` with the first event's id; different content
under the same source id answers ``conflict``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import accepted_events
from shared.cooperative import cooperative_map
from shared.events import INCIDENT_REPORTED, TOPICS, EventEnvelope, IncidentReported, make_envelope, topic_lane
from shared.messaging.outbox import outbox_arrays_cooperatively


@dataclass(frozen=True)
class Submission:
    """One validated, normalised producer record."""

    source: str
    raw: dict[str, Any]
    content_hash: str
    event: IncidentReported


@dataclass(frozen=True)
class Outcome:
    status: Literal["accepted", "duplicate", "conflict", "updated"]
    event_id: uuid.UUID


#: The event type of each payload kind on ``incident.reported`` (事件上报 / 审批办件 / 监测告警).
EVENT_TYPE_OF: dict[type[Any], str] = {model: t for t, model in TOPICS[INCIDENT_REPORTED].event_types.items()}


# The verbatim rows, their outbox rows (columns as in shared.messaging.outbox.outbox_arrays) and the relay's pending
# markers in one statement. Only a newly accepted record gets an outbox row (accepted_events' key decides), so
# intake's outbox needs no unique index of its own on the event id (one random-key index insert less per event).
_ACCEPT_SQL = """
WITH incoming AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[],
                         $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[],
                         $13::jsonb[])
        WITH ORDINALITY AS t(event_id, source, source_id, content_hash, raw, normalised, received_at,
                             api_key_name, topic, event_type, key, value, headers, ord)
), first_seen AS (
    SELECT DISTINCT ON (event_id) * FROM incoming ORDER BY event_id, ord
), accepted AS (
    INSERT INTO intake.accepted_events (event_id, source, source_id, content_hash, raw, normalised,
                                        received_at, api_key_name)
    SELECT event_id, source, source_id, content_hash, raw, normalised, received_at, api_key_name
    FROM first_seen ORDER BY ord
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), queued AS (
    INSERT INTO intake.outbox (event_id, topic, event_type, key, value, headers)
    SELECT f.event_id, f.topic, f.event_type, f.key, f.value, f.headers
    FROM first_seen f JOIN accepted a USING (event_id) ORDER BY f.ord
    RETURNING id
), pending AS (
    INSERT INTO intake.outbox_pending (id, lane) SELECT id, $14::smallint FROM queued
)
SELECT event_id FROM accepted
"""

# The same for one record (a single POST): scalar parameters encode and plan cheaper than arrays.
_ACCEPT_ONE_SQL = """
WITH accepted AS (
    INSERT INTO intake.accepted_events (event_id, source, source_id, content_hash, raw, normalised,
                                        received_at, api_key_name)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), queued AS (
    INSERT INTO intake.outbox (event_id, topic, event_type, key, value, headers)
    SELECT event_id, $9, $10, $11, $12, $13 FROM accepted
    RETURNING id
), pending AS (
    INSERT INTO intake.outbox_pending (id, lane) SELECT id, $14::smallint FROM queued
)
SELECT event_id FROM accepted
"""


async def accept_submissions(
    *,
    conn: asyncpg.Connection,
    submissions: list[Submission],
    correlation_id: str,
    api_key_name: str | None,
    topic: str = INCIDENT_REPORTED,
) -> list[Outcome]:
    """Store new records and queue their ``incident.reported`` events; classify the rest.

    存储新记录并把 ``incident.reported`` 写入发件箱；其余判为重复或冲突。

    One statement does it all — the verbatim rows and their outbox rows, inserted together
    (a statement is atomic: both or neither) — so a request costs one round trip to the
    database. Within one batch the first occurrence of a record wins; later ones are judged
    against it.

    ``topic``: the live lane (``incident.reported``) or the bulk lane (``incident.reported.bulk``)
    a producer chose for a history import. 实时通道或批量导入通道。
    """
    if not submissions:
        return []

    def envelope(s: Submission) -> EventEnvelope[IncidentReported]:
        return make_envelope(
            event_type=EVENT_TYPE_OF[type(s.event)],
            data=s.event,
            source=f"/intake/{s.source}",
            correlation_id=correlation_id,
            subject=str(s.event.event_id),
            time=s.event.received_at,
            event_id=s.event.event_id,
        )

    envelopes = await cooperative_map(envelope, submissions)
    normalised = await cooperative_map(lambda s: s.event.model_dump_json(), submissions)
    # The payload is serialised once: the stored normalised record and the event on Kafka share it.
    queued = await outbox_arrays_cooperatively(topic, envelopes, data_json=normalised)
    columns: list[list[Any]] = [
        [s.event.event_id for s in submissions],
        [s.source for s in submissions],
        [s.event.source_id for s in submissions],
        [s.content_hash for s in submissions],
        [orjson.dumps(s.raw).decode() for s in submissions],
        normalised,
        [s.event.received_at for s in submissions],
        [api_key_name] * len(submissions),
        *queued[1:],
    ]
    if len(submissions) == 1:
        rows = await conn.fetch(_ACCEPT_ONE_SQL, *(column[0] for column in columns), topic_lane(topic))
    else:
        rows = await conn.fetch(_ACCEPT_SQL, *columns, topic_lane(topic))
    inserted: set[uuid.UUID] = {r["event_id"] for r in rows}
    others = list({s.event.event_id for s in submissions} - inserted)
    known_hash: dict[uuid.UUID, str] = {}
    if others:
        # Rows a concurrent or earlier request wrote: committed by now (ON CONFLICT waited for them).
        known = await conn.fetch(
            "SELECT event_id, content_hash FROM intake.accepted_events WHERE event_id = ANY($1::uuid[])", others
        )
        known_hash = {r["event_id"]: r["content_hash"] for r in known}
    first_hash: dict[uuid.UUID, str] = {}
    outcomes: list[Outcome] = []
    for s in submissions:
        eid = s.event.event_id
        if eid in inserted and eid not in first_hash:
            first_hash[eid] = s.content_hash
            outcomes.append(Outcome("accepted", eid))
            continue
        reference = first_hash.get(eid) or known_hash.get(eid)
        outcomes.append(Outcome("duplicate" if reference == s.content_hash else "conflict", eid))
    return outcomes


async def get_accepted(*, session: AsyncSession, event_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await session.execute(select(accepted_events).where(accepted_events.c.event_id == event_id))).first()
    return dict(row._mapping) if row else None


def received_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
