"""监督问责 report: loading its inputs, serving it (live, or frozen by a sign-off) and exporting it.
The rules are in ``accountability.py``.

The report of a period needs every case something accountable *happened* to in that period: an
event in the period, or a deadline, 报到 deadline or 督办 limit falling in it. Cases are found by
their events from :data:`LOOKBACK` before the period (a whistle or a 督办 older than that whose
limit falls in the period is not seen; limits are a few working days) and by their deadline; each
case's fact is folded from its events with the same reducer the consumer uses.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.access import narrowed
from services.metrics.accountability import (
    KIND_LABELS,
    AccountabilityReport,
    AccountabilityRules,
    accountability_report,
    with_findings,
)
from services.metrics.facts import CaseEventRecord, reduce_events
from services.metrics.models import case_events, case_facts, period_signoffs
from services.metrics.operation_store import load_operation_findings
from services.metrics.periods import Period
from services.metrics.store import event_record
from shared.calendar import WorkingCalendar
from shared.visibility import Viewer

#: How far before the period a case's events are looked for 回溯期.
LOOKBACK: Final = timedelta(days=60)


async def load_report(
    *,
    session: AsyncSession,
    period: Period,
    as_of: datetime,
    township: str | None,
    calendar: WorkingCalendar,
    rules: AccountabilityRules | None = None,
) -> AccountabilityReport:
    """The 监督问责 report of ``period`` for ``township`` (None: the whole county), as of ``as_of``."""
    f, e = case_facts.c, case_events.c
    touched = select(e.case_id).where(e.occurred_at >= period.start - LOOKBACK, e.occurred_at < period.end)
    due = select(f.case_id).where(f.deadline >= period.start, f.deadline < period.end)
    # One IN over the UNION (a hashed semi-join), not `IN (…) OR IN (…)`: PostgreSQL runs an OR'ed
    # subquery that outgrows work_mem once per fact row (minutes at 200 000 cases, bench/metrics_report.py).
    cases = select(f.case_id).where(f.case_id.in_(union(touched, due)))
    if township is not None:
        cases = cases.where(f.township == township)
    rows = (
        await session.execute(
            select(e.event_id, e.case_id, e.type, e.version, e.occurred_at, e.data)
            .where(e.case_id.in_(cases))
            .order_by(e.case_id)
        )
    ).all()
    events: dict[str, list[CaseEventRecord]] = {}
    for r in rows:
        events.setdefault(str(r.case_id), []).append(event_record(r))
    facts = [reduce_events(history) for history in events.values()]
    report = accountability_report(
        period=period, as_of=as_of, facts=facts, events=events, calendar=calendar, rules=rules
    )
    joint = await load_operation_findings(session=session, period=period, as_of=as_of, township=township)
    return with_findings(report, joint, covers="joint_operations")  # 联合执法未报到


async def accountability_view(
    *,
    session: AsyncSession,
    period: Period,
    viewer: Viewer,
    township: str | None,
    calendar: WorkingCalendar,
    now: datetime,
) -> dict[str, object]:
    """The report as the API answers it: the signed-off one if the period is signed off, else live as of
    ``now`` (or the period's end, if it has ended). A township-bound viewer sees its township only
    (asking for another is :class:`~services.metrics.access.OutOfScopeError`). 问责报告（已签发则为冻结版）。"""
    township = narrowed(viewer, "township", township)
    frozen = (
        await session.execute(
            select(period_signoffs.c.accountability, period_signoffs.c.signed_at).where(
                period_signoffs.c.period_id == period.id
            )
        )
    ).first()
    if frozen is not None and frozen.accountability is not None:
        answer = dict(frozen.accountability)
        answer["findings"] = [f for f in answer["findings"] if township is None or f["township"] == township]
        return {**answer, "township": township, "signed_off": True, "signed_at": frozen.signed_at.isoformat()}
    report = await load_report(
        session=session, period=period, as_of=min(now, period.end), township=township, calendar=calendar
    )
    return {**report.as_json(), "township": township, "signed_off": False, "signed_at": None}


def report_xlsx(report: Mapping[str, object], *, title: str, unit_names: Mapping[str, str]) -> bytes:
    """The report (as :func:`accountability_view` answers it) as a spreadsheet 导出 XLSX: one row per
    finding, its cases listed."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "监督问责"
    ws.append([title])
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    state = "已签发（冻结）" if report.get("signed_off") else "实时"
    ws.append([f"周期 {report['period']}，截至 {report['as_of']}，{state}"])
    ws.append([])
    ws.append(["问责事项", "单位/部门", "乡镇/街道", "案件数", "案件", "联合执法"])
    for cell in ws[4]:
        cell.font = Font(bold=True)
    findings = report.get("findings")
    for finding in findings if isinstance(findings, list) else []:
        unit = finding["unit"] or ""
        ws.append(
            [
                KIND_LABELS[finding["kind"]],
                unit_names.get(unit, unit),
                finding["township"] or "",
                finding["count"],
                "、".join(finding["cases"]),
                "、".join(str(o["operation_id"]) for o in finding.get("operations") or ()),
            ]
        )
    not_covered = report.get("not_covered")
    if isinstance(not_covered, list) and "joint_operations" in not_covered:
        ws.append([])
        ws.append(["联合执法未报到：平台尚未接入联合执法，本项暂不统计"])
    for letter, width in zip("ABCDEF", (22, 28, 14, 8, 80, 40), strict=True):
        ws.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
