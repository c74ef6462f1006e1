"""Intake's application service: accept validated records exactly once.

The accepted-event row and its outbox row are written in the caller's
transaction (the unit of work commits; nothing here commits). Re-posting a
record answers ``duplicate`` with the first event's id; different content
under the same source id answers ``conflict``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import accepted_events, outbox
from shared.events import INCIDENT_REPORTED, IncidentReported, make_envelope
from shared.outbox import add_events


@dataclass(frozen=True)
class Submission:
    """One validated, normalised producer record."""

    source: str
    raw: dict[str, Any]
    content_hash: str
    event: IncidentReported


@dataclass(frozen=True)
class Outcome:
    status: Literal["accepted", "duplicate", "conflict"]
    event_id: uuid.UUID


async def accept_submissions(
    *,
    session: AsyncSession,
    submissions: list[Submission],
    correlation_id: str,
    api_key_name: str | None,
) -> list[Outcome]:
    """Store new records and queue their ``incident.reported`` events; classify the rest."""
    if not submissions:
        return []
    rows = [
        {
            "event_id": s.event.event_id,
            "source": s.source,
            "source_id": s.event.source_id,
            "content_hash": s.content_hash,
            "raw": s.raw,
            "received_at": s.event.received_at,
            "api_key_name": api_key_name,
        }
        for s in submissions
    ]
    # One statement whatever the batch size: arrays unnested server-side (no per-row binds).
    result = await session.execute(
        text(
            "INSERT INTO intake.accepted_events (event_id, source, source_id, content_hash, raw, normalised, "
            "received_at, api_key_name) SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:sources AS text[]), "
            "CAST(:source_ids AS text[]), CAST(:hashes AS text[]), CAST(:raws AS jsonb[]), "
            "CAST(:normalised AS jsonb[]), CAST(:received AS timestamptz[]), CAST(:keys AS text[])) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        ),
        {
            "ids": [r["event_id"] for r in rows],
            "sources": [r["source"] for r in rows],
            "source_ids": [r["source_id"] for r in rows],
            "hashes": [r["content_hash"] for r in rows],
            "raws": [orjson.dumps(r["raw"]).decode() for r in rows],
            "normalised": [s.event.model_dump_json() for s in submissions],
            "received": [r["received_at"] for r in rows],
            "keys": [r["api_key_name"] for r in rows],
        },
    )
    inserted: set[uuid.UUID] = set(result.scalars().all())
    others = {s.event.event_id for s in submissions} - inserted
    known_hash: dict[uuid.UUID, str] = {}
    if others:
        result = await session.execute(
            select(accepted_events.c.event_id, accepted_events.c.content_hash).where(
                accepted_events.c.event_id.in_(others)
            )
        )
        known_hash = {row.event_id: row.content_hash for row in result}
    # Within one batch the first occurrence wins; later ones are judged against it.
    first_hash: dict[uuid.UUID, str] = {}
    outcomes: list[Outcome] = []
    new_events: list[IncidentReported] = []
    for s in submissions:
        eid = s.event.event_id
        if eid in inserted and eid not in first_hash:
            first_hash[eid] = s.content_hash
            outcomes.append(Outcome("accepted", eid))
            new_events.append(s.event)
            continue
        reference = first_hash.get(eid) or known_hash.get(eid)
        outcomes.append(Outcome("duplicate" if reference == s.content_hash else "conflict", eid))
    await add_events(
        session,
        outbox,
        INCIDENT_REPORTED,
        [
            make_envelope(
                event_type="incident.reported",
                data=e,
                source=f"/intake/{e.source}",
                correlation_id=correlation_id,
                subject=str(e.event_id),
                time=e.received_at,
                event_id=e.event_id,
            )
            for e in new_events
        ],
    )
    return outcomes


async def get_accepted(*, session: AsyncSession, event_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await session.execute(select(accepted_events).where(accepted_events.c.event_id == event_id))).first()
    return dict(row._mapping) if row else None


def received_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
