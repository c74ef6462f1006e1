"""A realistic, seeded set of case events for the 监督问责 report (used by
``test_accountability_equivalence.py``): N cases over 2026-07 … 2026-12 in four townships, each
event flat like dispatch's ``CaseEvent`` (it carries where the case stands), with every kind of
finding and the awkward spellings the rules read: ``valid`` / ``rejection_valid`` (and a null
``valid`` beside a false ``rejection_valid``), a missing or empty ``rejected_unit``, the 报到 deadline
top-level or in ``details``, with an offset, in UTC or naive, 报到 late or never, 督办 acted on or
not, several overdue marks after extensions, several 重办/返工, merged cases, events whose version
order is not their time order, whistles older than the report's 60-day lookback, and cases invalidated,
auto-recovered or of kind ``inspection`` (in no unit's indicators).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.metrics.facts import CaseEventRecord
from services.metrics.periods import TZ

TOWNSHIPS = ("T1", "T2", "T3", "T4")
DEPARTMENTS = ("D1", "D2", "D3")
FIRST = datetime(2026, 7, 1, tzinfo=TZ)


def _iso(moment: datetime, rng: random.Random) -> str:
    """The 报到 deadline as dispatch or an older publisher may have spelled it."""
    style = rng.random()
    if style < 0.6:
        return moment.isoformat()
    if style < 0.8:
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return moment.replace(tzinfo=None).isoformat()


class _Case:
    def __init__(self, rng: random.Random, index: int) -> None:
        self.rng = rng
        self.case_id = str(uuid.UUID(int=rng.getrandbits(128)))
        township = TOWNSHIPS[index % len(TOWNSHIPS)]
        self.cur: dict[str, Any] = {
            "township": township,
            "unit": f"{township}-U{rng.randint(1, 5)}",
            "unit_kind": "township_unit",
            "matter": "暴露垃圾",
            "source": "cityops",
            "urgency": "normal",
            "time_basis": "working",
            "reported_at": None,
            "deadline": None,
        }
        self.version = 1
        self.events: list[CaseEventRecord] = []

    def emit(self, type_: str, at: datetime, **data: Any) -> None:
        for key in list(data):
            if key in self.cur:
                self.cur[key] = data.pop(key)
        self.version += 1
        jitter = -timedelta(hours=3) if self.rng.random() < 0.04 else timedelta(0)  # version ≠ time order
        payload = {**self.cur, **data, "state": type_.removeprefix("case.")}
        self.events.append(
            CaseEventRecord(
                event_id=str(uuid.UUID(int=self.rng.getrandbits(128))),
                case_id=self.case_id,
                type=type_,
                occurred_at=at + jitter,
                version=self.version,
                data=payload,
            )
        )


def _reject(c: _Case, at: datetime) -> datetime:
    rng = c.rng
    unit = c.cur["unit"]
    c.emit("case.rejected", at, rejected_unit=unit, reason="不归我管")
    verdict = rng.choice([False, False, True, None])
    ruling: dict[str, Any] = {}
    spelling = rng.random()
    if spelling < 0.45:
        ruling["rejection_valid"] = verdict
    elif spelling < 0.85:
        ruling["valid"] = verdict
    else:  # a null ``valid`` wins over ``rejection_valid``
        ruling.update(valid=None, rejection_valid=False)
    who = rng.random()
    if who < 0.7:
        ruling["rejected_unit"] = unit
    elif who < 0.85:
        ruling["rejected_unit"] = ""
    at += timedelta(hours=rng.randint(1, 30))
    c.emit("case.rejection_ruled", at, **ruling)
    if verdict is True:
        at += timedelta(hours=1)
        c.emit("case.reassigned", at, unit=f"{c.cur['township']}-U{rng.randint(1, 5)}")
    return at


def _whistle(c: _Case, at: datetime) -> None:
    rng = c.rng
    department = rng.choice(DEPARTMENTS)
    due = at + timedelta(hours=rng.choice([4, 20, 26, 50]))
    spelled = _iso(due, rng)
    data: dict[str, Any] = {"unit": department, "unit_kind": "county_department", "department": department}
    if rng.random() < 0.5:
        data["details"] = {"report_deadline": spelled}
    elif rng.random() < 0.9:
        data["report_deadline"] = spelled
    c.emit("case.escalated", at, **data)
    answer = rng.random()
    if answer < 0.5:
        c.emit("case.reported_in", due - timedelta(hours=rng.randint(1, 3)))
    elif answer < 0.75:
        c.emit("case.reported_in", due + timedelta(hours=rng.randint(1, 40)))


def _supervise(c: _Case, at: datetime) -> None:
    rng = c.rng
    for _ in range(rng.choice([1, 1, 2])):
        at += timedelta(hours=rng.randint(2, 60))
        c.emit("case.supervised", at)
        if rng.random() < 0.6:
            at += timedelta(hours=rng.randint(1, 70))
            c.emit(rng.choice(["case.accepted", "case.extension_requested", "case.resolved"]), at)


def _overdue_marks(c: _Case, deadline: datetime) -> None:
    rng = c.rng
    marks = rng.choice([0, 1, 1, 2, 2, 3])
    at = deadline
    for i in range(marks):
        c.emit("case.overdue", at + timedelta(minutes=1))
        if i < marks - 1:
            at += timedelta(days=rng.randint(1, 12))
            c.emit("case.extended", at - timedelta(hours=2), deadline=at.isoformat())


def _finish(c: _Case, at: datetime) -> None:
    rng = c.rng
    if rng.random() < 0.12:
        return  # still open
    c.emit("case.resolved", at)
    for _ in range(rng.choice([0, 0, 0, 1, 2, 3])):
        at += timedelta(days=rng.randint(1, 20))
        if rng.random() < 0.5:
            key = rng.choice(["passed", "verification_passed"])
            c.emit("case.verified", at, **{key: False})
        else:
            c.emit("case.reopened", at, reason="回访不满意")
        at += timedelta(days=rng.randint(1, 5))
        c.emit("case.resolved", at)
    if rng.random() < 0.6:
        at += timedelta(days=1)
        c.emit("case.verified", at, verification_passed=True)
        c.emit("case.closed", at + timedelta(hours=1))


def _old_whistle(c: _Case, rng: random.Random, touched: bool) -> None:
    """A whistle 80 days before October with its 报到 deadline in October, never answered: the report
    sees it only when the case is otherwise touched in the lookback (or due in October)."""
    at = datetime(2026, 7, 12, 10, tzinfo=TZ)
    c.emit("case.dispatched", at, reported_at=at.isoformat(), deadline=(at + timedelta(days=200)).isoformat())
    due = datetime(2026, 10, 9, 10, tzinfo=TZ)
    c.emit("case.escalated", at + timedelta(hours=1), unit="D1", department="D1", report_deadline=_iso(due, rng))
    if touched:
        c.emit("case.accepted", datetime(2026, 9, 20, 10, tzinfo=TZ))


def generate(n: int, seed: int = 16) -> list[CaseEventRecord]:
    """The events of ``n`` cases (seeded: the same every run)."""
    rng = random.Random(seed)
    cases: list[_Case] = []
    for index in range(n):
        c = _Case(rng, index)
        cases.append(c)
        if index < 8:
            _old_whistle(c, rng, touched=index % 2 == 0)
            continue
        at = FIRST + timedelta(minutes=rng.randint(0, 150 * 24 * 60))
        deadline = at + timedelta(days=rng.randint(1, 8), hours=rng.randint(0, 8))
        c.emit("case.dispatched", at, reported_at=(at - timedelta(hours=1)).isoformat(), deadline=deadline.isoformat())
        if rng.random() < 0.2:
            at = _reject(c, at + timedelta(hours=1))
        if rng.random() < 0.8:
            at += timedelta(hours=rng.randint(1, 12))
            c.emit("case.accepted", at)
        if rng.random() < 0.15:
            at += timedelta(hours=rng.randint(1, 48))
            _whistle(c, at)
        if rng.random() < 0.2:
            _supervise(c, at)
        late = rng.random() < 0.4
        if late:
            _overdue_marks(c, deadline)
        _finish(c, deadline + timedelta(days=rng.randint(1, 15)) if late else at + timedelta(hours=rng.randint(2, 40)))
        source = rng.random()
        if source < 0.03:  # not in a unit's indicators, so in no finding (from the approval and alarm sources)
            c.emit(rng.choice(["case.invalidated", "case.auto_recovered"]), at + timedelta(hours=2))
        elif source < 0.05:
            c.emit("case.accepted", at + timedelta(hours=3), kind="inspection")
        if rng.random() < 0.02 and len(cases) > 10:
            c.emit("case.merged", at + timedelta(hours=1), into=cases[rng.randint(8, len(cases) - 2)].case_id)
    return [e for c in cases for e in c.events]


def odd_spellings(seed: int = 17) -> list[CaseEventRecord]:
    """Three November whistles, never answered, whose 报到 deadline (Wednesday 11-11 10:00) is spelled
    so that its date is not a leading ``YYYY-MM-DD`` (ISO basic, ISO week date), and one top-level
    empty beside a good one in ``details`` (the rule reads ``details``)."""
    rng = random.Random(seed)
    spellings: list[dict[str, Any]] = [
        {"report_deadline": "20261111T100000+0800"},
        {"details": {"report_deadline": "2026-W46-3T10:00"}},
        {"report_deadline": "", "details": {"report_deadline": "2026-11-11T10:00:00+08:00"}},
    ]
    events: list[CaseEventRecord] = []
    for index, spelled in enumerate(spellings):
        c = _Case(rng, index)
        at = datetime(2026, 11, 10, 9, tzinfo=TZ)
        c.emit("case.dispatched", at, reported_at=at.isoformat(), deadline=(at + timedelta(days=30)).isoformat())
        c.emit("case.escalated", at + timedelta(hours=1), unit="D2", department="D2", **spelled)
        events.extend(c.events)
    return events
