"""监督问责 report: loading its inputs, serving it (live, or frozen by a sign-off) and exporting it.
The rules are in ``accountability.py``; which cases and events they need is picked in SQL by
``accountability_sql.py`` (a superset: the cases a finding can come from in the period, the events of
the types their rules read), so the report reads a few rows per finding instead of every event of
every case touched in the period and its lookback.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.access import narrowed
from services.metrics.accountability import (
    FACT_FIELDS,
    KIND_LABELS,
    AccountabilityReport,
    AccountabilityRules,
    accountability_report,
    earliest_supervision,
    with_findings,
)
from services.metrics.accountability_sql import LOOKBACK, candidate_cases, case_event_rows, case_fact_rows
from services.metrics.facts import CaseEventRecord, CaseFact
from services.metrics.models import period_signoffs
from services.metrics.operation_store import load_operation_findings
from services.metrics.periods import Period
from services.metrics.store import event_record
from shared.calendar import WorkingCalendar
from shared.visibility import Viewer

__all__ = ["LOOKBACK", "accountability_view", "load_report", "report_xlsx"]


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
    rules = rules or AccountabilityRules()
    picked = (
        await session.execute(
            candidate_cases(
                period=period,
                as_of=as_of,
                township=township,
                supervised_from=earliest_supervision(period, calendar, rules),
            )
        )
    ).all()
    cases = [r.case_id for r in picked]
    events: dict[str, list[CaseEventRecord]] = {}
    if cases:
        supervised = [r.case_id for r in picked if r.supervised]
        rows = await session.stream(case_event_rows(cases=cases, supervised=supervised))
        async for page in rows.partitions(5_000):
            for r in page:
                events.setdefault(str(r.case_id), []).append(event_record(r))
    fact_rows = await session.execute(case_fact_rows(period=period, as_of=as_of, township=township, cases=cases))
    # Only the fields the rules read (FACT_FIELDS), as stored: the row is the consumer's fold of the events.
    facts = [CaseFact(**{**dict(zip(FACT_FIELDS, r, strict=True)), "case_id": str(r.case_id)}) for r in fact_rows]
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
