"""Score exports 考核结果导出: CSV and a real XLSX spreadsheet with Chinese headers 中文表头.

Both come from one table (:func:`score_table`): township, unit, kind, cases, status, score,
grade, ranks, each scheme part's points, every indicator's rate, the township rating and
what is missing. For a signed-off period the published figures are exported, with the latest
revision's score and grade beside them. CSV is UTF-8 with a BOM so Excel opens the Chinese
correctly; rates are percentages. The XLSX has a title block, frozen header, filters, number
formats (0.00 / 0.00%), and a sheet describing the scheme.
签发周期导出公布得分，并列出最新修订；CSV 带 BOM，XLSX 含标题、冻结表头、筛选与方案说明。
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from services.metrics.indicators import INDICATOR_IDS, INDICATOR_LABELS
from services.metrics.populations import POPULATION_LABELS
from services.metrics.scoring import TOWNSHIP_RATING, UNIT_KIND_LABELS, AssessmentScheme

__all__ = ["ScoreTable", "score_table", "to_csv", "to_xlsx"]

ColumnKind = Literal["text", "int", "score", "rate"]
XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class ScoreTable:
    """Headers, column kinds and rows of an export. 导出表。"""

    title: str
    subtitle: str
    headers: list[str]
    kinds: list[ColumnKind]
    rows: list[list[Any]]
    scheme: AssessmentScheme


def score_table(
    *,
    scheme: AssessmentScheme,
    period_id: str,
    as_of: str,
    rows: Sequence[Mapping[str, Any]],
    signed_off: Mapping[str, Any] | None,
    revised: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> ScoreTable:
    """Build the export table from score rows (``ScoreRow`` dicts). 由评分行构建导出表。"""
    parts = scheme.headers()
    columns: list[tuple[str, ColumnKind]] = [
        ("乡镇", "text"),
        ("单位编码", "text"),
        ("单位名称", "text"),
        ("单位类型", "text"),
        ("派遣案件数", "int"),
        ("状态", "text"),
        ("得分", "score"),
        ("等级", "text"),
        ("乡镇内排名", "int"),
        ("全县同类排名", "int"),
        ("部分得分（数据不完整）", "score"),
    ]
    columns += [(f"{label}（得分）", "score") for label in parts.values()]
    columns += [(INDICATOR_LABELS[i], "rate") for i in INDICATOR_IDS]
    if scheme.kind == "township_led":
        columns.append(("乡镇评价（0–100）", "score"))
    columns.append(("缺失项", "text"))
    if revised is not None:
        columns += [("修订得分", "score"), ("修订等级", "text"), ("修订状态", "text")]

    body: list[list[Any]] = []
    for r in rows:
        missing = [parts.get(m, INDICATOR_LABELS.get(m, m)) for m in r.get("missing", [])]
        line: list[Any] = [
            "全县" if r["township"] == "*" else r["township"],
            r["unit"],
            r.get("unit_name") or "",
            UNIT_KIND_LABELS.get(r["unit_kind"], r["unit_kind"]),
            r["cases"],
            r["status_label"],
            r.get("score"),
            r.get("grade") or "",
            r.get("rank_in_township"),
            r.get("rank_in_kind"),
            r.get("partial_score"),
        ]
        line += [r["parts"].get(p) for p in parts]
        line += [r["rates"].get(i) for i in INDICATOR_IDS]
        if scheme.kind == "township_led":
            line.append(r.get("township_rating"))
        line.append("、".join(missing))
        if revised is not None:
            rev = revised.get((r["unit"], r["township"]))
            line += [rev.get("score"), rev.get("grade") or "", rev.get("status_label", "")] if rev else [None, "", ""]
        body.append(line)

    state = f"已签发 {signed_off['signed_at']}" if signed_off else "未签发（实时计算）"
    return ScoreTable(
        title=f"{scheme.name}（{scheme.id} 第{scheme.version}版）{period_id} 考核结果",
        subtitle=f"统计截至 {as_of}；{state}；{scheme.description}".rstrip("；"),
        headers=[c[0] for c in columns],
        kinds=[c[1] for c in columns],
        rows=body,
        scheme=scheme,
    )


def _csv_value(value: Any, kind: ColumnKind) -> Any:
    if value is None:
        return ""
    if kind == "rate":
        return f"{value * 100:.2f}"
    if kind == "score":
        return f"{value:.2f}"
    return value


def to_csv(table: ScoreTable) -> bytes:
    """UTF-8 CSV with BOM; rate columns in percent (header marked %). 导出 CSV。"""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([h + "（%）" if k == "rate" else h for h, k in zip(table.headers, table.kinds, strict=True)])
    for row in table.rows:
        writer.writerow([_csv_value(v, k) for v, k in zip(row, table.kinds, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


_HEADER_FILL: Final = PatternFill("solid", fgColor="DDEBF7")
_FORMATS: Final[Mapping[ColumnKind, str]] = {"int": "0", "score": "0.00", "rate": "0.00%", "text": "@"}


def to_xlsx(table: ScoreTable) -> bytes:
    """A spreadsheet a township office can open: title, header, data, scheme sheet. 导出 XLSX。"""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "考核结果"
    width = len(table.headers)
    ws.cell(row=1, column=1, value=table.title).font = Font(bold=True, size=14)
    ws.cell(row=2, column=1, value=table.subtitle).font = Font(italic=True, color="555555")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    header_row = 4
    for col, header in enumerate(table.headers, start=1):
        cell = ws.cell(row=header_row, column=col, value=header)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for r, row in enumerate(table.rows, start=header_row + 1):
        for c, (value, kind) in enumerate(zip(row, table.kinds, strict=True), start=1):
            cell = ws.cell(row=r, column=c, value=value)
            if value is not None and kind != "text":
                cell.number_format = _FORMATS[kind]
    for c, header in enumerate(table.headers, start=1):
        ws.column_dimensions[get_column_letter(c)].width = max(10, min(28, len(header) * 2 + 2))
    ws.row_dimensions[header_row].height = 36
    ws.freeze_panes = ws.cell(row=header_row + 1, column=4)
    last = header_row + max(len(table.rows), 1)
    ws.auto_filter.ref = f"A{header_row}:{get_column_letter(width)}{last}"

    info = wb.create_sheet("方案说明")
    scheme = table.scheme
    info.append(["方案", scheme.name])
    info.append(["编号 / 版本", f"{scheme.id} / {scheme.version}"])
    info.append(["适用单位类型", "、".join(UNIT_KIND_LABELS.get(k, k) for k in scheme.unit_kinds)])
    info.append(["最少案件数（不足则“数据不足”）", scheme.min_cases])
    info.append(["等级线", "，".join(f"{b.grade} ≥ {b.min_score:g}" for b in scheme.grade_bands)])
    info.append([])
    info.append(["分项", "权重"])
    if scheme.kind == "township_led":
        info.append([scheme.headers()[TOWNSHIP_RATING], scheme.township_rating_weight])
    for item in scheme.indicators:
        info.append([scheme.headers()[item.indicator], item.weight])
    info.append(["合计", scheme.township_rating_weight + sum(i.weight for i in scheme.indicators)])
    info.append([])
    per_township = "（按乡镇分别计分）" if scheme.per_township else ""
    info.append(["考核口径", POPULATION_LABELS[scheme.population] + per_township])
    info.column_dimensions["A"].width = 34
    info.column_dimensions["B"].width = 40
    for row in info.iter_rows(min_row=7, max_row=7):
        for cell in row:
            cell.font = Font(bold=True)

    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
