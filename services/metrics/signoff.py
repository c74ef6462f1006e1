"""Signed-off periods 周期签发 and revisions 修订.

``POST /v1/periods/{period}/sign-off`` freezes the period's scores under every active scheme,
as of the period's end (:func:`sign_off`). From then on the published figures never change.
A later event that changes a fact of a case dispatched in a signed-off period, or a changed
township rating for it, marks the period (:func:`mark_changed_many`); a background loop
(:func:`process_revisions`) re-scores marked periods with the *same* scheme versions and
``as_of`` and, when any published figure differs from the latest state, records a revision
(``score_revisions``) that the API shows beside the published scores.
签发后公布得分不再变化；之后影响该周期的事件或评价变更只会形成修订记录，与公布得分并列展示。
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics.accountability_store import load_report
from services.metrics.models import period_signoffs, score_revisions, signoff_changes
from services.metrics.periods import Period, parse_period
from services.metrics.scheme_store import active_schemes, compute_scores
from services.metrics.scoring import AssessmentScheme, ScoreRow
from shared.calendar import WorkingCalendar
from shared.logging import get_logger

log = get_logger(__name__)

__all__ = [
    "AlreadySignedOffError",
    "PeriodNotEndedError",
    "diff_rows",
    "latest_revision",
    "list_revisions",
    "mark_changed_many",
    "mark_period",
    "period_record",
    "process_revisions",
    "sign_off",
    "signoff_of",
]

#: Row fields compared between the published and the recomputed scores. 比较的字段。
COMPARED_FIELDS: Final = (
    "status",
    "cases",
    "score",
    "partial_score",
    "grade",
    "rank_in_township",
    "rank_in_kind",
    "township_rating",
)


class PeriodNotEndedError(ValueError):
    """Only an ended period can be signed off. 周期未结束，不能签发。"""


class AlreadySignedOffError(ValueError):
    """The period is signed off already. 周期已签发。"""


def _rows_json(rows: list[ScoreRow]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rows]


async def _snapshot(
    *, session: AsyncSession, schemes_used: dict[str, AssessmentScheme], period: Period, as_of: datetime
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scheme_id, scheme in schemes_used.items():
        rows = await compute_scores(session=session, scheme=scheme, period=period, as_of=as_of)
        out[scheme_id] = {"scheme": scheme.model_dump(mode="json"), "rows": _rows_json(rows)}
    return out


async def sign_off(
    *, session: AsyncSession, period: Period, by: str, now: datetime, calendar: WorkingCalendar
) -> dict[str, Any]:
    """Freeze the period's scores under every active scheme, and its 监督问责 report (county-wide).

    签发周期：冻结各方案得分与监督问责报告。"""
    if now < period.end:
        raise PeriodNotEndedError(
            f"period {period.id} ends at {period.end.isoformat()}; only an ended period can be signed off"
        )
    existing = await signoff_of(session=session, period_id=period.id)
    if existing is not None:
        raise AlreadySignedOffError(f"period {period.id} was signed off at {existing['signed_at']}")
    as_of = period.end
    snapshot = await _snapshot(
        session=session, schemes_used=await active_schemes(session=session), period=period, as_of=as_of
    )
    accountability = await load_report(session=session, period=period, as_of=as_of, township=None, calendar=calendar)
    row = (
        await session.execute(
            pg_insert(period_signoffs)
            .values(
                period_id=period.id,
                period_start=period.start,
                period_end=period.end,
                as_of=as_of,
                signed_by=by,
                snapshot=snapshot,
                accountability=accountability.as_json(),
            )
            .on_conflict_do_nothing()
            .returning(period_signoffs.c.signed_at)
        )
    ).first()
    if row is None:
        raise AlreadySignedOffError(f"period {period.id} was signed off meanwhile")
    return {
        "period": period.id,
        "signed_at": row.signed_at.isoformat(),
        "signed_by": by,
        "as_of": as_of.isoformat(),
        "schemes": {
            sid: {"version": part["scheme"]["version"], "rows": len(part["rows"])} for sid, part in snapshot.items()
        },
    }


async def signoff_of(*, session: AsyncSession, period_id: str) -> dict[str, Any] | None:
    row = (
        (await session.execute(select(period_signoffs).where(period_signoffs.c.period_id == period_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    out = dict(row)
    for key in ("period_start", "period_end", "as_of", "signed_at"):
        out[key] = out[key].isoformat()
    return out


async def latest_revision(*, session: AsyncSession, period_id: str) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                select(score_revisions)
                .where(score_revisions.c.period_id == period_id)
                .order_by(score_revisions.c.revision_no.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    out = dict(row)
    out["created_at"] = out["created_at"].isoformat()
    return out


async def list_revisions(*, session: AsyncSession, period_id: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(
                score_revisions.c.revision_no,
                score_revisions.c.created_at,
                score_revisions.c.subjects,
                score_revisions.c.changes,
            )
            .where(score_revisions.c.period_id == period_id)
            .order_by(score_revisions.c.revision_no)
        )
    ).mappings()
    return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]


async def period_record(*, session: AsyncSession, period_id: str) -> dict[str, Any]:
    """A period's sign-off (who, when, as of when, scheme versions; ``None`` if not signed off) and its
    revisions. 周期的签发与修订记录。"""
    signoff = await signoff_of(session=session, period_id=period_id)
    revisions = await list_revisions(session=session, period_id=period_id) if signoff else []
    signed = None
    if signoff is not None:
        signed = {k: signoff[k] for k in ("signed_at", "signed_by", "as_of", "dirty")}
        signed["schemes"] = {sid: part["scheme"]["version"] for sid, part in signoff["snapshot"].items()}
    return {"signed_off": signed, "revisions": revisions}


async def mark_changed_many(
    *, session: AsyncSession, changes: Sequence[tuple[str, Sequence[datetime]]]
) -> list[str]:
    """Mark the signed-off periods containing any of each subject's moments for a revision check.

    标记包含这些时刻的已签发周期待复核（一批主体一次完成）；返回被标记的周期。A subject says what
    changed (``case:<id>``); a consumer batch costs one read of the signed-off periods, and two
    writes when any of them is touched."""
    wanted = [(subject, moments) for subject, moments in changes if moments]
    if not wanted:
        return []
    signed = (
        await session.execute(
            select(period_signoffs.c.period_id, period_signoffs.c.period_start, period_signoffs.c.period_end)
        )
    ).all()
    if not signed:
        return []
    rows = {
        (period_id, subject)
        for subject, moments in wanted
        for period_id, start, end in signed
        if any(start <= m < end for m in moments)
    }
    if not rows:
        return []
    await session.execute(
        pg_insert(signoff_changes)
        .values([{"period_id": p, "subject": subject} for p, subject in sorted(rows)])
        .on_conflict_do_nothing()
    )
    periods = sorted({p for p, _ in rows})
    await session.execute(update(period_signoffs).where(period_signoffs.c.period_id.in_(periods)).values(dirty=True))
    return periods


async def mark_period(*, session: AsyncSession, period_id: str, subject: str) -> list[str]:
    """Mark one period (if signed off) for a revision check. 标记某一已签发周期。"""
    found = (
        await session.execute(select(period_signoffs.c.period_id).where(period_signoffs.c.period_id == period_id))
    ).scalar_one_or_none()
    return await _mark(session=session, subject=subject, periods=[found] if found else [])


async def _mark(*, session: AsyncSession, subject: str, periods: list[str]) -> list[str]:
    if not periods:
        return []
    await session.execute(
        pg_insert(signoff_changes)
        .values([{"period_id": p, "subject": subject} for p in periods])
        .on_conflict_do_nothing()
    )
    await session.execute(update(period_signoffs).where(period_signoffs.c.period_id.in_(periods)).values(dirty=True))
    return periods


def diff_rows(scheme_id: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures that differ between two score tables (keyed by unit and township). 比较两份评分表。"""
    old = {(r["unit"], r["township"]): r for r in before}
    new = {(r["unit"], r["township"]): r for r in after}
    changes: list[dict[str, Any]] = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        base = {"scheme": scheme_id, "unit": key[0], "township": key[1]}
        if a is None or b is None:
            changes.append({**base, "field": "row", "published": a is not None, "revised": b is not None})
            continue
        for field in COMPARED_FIELDS:
            if a.get(field) != b.get(field):
                changes.append({**base, "field": field, "published": a.get(field), "revised": b.get(field)})
        for indicator in sorted(set(a.get("rates", {})) | set(b.get("rates", {}))):
            x, y = a.get("rates", {}).get(indicator), b.get("rates", {}).get(indicator)
            if (x is None) != (y is None) or (x is not None and y is not None and abs(x - y) > 1e-9):
                changes.append({**base, "field": f"rates.{indicator}", "published": x, "revised": y})
    return changes


async def revise_period(*, session: AsyncSession, period_id: str) -> dict[str, Any] | None:
    """Re-score one marked period; record a revision if any figure changed. 复核一个周期。"""
    signoff = (
        (
            await session.execute(
                select(period_signoffs)
                .where(period_signoffs.c.period_id == period_id, period_signoffs.c.dirty.is_(True))
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .first()
    )
    if signoff is None:
        return None
    subjects = sorted(
        (
            await session.execute(
                delete(signoff_changes)
                .where(signoff_changes.c.period_id == period_id)
                .returning(signoff_changes.c.subject)
            )
        )
        .scalars()
        .all()
    )
    period = parse_period(period_id)
    published: dict[str, Any] = signoff["snapshot"]
    previous = await latest_revision(session=session, period_id=period_id)
    current_state: dict[str, Any] = previous["snapshot"] if previous else published
    schemes_used = {sid: AssessmentScheme.model_validate(part["scheme"]) for sid, part in published.items()}
    snapshot = await _snapshot(session=session, schemes_used=schemes_used, period=period, as_of=signoff["as_of"])
    changes = [
        change
        for sid, part in snapshot.items()
        for change in diff_rows(sid, current_state.get(sid, {}).get("rows", []), part["rows"])
    ]
    await session.execute(update(period_signoffs).where(period_signoffs.c.period_id == period_id).values(dirty=False))
    if not changes:
        return None
    revision_no = (previous["revision_no"] if previous else 0) + 1
    await session.execute(
        insert(score_revisions).values(
            period_id=period_id, revision_no=revision_no, subjects=subjects, snapshot=snapshot, changes=changes
        )
    )
    log.info("score revision recorded", period=period_id, revision=revision_no, changes=len(changes))
    return {"period": period_id, "revision_no": revision_no, "changes": changes}


async def process_revisions(*, sessions: async_sessionmaker[AsyncSession]) -> int:
    """Re-score every marked period (each in its own transaction); returns revisions recorded."""
    async with sessions() as session:
        periods = list(
            (await session.execute(select(period_signoffs.c.period_id).where(period_signoffs.c.dirty.is_(True))))
            .scalars()
            .all()
        )
    recorded = 0
    for period_id in periods:
        async with sessions() as session, session.begin():
            if await revise_period(session=session, period_id=period_id) is not None:
                recorded += 1
    return recorded
