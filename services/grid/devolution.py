"""Recording a devolution decision 登记下放清单调整 (use cases; never commit).

A decision (文号 and items "from day D, matter M in township T is devolved / entrusted / assisted
/ returned") becomes a new bundle version whose dated devolution entries carry it: the entry in
force on D is closed on D and a new one starts there (:func:`shared.jurisdiction.devolution.apply_change`).
Every day D must lie after the day the decision is recorded (Asia/Shanghai), so the list in force
at any past moment is never rewritten and a replay of past reports routes as they were routed.
The decision is stored with who recorded it and when, and ``jurisdiction.changed``
(``change = devolution``) carries the diff. 每项调整生成新的数据包版本；生效日须晚于登记日，
历史清单永不改写；记录文号、登记人、登记时间，并以 jurisdiction.changed 发布差异。
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.grid.models import devolution_changes
from services.grid.registry import SnapshotRegistry
from services.grid.service import ChangeOutcome, CountyNotFoundError, get_county, import_bundle, load_snapshot
from shared.events import DevolutionChanged, DevolutionItemChanged
from shared.jurisdiction import Problem, bundle_digest
from shared.jurisdiction.devolution import DevolutionChange, apply_change, entry_dict, local_day
from shared.jurisdiction.validation.devolution import check_devolution_entries

__all__ = ["DevolutionInvalidError", "devolution_history", "list_devolution_changes", "record_devolution_change"]


class DevolutionInvalidError(ValueError):
    """The decision cannot be applied (every problem listed). 调整无法应用（列出全部问题）。"""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


async def record_devolution_change(
    *,
    session: AsyncSession,
    registry: SnapshotRegistry,
    county_code: str,
    change: DevolutionChange,
    actor: str | None,
    correlation_id: str,
    now: datetime,
) -> tuple[ChangeOutcome, list[dict[str, Any]]]:
    """Apply ``change`` to the county's current bundle as a new version, and record it; returns the diff.

    将调整应用于当前数据包，生成新版本并登记。Raises :class:`CountyNotFoundError` and
    :class:`DevolutionInvalidError` (items that start too early, overlap a later entry, change
    nothing, or name unknown townships/matters or a township without the function's unit).
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"grid.county:{county_code}"})
    current = await get_county(session=session, county_code=county_code)
    if current is None:
        raise CountyNotFoundError(county_code)
    base = registry.get(county_code)
    if base is None or (base.version, base.rules_version) != (current.version, current.rules_version):
        base = await load_snapshot(session=session, state=current)
    updated, applied = apply_change(base.bundle(), change, recorded_on=local_day(now))
    townships = {d.code for d in base.divisions("township")}
    matters = {m.code: m for m in base.matters}
    problems = list(applied.problems)
    if not problems:
        problems = [
            Problem(f"items{p.path.removeprefix('devolution_entries')}", p.message)
            for p in check_devolution_entries(updated, townships, matters)
        ]
    if problems:
        raise DevolutionInvalidError(problems)
    digest = await asyncio.to_thread(bundle_digest, updated)
    diff = DevolutionChanged(
        document=change.document,
        recorded_by=actor,
        items=[DevolutionItemChanged.model_validate(item) for item in applied.diff],
    )
    outcome = await import_bundle(
        session=session,
        bundle=updated,
        digest=digest,
        actor=actor,
        correlation_id=correlation_id,
        now=now,
        devolution=diff,
    )
    await session.execute(
        devolution_changes.insert().values(
            county_code=county_code,
            version=outcome.state.version,
            document=change.document,
            items=list(applied.diff),
            recorded_at=now,
            recorded_by=actor,
        )
    )
    return outcome, list(applied.diff)


async def list_devolution_changes(*, session: AsyncSession, county_code: str) -> list[dict[str, Any]]:
    """Every recorded decision of a county, oldest first. 区县的全部调整记录。"""
    rows = (
        await session.execute(
            select(devolution_changes)
            .where(devolution_changes.c.county_code == county_code)
            .order_by(devolution_changes.c.version)
        )
    ).all()
    return [
        {
            "version": r.version,
            "document": r.document,
            "items": r.items,
            "recorded_at": r.recorded_at.isoformat(),
            "recorded_by": r.recorded_by,
        }
        for r in rows
    ]


def devolution_history(registry: SnapshotRegistry, county_code: str) -> list[dict[str, Any]] | None:
    """Every devolution entry in force now, before or later (the undated lists included). 全部下放条目。"""
    snapshot = registry.get(county_code)
    if snapshot is None:
        return None
    return [entry_dict(e) for e in snapshot.devolution.entries()]
