"""What-if over a past period 模拟调整（读库）: load the period's cases grouped, run :mod:`whatif`, export.

Reads only — no writes, no events. Two grouped reads of ``cases`` (reported in the period,
not merged 并案, not self-handled 自办): the cases outside the proposal by recorded unit, matter,
urgency and rule; the cases of the proposed (township, matter) pairs by every fact the unit step
reads (grid, source, appeal type, urgency, report day in Asia/Shanghai, and which rule keywords
occur in the title and description — found by PostgreSQL, so no text leaves the database; its
``lower()`` stands for Python's ``casefold()``, the same for Chinese and ASCII keywords).
只读：两条分组查询；提案涉及的案件按单位决策所需要素分组，关键词在数据库内匹配。
Use cases take keyword-only arguments and never commit. 用例只读、不提交。
"""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.whatif import AffectedGroup, SettledGroup, WhatIf, keyword_list, proposed_snapshot, what_if
from shared.jurisdiction import Problem
from shared.jurisdiction.devolution import MODE_LABELS, ProposedItem

__all__ = [
    "XLSX_MEDIA_TYPE",
    "WhatIfInvalidError",
    "WhatIfRequest",
    "load_groups",
    "run_what_if",
    "to_xlsx",
]

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The longest period one what-if covers. 单次模拟的最长期间。
MAX_PERIOD_DAYS: Final = 366


class WhatIfRequest(BaseModel):
    """A proposal and a past period 提案与历史期间 (``reported_to`` inclusive, Asia/Shanghai days)."""

    model_config = ConfigDict(extra="forbid")

    items: list[ProposedItem] = Field(min_length=1, max_length=5000, description="proposed modes 提案各项")
    reported_from: date = Field(description="first report day of the period 期间首日")
    reported_to: date = Field(description="last report day of the period (inclusive) 期间末日（含）")
    threshold_pct: float = Field(20.0, ge=0, le=10_000, description="flag townships whose load grows more 阈值（%）")

    @model_validator(mode="after")
    def _period(self) -> WhatIfRequest:
        if self.reported_to < self.reported_from:
            raise ValueError("reported_to is before reported_from")
        if (self.reported_to - self.reported_from).days >= MAX_PERIOD_DAYS:
            raise ValueError(f"the period is longer than {MAX_PERIOD_DAYS} days")
        return self


class WhatIfInvalidError(ValueError):
    """The proposal names unknown things or a township without the function's unit. 提案无效。"""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


def _bounds(request: WhatIfRequest) -> tuple[datetime, datetime]:
    start = datetime.combine(request.reported_from, time(0), _SHANGHAI)
    return start, datetime.combine(request.reported_to + timedelta(days=1), time(0), _SHANGHAI)


#: Counted cases: reported in the period, not merged, not self-handled. 计入的案件。
_COUNTED = (
    "reported_at >= :start AND reported_at < :end AND merged_into IS NULL "
    "AND (unit IS NOT NULL OR triage_reason IS NOT NULL)"
)
_PAIR = "(coalesce(township, '') || '/' || coalesce(matter, ''))"


async def load_groups(
    *, session: AsyncSession, request: WhatIfRequest, keywords: tuple[str, ...]
) -> tuple[list[SettledGroup], list[AffectedGroup]]:
    """The period's cases outside the proposal (by unit) and inside it (by routing facts). 分组读取。"""
    start, end = _bounds(request)
    pairs = sorted({f"{i.township}/{i.matter}" for i in request.items})
    params: dict[str, Any] = {"start": start, "end": end, "pairs": pairs}
    settled_rows = await session.execute(
        text(
            f"SELECT unit, matter, urgency, rule_id, count(*) AS n FROM dispatch.cases "
            f"WHERE {_COUNTED} AND NOT ({_PAIR} = ANY(:pairs)) GROUP BY unit, matter, urgency, rule_id"
        ),
        params,
    )
    settled = [SettledGroup(r.unit, r.matter, r.urgency, r.rule_id, int(r.n)) for r in settled_rows]
    hits = "''"
    if keywords:
        body = "lower(coalesce(incident->>'title', '') || chr(10) || coalesce(incident->>'description', ''))"
        marks = [f"CASE WHEN strpos({body}, :kw{i}) > 0 THEN '1' ELSE '0' END" for i in range(len(keywords))]
        hits = " || ".join(marks)
        params.update({f"kw{i}": kw for i, kw in enumerate(keywords)})
    affected_rows = await session.execute(
        text(
            f"SELECT township, matter, grid, source, incident->>'appeal_type' AS appeal_type, urgency, "
            f"(reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, {hits} AS hits, count(*) AS n "
            f"FROM dispatch.cases WHERE {_COUNTED} AND {_PAIR} = ANY(:pairs) "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
        ),
        params,
    )
    affected = [
        AffectedGroup(
            township=r.township,
            matter=r.matter,
            grid=r.grid,
            source=r.source,
            appeal_type=r.appeal_type,
            urgency=r.urgency,
            day=r.day,
            keywords=frozenset(kw for kw, hit in zip(keywords, r.hits, strict=True) if hit == "1"),
            cases=int(r.n),
        )
        for r in affected_rows
    ]
    return settled, affected


async def run_what_if(
    *, session: AsyncSession, jurisdiction: LoadedJurisdiction, request: WhatIfRequest
) -> dict[str, Any]:
    """The what-if of ``request`` on the current jurisdiction (reads only). 执行模拟（只读）。

    Raises :class:`WhatIfInvalidError` listing every problem of the proposal. 提案有误时列出全部问题。
    """
    before = jurisdiction.snapshot
    after, problems = proposed_snapshot(before, request.items)
    if problems:
        raise WhatIfInvalidError(problems)
    settled, affected = await load_groups(session=session, request=request, keywords=keyword_list(before))
    result: WhatIf = what_if(
        before=before,
        after=after,
        calendar=jurisdiction.calendar,
        settled=settled,
        affected=affected,
        threshold_pct=request.threshold_pct,
    )
    return {
        "county_code": before.county_code,
        "jurisdiction_version": before.version,
        "reported_from": request.reported_from.isoformat(),
        "reported_to": request.reported_to.isoformat(),
        "threshold_pct": request.threshold_pct,
        "items": [i.model_dump(mode="json") for i in request.items],
        **result.to_dict(),
    }


def to_xlsx(answer: dict[str, Any]) -> bytes:
    """The what-if as a workbook: 提案, 改派, 单位负荷, 镇街负荷 (Chinese headers). 导出 xlsx。"""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "提案"
    sheet.append([f"模拟调整 {answer['county_code']}（{answer['reported_from']} 至 {answer['reported_to']}）"])
    sheet.append(["镇街", "事项", "方式"])
    for item in answer["items"]:
        sheet.append([item["township"], item["matter"], MODE_LABELS[item["mode"]]])
    sheet.append([])
    sheet.append(["案件数", answer["cases"], "涉及", answer["affected_cases"], "改派", answer["moved_cases"]])
    tables: list[tuple[str, list[str], list[str], list[dict[str, Any]]]] = [
        (
            "改派",
            ["事项", "事项名称", "原单位", "原单位名称", "新单位", "新单位名称", "案件数", "工时"],
            ["matter", "matter_name", "from_unit", "from_name", "to_unit", "to_name", "cases", "hours"],
            answer["moves"],
        ),
        (
            "单位负荷",
            [
                "单位",
                "名称",
                "类型",
                "镇街",
                "调整前案件",
                "调整后案件",
                "调整前工时",
                "调整后工时",
                "案件变化",
                "工时变化",
            ],
            [
                "unit",
                "name",
                "kind",
                "township",
                "cases_before",
                "cases_after",
                "hours_before",
                "hours_after",
                "cases_change",
                "hours_change",
            ],
            answer["units"],
        ),
        (
            "镇街负荷",
            [
                "镇街",
                "名称",
                "调整前案件",
                "调整后案件",
                "调整前工时",
                "调整后工时",
                "增长%",
                f"超过 {answer['threshold_pct']}%",
            ],
            [
                "township",
                "name",
                "cases_before",
                "cases_after",
                "hours_before",
                "hours_after",
                "growth_pct",
                "over_threshold",
            ],
            answer["townships"],
        ),
    ]
    for title, headers, keys, rows in tables:
        ws = book.create_sheet(title)
        ws.append(headers)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
        for row in rows:
            ws.append([("是" if row[k] else "否") if isinstance(row[k], bool) else row[k] for k in keys])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
