"""The routing memo (路由记忆化): pure lookups of one jurisdiction snapshot and calendar, memoised.

:func:`services.dispatch.routing.route` asks a :class:`RoutingMemo` where a point lies, which
matter a source's category is, which rule matches, the candidate chain and the deadline; a batch
of reports (or a what-if over a year) shares one memo, so each answer is worked out once. Pure: no
I/O. 路由所需纯查询的记忆化：一批报告（或一次推演）共用，每个答案只算一次。纯模块，无 I/O。
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime, tzinfo
from typing import Any, Literal

import numpy as np

from services.dispatch.candidates import Candidate, unit_candidates
from services.dispatch.classification import matter_for_source
from services.dispatch.deadlines import DeadlineFacts, deadline_facts
from services.dispatch.placement import Placement, where_zh
from services.dispatch.rules import RuleFacts, first_matching_rule
from shared.calendar import SHANGHAI, WorkingCalendar
from shared.jurisdiction import DeadlineAmount, DevolutionEntry, JurisdictionSnapshot, Matter, Rule
from shared.locator import LocateResult

__all__ = ["RoutingMemo", "fmt_moment"]


def fmt_moment(moment: datetime | None) -> str:
    """A moment as the explanations write it: Shanghai time to the minute, ``—`` for none. 说明中的时间写法。"""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment is not None else "—"


class RoutingMemo:
    """Memoised pure lookups of one snapshot and calendar, shared by many :func:`route` calls.

    同一快照与日历下纯查询的记忆化（供多次 :func:`route` 调用共享）：坐标落格（按批向量化）、
    规则匹配、候选链、时限计算与时间格式化。Every cached value is what the uncached call
    returns (the functions are pure, the snapshot and the calendar immutable), so a decision
    is the same with or without a memo. Tables are bounded (cleared when full).
    缓存值与直接调用结果相同；各表有上限，满则清空。

    :meth:`prime_points` locates a whole batch of points at once
    (:meth:`shared.locator.Locator.locate_many`, the same answers as point by point).
    一批坐标一次向量化定位（结果与逐点定位相同）。
    """

    __slots__ = (
        "_candidates",
        "_classified",
        "_deadlines",
        "_fmt",
        "_points",
        "_rules",
        "_where",
        "calendar",
        "snapshot",
    )

    #: Entries per table before it is cleared. 每张表的条目上限。
    LIMIT = 4096
    #: Located points kept (several batches in flight). 保留的已定位坐标数（多个批次同时在途）。
    POINTS_LIMIT = 16_384

    def __init__(self, snapshot: JurisdictionSnapshot, calendar: WorkingCalendar) -> None:
        self.snapshot = snapshot
        self.calendar = calendar
        self._points: dict[tuple[float, float], LocateResult | None] = {}
        self._rules: dict[RuleFacts, Rule | None] = {}
        self._candidates: dict[tuple[str, str, str | None, DevolutionEntry | None], tuple[Candidate, ...]] = {}
        self._classified: dict[tuple[str, str], Matter | None] = {}
        self._deadlines: dict[tuple[datetime, tzinfo | None, DeadlineAmount, str], DeadlineFacts] = {}
        self._fmt: dict[datetime, str] = {}
        self._where: dict[Placement, str] = {}

    def serves(self, snapshot: JurisdictionSnapshot, calendar: WorkingCalendar) -> bool:
        """Whether this memo was built for ``snapshot`` and ``calendar``. 是否属于该快照与日历。"""
        return self.snapshot is snapshot and self.calendar is calendar

    def _put(self, table: dict[Any, Any], key: Hashable, value: Any) -> None:
        if len(table) >= self.LIMIT:
            table.clear()
        table[key] = value

    def prime_points(self, points: Sequence[tuple[float, float]]) -> None:
        """Locate ``(lng, lat)`` points in one vectorised query, for :meth:`locate`. 向量化定位一批坐标。"""
        if not points:
            return
        if len(self._points) + len(points) > self.POINTS_LIMIT:
            self._points = {}
        lngs = np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points))
        lats = np.fromiter((p[1] for p in points), dtype=np.float64, count=len(points))
        hits = self.snapshot.locator.locate_many(lngs, lats)
        self._points.update(zip(points, hits, strict=True))

    def locate(self, lng: float, lat: float) -> LocateResult | None:
        """:meth:`JurisdictionSnapshot.locate`, from the primed batch when there. 坐标定位。"""
        key = (lng, lat)
        if key in self._points:
            return self._points[key]
        return self.snapshot.locate(lng, lat)

    def classify(self, source: str, category_key: str) -> Matter | None:
        """Step 2 for a source and category key. 定性（记忆化）。"""
        key = (source, category_key)
        try:
            return self._classified[key]
        except KeyError:
            pass
        code = matter_for_source(self.snapshot, source, category_key)
        found = self.snapshot.matter(code) if code is not None else None
        self._put(self._classified, key, found)
        return found

    def first_matching_rule(self, facts: RuleFacts) -> Rule | None:
        """:func:`~services.dispatch.rules.first_matching_rule`. 第一条命中的规则（记忆化）。"""
        try:
            return self._rules[facts]
        except KeyError:
            pass
        rule = first_matching_rule(self.snapshot, facts)
        self._put(self._rules, facts, rule)
        return rule

    def candidates(
        self, matter: Matter, township: str, rule: Rule | None, entry: DevolutionEntry | None = None
    ) -> tuple[Candidate, ...]:
        """:func:`~services.dispatch.candidates.unit_candidates` (rule unit, then the jurisdiction chain).

        候选列表（记忆化）。
        """
        key = (matter.code, township, rule.id if rule is not None else None, entry)
        try:
            return self._candidates[key]
        except KeyError:
            pass
        listed = tuple(unit_candidates(self.snapshot, matter, township, rule, entry))
        self._put(self._candidates, key, listed)
        return listed

    def deadline_facts(
        self, now: datetime, amount: DeadlineAmount, basis: Literal["working", "natural"]
    ) -> DeadlineFacts:
        """Step 5's calendar arithmetic from ``now`` (:func:`deadlines.deadline_facts`). 时限计算（记忆化）。"""
        key = (now, now.tzinfo, amount, basis)
        try:
            return self._deadlines[key]
        except KeyError:
            pass
        facts = deadline_facts(self.calendar, now, amount, basis)
        self._put(self._deadlines, key, facts)
        return facts

    def fmt(self, moment: datetime) -> str:
        """:func:`fmt_moment`. 时间格式化（记忆化）。"""
        try:
            return self._fmt[moment]
        except KeyError:
            pass
        text = fmt_moment(moment)
        self._put(self._fmt, moment, text)
        return text

    def where_zh(self, placement: Placement) -> str:
        """:func:`~services.dispatch.placement.where_zh`. 定位说明（记忆化）。"""
        try:
            return self._where[placement]
        except KeyError:
            pass
        text = where_zh(self.snapshot, placement)
        self._put(self._where, placement, text)
        return text
