"""监督问责 — the accountability report: who let cases slip, in one period, with the cases behind it.

Pure: it takes the case facts and each case's events (the caller loads them) and returns the
findings; no I/O. Every finding names its unit or department and lists its cases, and belongs to
the period in which it *happened* (a rejection overturned in March is March's, even for a case
reported in February):

- **repeated overdue 多次超期** — units whose cases went past their deadline (deadline in the
  period, finished late or still open) at least ``repeated_overdue_min`` times (default 3); and
  cases overdue more than once (marked overdue again after an extension 延期后再次超期);
- **overturned rejections 退单被驳回** — a dispatcher ruled the unit's 退单 invalid (no valid
  reason), per unit;
- **whistles not answered 吹哨未按时报到** — a county department escalated to (吹哨) that did not
  报到 by its 报到 deadline, per department;
- **supervision not acted on 督办未响应** — after a 督办 the holder did nothing (签收, 退单, 延期申请,
  办结, 报到) within ``supervision_limit_working_days`` working days (default 1);
- **reopened or reworked more than once 多次重办/返工** — per case, counted when the second one
  happens.

- **joint-operation units that did not confirm 联合执法未报到** — units absent from a joint operation
  (counted in the period it concluded) and units that confirmed late (the period of the
  confirmation), per unit, each listing its operations and their cases; folded from
  ``operation.events`` by :mod:`services.metrics.operations` and added with :func:`with_findings`.

Without the operations (:func:`accountability_report` alone) the report says that section is not
covered rather than showing it empty as if nobody failed to confirm. Rules follow the team's domain
notes ("监督问责 — the accountability report").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final, Literal

from services.metrics.facts import CaseEventRecord, CaseFact, completion_time
from services.metrics.periods import EARLIEST, TZ, Period
from services.metrics.source_facts import in_unit_indicators
from shared.calendar import WorkingCalendar

FindingKind = Literal[
    "repeated_overdue",
    "overdue_again",
    "rejection_overturned",
    "whistle_unanswered",
    "supervision_ignored",
    "reopened_repeatedly",
    "operation_absent",
    "operation_late",
]

#: Chinese names of the sections 问责事项名称.
KIND_LABELS: Final[dict[str, str]] = {
    "repeated_overdue": "多次超期（单位）",
    "overdue_again": "延期后再次超期（案件）",
    "rejection_overturned": "退单被判无效",
    "whistle_unanswered": "吹哨未按时报到",
    "supervision_ignored": "督办未响应",
    "reopened_repeatedly": "多次重办/返工",
    "operation_absent": "联合执法未报到（缺席）",
    "operation_late": "联合执法迟到报到",
}

#: What counts as the holder acting on a case after a 督办.
_ACTS: Final = frozenset(
    {
        "case.accepted",
        "case.rejected",
        "case.extension_requested",
        "case.resolved",
        "case.reported_in",
        "case.self_handled",
        "case.closed",
    }
)


#: The fact fields the rules read (a loader needs no others). 规则读取的案件事实字段。
FACT_FIELDS: Final = (
    "case_id",
    "township",
    "unit",
    "deadline",
    "resolved_at",
    "closed_at",
    "merged_into",
    "kind",
    "invalid",
    "auto_recovered",
)

#: Events whose own time is when their finding happens (the second 超期 mark, a 判定退单, the second
#: 重办/返工): a case can have such a finding in a period only with one of these in it.
HAPPENS_AT: Final = frozenset({"case.overdue", "case.rejection_ruled", "case.reopened", "case.verified"})

#: What the whistle rule reads: each 吹哨 and the 报到 after it. 吹哨规则读取的事件。
WHISTLE_TYPES: Final = frozenset({"case.escalated", "case.reported_in"})


@dataclass(frozen=True, slots=True)
class AccountabilityRules:
    """Thresholds of the report 问责阈值 (defaults from the team's domain notes)."""

    repeated_overdue_min: int = 3
    supervision_limit_working_days: int = 1


@dataclass(slots=True)
class Finding:
    """One line of the report 问责事项: a unit (or a case) and the cases behind it; for a joint-operation
    finding also its operations 联合执法 (then ``count`` counts the operations)."""

    kind: FindingKind
    township: str | None
    unit: str | None
    cases: list[str] = field(default_factory=list)
    operations: list[dict[str, object]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.operations) if self.operations else len(self.cases)


@dataclass(frozen=True, slots=True)
class AccountabilityReport:
    """The report of one period 问责报告: findings in a stable order, and what it cannot cover yet."""

    period_id: str
    as_of: datetime
    findings: tuple[Finding, ...]
    not_covered: tuple[str, ...] = ("joint_operations",)

    def as_json(self) -> dict[str, object]:
        """The report as the API answers it and as a sign-off freezes it 冻结快照."""
        return {
            "period": self.period_id,
            "as_of": self.as_of.isoformat(),
            "findings": [
                {
                    "kind": f.kind,
                    "label": KIND_LABELS[f.kind],
                    "township": f.township,
                    "unit": f.unit,
                    "count": f.count,
                    "cases": list(f.cases),
                    "operations": [dict(o) for o in f.operations],
                }
                for f in self.findings
            ],
            "not_covered": list(self.not_covered),
        }


def _moment(value: object) -> datetime | None:
    """An event's time field: ISO text or datetime, naive read as Beijing time; None if unreadable."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=TZ) if value.tzinfo is None else value


def _in(period: Period, moment: datetime | None, as_of: datetime) -> bool:
    return moment is not None and period.start <= moment < period.end and moment <= as_of


def _events_of(events: Iterable[CaseEventRecord]) -> list[CaseEventRecord]:
    """A case's events once each, in the reducer's fold order (:meth:`CaseEventRecord.sort_key`)."""
    unique = {e.event_id: e for e in events}
    return sorted(unique.values(), key=CaseEventRecord.sort_key)


def _overdue_in_period(fact: CaseFact, period: Period, as_of: datetime) -> bool:
    """The case went past its deadline in the period: deadline inside it, finished late or still open."""
    if fact.deadline is None or not _in(period, fact.deadline, as_of):
        return False
    done = completion_time(fact)
    return done is None or done > fact.deadline or done > as_of


def _overdue_again(events: Sequence[CaseEventRecord], period: Period, as_of: datetime) -> bool:
    marks = [e.occurred_at for e in events if e.type == "case.overdue"]
    return len(marks) >= 2 and _in(period, marks[1], as_of)


def _overturned(events: Sequence[CaseEventRecord], period: Period, as_of: datetime, holder: str | None) -> list[str]:
    units = []
    for e in events:
        if e.type != "case.rejection_ruled" or not _in(period, e.occurred_at, as_of):
            continue
        valid = e.data.get("valid", e.data.get("rejection_valid"))
        unit = e.data.get("rejected_unit") or holder
        if valid is False and isinstance(unit, str):
            units.append(unit)
    return units


def _unanswered_whistles(events: Sequence[CaseEventRecord], period: Period, as_of: datetime) -> list[str]:
    """Departments whose 报到 deadline fell in the period and passed without a 报到 by then."""
    departments = []
    for i, e in enumerate(events):
        if e.type != "case.escalated":
            continue
        department = e.data.get("department")
        raw = e.data.get("report_deadline") or (e.data.get("details") or {}).get("report_deadline")
        if not isinstance(department, str) or raw is None:
            continue
        due = _moment(raw)
        if due is None or not _in(period, due, as_of):
            continue
        answered = any(
            later.type == "case.reported_in" and later.occurred_at <= due for later in events[i + 1 :]
        )
        if not answered:
            departments.append(department)
    return departments


def _ignored_supervisions(
    events: Sequence[CaseEventRecord],
    period: Period,
    as_of: datetime,
    calendar: WorkingCalendar,
    rules: AccountabilityRules,
) -> list[str | None]:
    """Holders that did not act within the limit after a 督办 whose limit fell in the period."""
    holders = []
    holder: str | None = None
    for i, e in enumerate(events):
        unit = e.data.get("unit")
        if isinstance(unit, str):
            holder = unit
        if e.type != "case.supervised":
            continue
        due = calendar.add_working_days(e.occurred_at, rules.supervision_limit_working_days)
        if not _in(period, due, as_of):
            continue
        acted = any(later.type in _ACTS and later.occurred_at <= due for later in events[i + 1 :])
        if not acted:
            holders.append(holder)
    return holders


def earliest_supervision(period: Period, calendar: WorkingCalendar, rules: AccountabilityRules) -> datetime:
    """A time before which no 督办 can have its limit in ``period``: the limit (``add_working_days``) is
    never earlier than the 督办 and moves forward with it, so once a day's limit falls before the
    period, every earlier 督办's does too. 限时可能落入本期的最早督办时间（此前的督办限时均在本期之前）。"""
    moment = period.start
    for _ in range(3660):
        moment -= timedelta(days=1)
        if calendar.add_working_days(moment, rules.supervision_limit_working_days) < period.start:
            return moment
    return EARLIEST


def _failed_verification(event: CaseEventRecord) -> bool:
    """核查不通过 (返工)."""
    return event.type == "case.verified" and event.data.get("passed", event.data.get("verification_passed")) is False


def _second_reopen_or_rework(events: Sequence[CaseEventRecord], period: Period, as_of: datetime) -> bool:
    times = [e.occurred_at for e in events if e.type == "case.reopened" or _failed_verification(e)]
    return len(times) >= 2 and _in(period, times[1], as_of)


def accountability_report(
    *,
    period: Period,
    as_of: datetime,
    facts: Iterable[CaseFact],
    events: Mapping[str, Iterable[CaseEventRecord]],
    calendar: WorkingCalendar,
    rules: AccountabilityRules | None = None,
) -> AccountabilityReport:
    """The 监督问责 report of ``period`` as known at ``as_of`` (findings after ``as_of`` are left out).

    ``facts``: the cases of the caller's scope (merged cases are skipped); ``events``: each case's
    events by case id. Findings are sorted by kind, then by count (most first), then by unit.
    """
    rules = rules or AccountabilityRules()
    grouped: dict[tuple[FindingKind, str | None, str | None], list[str]] = defaultdict(list)
    for fact in facts:
        if fact.merged_into is not None or not in_unit_indicators(fact):
            continue
        history = _events_of(events.get(fact.case_id, ()))
        place = fact.township
        if _overdue_in_period(fact, period, as_of):
            grouped[("repeated_overdue", place, fact.unit)].append(fact.case_id)
        if _overdue_again(history, period, as_of):
            grouped[("overdue_again", place, fact.unit)].append(fact.case_id)
        for unit in _overturned(history, period, as_of, fact.unit):
            grouped[("rejection_overturned", place, unit)].append(fact.case_id)
        for department in _unanswered_whistles(history, period, as_of):
            grouped[("whistle_unanswered", place, department)].append(fact.case_id)
        for holder in _ignored_supervisions(history, period, as_of, calendar, rules):
            grouped[("supervision_ignored", place, holder)].append(fact.case_id)
        if _second_reopen_or_rework(history, period, as_of):
            grouped[("reopened_repeatedly", place, fact.unit)].append(fact.case_id)
    findings = [
        Finding(kind, township, unit, sorted(set(cases)))
        for (kind, township, unit), cases in grouped.items()
        if kind != "repeated_overdue" or len(set(cases)) >= rules.repeated_overdue_min
    ]
    return AccountabilityReport(period_id=period.id, as_of=as_of, findings=tuple(_sorted(findings)))


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    order = list(KIND_LABELS)
    return sorted(findings, key=lambda f: (order.index(f.kind), -f.count, f.unit or "", f.township or ""))


def with_findings(report: AccountabilityReport, extra: Iterable[Finding], *, covers: str) -> AccountabilityReport:
    """The report with more findings (e.g. the joint operations') in the same order, and the section
    ``covers`` no longer listed as not covered. 并入其他来源的问责事项。"""
    return replace(
        report,
        findings=tuple(_sorted([*report.findings, *extra])),
        not_covered=tuple(k for k in report.not_covered if k != covers),
    )
