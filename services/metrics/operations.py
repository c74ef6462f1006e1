"""联合执法 in 监督问责: which units let a joint operation down, folded from ``operation.events`` (pure: no I/O).

Dispatch records the facts (``services/dispatch/forces``, published on ``operation.events``): a unit's
报到 after the operation's start is **late** (迟到, the ``late`` flag of its ``operation.confirmed``), and
the units that never confirmed are **absent** (缺席/未报到, the ``absent`` list of
``operation.concluded``). This module turns one operation's events into its lapses and the lapses of a
period into the report's findings:

- :func:`fold_operation` — one operation's events (any order, duplicates allowed: each carries the
  operation's state after it, and the fold keeps the latest by version) → its :class:`Lapse` es:
  one per late confirmation, at the confirmation's time (also in an operation cancelled later: the
  unit came late to an operation that had started); one per absent unit, at the conclusion's time
  (a cancelled operation records nobody absent);
- :func:`operation_findings` — the lapses of a scope → findings of the period in which each lapse
  *happened* (no-show: the period the operation concluded in; late: the period of the confirmation),
  per (kind, township, unit), each listing its operations and the cases linked to them.

联合执法未报到：迟到报到按报到时间、缺席按结束时间归入周期；每个单位一行，列出联合执法及其关联案件。
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from services.metrics.accountability import Finding, FindingKind
from services.metrics.periods import TZ, Period

__all__ = ["KIND_OF", "Lapse", "LapseKind", "OperationEventRecord", "fold_operation", "operation_findings"]

LapseKind = Literal["absent", "late"]

#: The report's finding kind of each lapse. 失职类型对应的问责事项。
KIND_OF: Final[dict[LapseKind, FindingKind]] = {"absent": "operation_absent", "late": "operation_late"}


@dataclass(frozen=True, slots=True)
class OperationEventRecord:
    """One stored ``operation.*`` event 联合执法事件; ``data`` is the payload as JSON."""

    event_id: str
    operation_id: str
    type: str
    version: int
    occurred_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Lapse:
    """A unit that did not confirm an operation in time 联合执法失职: absent or late, when, and the
    operation it concerns (township, lead unit, window, linked cases)."""

    operation_id: str
    unit: str
    kind: LapseKind
    at: datetime
    township: str
    lead_unit: str
    starts_at: datetime
    ends_at: datetime
    cases: tuple[str, ...]


def _moment(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=TZ) if value.tzinfo is None else value


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=TZ) if at.tzinfo is None else at


def fold_operation(events: Iterable[OperationEventRecord]) -> list[Lapse]:
    """One operation's lapses from its events (see the module doc). 由一次联合执法的事件得出迟到与缺席。"""
    unique = {e.event_id: e for e in events}
    ordered = sorted(unique.values(), key=lambda e: (e.version, _aware(e.occurred_at), e.event_id))
    if not ordered:
        return []
    latest = ordered[-1].data  # the operation as it stands after its last transition
    starts_at, ends_at = _moment(latest.get("starts_at")), _moment(latest.get("ends_at"))
    township, lead = latest.get("township"), latest.get("lead_unit")
    if starts_at is None or ends_at is None or not isinstance(township, str) or not isinstance(lead, str):
        return []
    cases = tuple(sorted({str(c) for c in latest.get("cases") or ()}))

    def lapse(unit: str, kind: LapseKind, at: datetime) -> Lapse:
        return Lapse(ordered[0].operation_id, unit, kind, at, township, lead, starts_at, ends_at, cases)

    out: list[Lapse] = []
    seen: set[str] = set()
    concluded_at: datetime | None = None
    for e in ordered:
        unit = e.data.get("unit")
        if e.type == "operation.confirmed" and isinstance(unit, str) and unit not in seen:
            seen.add(unit)  # a unit confirms once; the first record of it counts
            at = _aware(e.occurred_at)
            late = e.data.get("late")
            if late is True or (late is None and at > starts_at):
                out.append(lapse(unit, "late", at))
        elif e.type == "operation.concluded" and concluded_at is None:
            concluded_at = _aware(e.occurred_at)
    if latest.get("state") == "concluded" and concluded_at is not None:
        out.extend(lapse(u, "absent", concluded_at) for u in latest.get("absent") or () if isinstance(u, str))
    return out


def _operation_item(lapse: Lapse) -> dict[str, object]:
    """An operation behind a finding; times in Beijing time 北京时间."""
    return {
        "operation_id": lapse.operation_id,
        "at": lapse.at.astimezone(TZ).isoformat(),
        "lead_unit": lapse.lead_unit,
        "starts_at": lapse.starts_at.astimezone(TZ).isoformat(),
        "ends_at": lapse.ends_at.astimezone(TZ).isoformat(),
        "cases": list(lapse.cases),
    }


def operation_findings(lapses: Iterable[Lapse], *, period: Period, as_of: datetime) -> list[Finding]:
    """The findings of ``period`` as known at ``as_of``: per (kind, township, unit), its operations in
    time order (each with its linked cases) and the cases of all of them. 本周期的联合执法问责事项。"""
    grouped: dict[tuple[LapseKind, str, str], dict[str, Lapse]] = defaultdict(dict)
    for lapse in lapses:
        if period.start <= lapse.at < period.end and lapse.at <= as_of:
            grouped[(lapse.kind, lapse.township, lapse.unit)].setdefault(lapse.operation_id, lapse)
    findings = []
    for (kind, township, unit), by_operation in grouped.items():
        items = sorted(by_operation.values(), key=lambda x: (x.at, x.operation_id))
        cases = sorted({c for x in items for c in x.cases})
        findings.append(Finding(KIND_OF[kind], township, unit, cases, [_operation_item(x) for x in items]))
    return findings
