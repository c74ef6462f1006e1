"""The dated devolution list 下放清单（动态调整）: which entry is in force on a day, and changes to it.

The team's domain notes ("Devolution that changes"): a devolution entry is
``{township, matter, mode: devolved | entrusted | assist, effective_from, effective_to?, document}``;
a case is routed by the list in force at its report time; a change writes history and never
rewrites it. The bundle's undated ``devolution`` lists count as ``devolved`` entries from the
bundle's ``effective_date`` (or from the start of the record when it has none), so bundles
without dated entries route exactly as before.
下放条目按上海日期生效；数据包中未注明日期的下放清单视为自数据包日期起的“下放”条目。

A change (:class:`DevolutionChangeItem`) says "from day D, matter M in township T is handled in
mode X" (``none``: the power is returned 收回). :func:`apply_change` turns the current entries
into the new ones — the entry in force on D is closed on D (its ``effective_to``), a new entry
starts on D — and lists the diff. Only days from D on are touched, and D must lie after the day
the change is recorded, so the list in force at any moment already past never changes.
变更只影响生效日及以后；生效日须晚于登记日，已过去的任一时刻的清单永不改变。

Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.jurisdiction.model import DevolutionEntry, JurisdictionBundle
from shared.jurisdiction.problems import Problem

__all__ = [
    "MODE_LABELS",
    "Applied",
    "ChangeMode",
    "DevolutionChange",
    "DevolutionChangeItem",
    "DevolutionIndex",
    "ProposedItem",
    "all_entries",
    "apply_change",
    "entry_dict",
    "entry_text",
    "in_force",
    "is_dated",
    "local_day",
    "proposal_entries",
]

_SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Chinese labels of the modes. 方式中文名。
MODE_LABELS: Mapping[str, str] = MappingProxyType(
    {"devolved": "下放", "entrusted": "委托", "assist": "协助", "none": "不下放（收回）"}
)

#: A change's mode: one of the entry modes, or ``none`` (returned 收回 / not devolved). 变更方式。
ChangeMode = Literal["devolved", "entrusted", "assist", "none"]


def local_day(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of an aware moment. 上海日期。"""
    return moment.astimezone(_SHANGHAI).date()


def in_force(entry: DevolutionEntry, day: date) -> bool:
    """Whether ``entry`` applies on ``day``: ``effective_from`` ≤ day < ``effective_to``. 当日是否有效。"""
    if entry.effective_from is not None and day < entry.effective_from:
        return False
    return entry.effective_to is None or day < entry.effective_to


def is_dated(entry: DevolutionEntry) -> bool:
    """Whether the entry carries a date or a 文号 (an undated list entry carries neither). 是否为带日期条目。"""
    return entry.effective_from is not None or entry.effective_to is not None or entry.document is not None


def entry_dict(entry: DevolutionEntry) -> dict[str, Any]:
    """JSON-ready form (dates as ISO text). 可序列化形式。"""
    return entry.model_dump(mode="json")


def entry_text(entry: DevolutionEntry) -> str:
    """The entry in a Chinese clause: 依据 文号，自 日期 起下放. 条目说明。"""
    parts = []
    if entry.document:
        parts.append(f"依据{entry.document}")
    if entry.effective_from is not None:
        parts.append(f"自 {entry.effective_from.isoformat()} 起{MODE_LABELS[entry.mode]}")
    if entry.effective_to is not None:
        parts.append(f"{entry.effective_to.isoformat()} 收回")
    return "，".join(parts)


def all_entries(bundle: JurisdictionBundle) -> tuple[DevolutionEntry, ...]:
    """Every entry of a bundle: the undated lists as ``devolved`` from the bundle's date, then the dated ones.

    数据包的全部条目：未注明日期的清单（自数据包日期起下放）与带日期条目。
    """
    legacy = (
        DevolutionEntry(township=t, matter=m, mode="devolved", effective_from=bundle.effective_date)
        for t, codes in bundle.devolution.items()
        for m in codes
    )
    return (*legacy, *bundle.devolution_entries)


class DevolutionIndex:
    """Entries by (township, matter), sorted by start: the entry in force at a moment. 条目索引。"""

    __slots__ = ("_by_pair",)

    def __init__(self, entries: Iterable[DevolutionEntry]) -> None:
        by_pair: dict[tuple[str, str], list[DevolutionEntry]] = defaultdict(list)
        for entry in entries:
            by_pair[(entry.township, entry.matter)].append(entry)
        self._by_pair: Mapping[tuple[str, str], tuple[DevolutionEntry, ...]] = MappingProxyType(
            {k: tuple(sorted(v, key=_start)) for k, v in by_pair.items()}
        )

    def at(self, township: str, matter: str, moment: datetime) -> DevolutionEntry | None:
        """The entry in force for (township, matter) on the Shanghai day of ``moment``. 某时刻有效的条目。"""
        return self.on(township, matter, local_day(moment))

    def on(self, township: str, matter: str, day: date) -> DevolutionEntry | None:
        """The entry in force for (township, matter) on ``day``. 某日有效的条目。"""
        for entry in self._by_pair.get((township, matter), ()):
            if in_force(entry, day):
                return entry
        return None

    def history(self, township: str, matter: str) -> tuple[DevolutionEntry, ...]:
        """Every entry of (township, matter), oldest first. 该镇该事项的全部条目。"""
        return self._by_pair.get((township, matter), ())

    def entries(self) -> tuple[DevolutionEntry, ...]:
        """Every entry, by township, matter and start. 全部条目。"""
        return tuple(e for k in sorted(self._by_pair) for e in self._by_pair[k])


def _start(entry: DevolutionEntry) -> date:
    return entry.effective_from or date.min


class ProposedItem(BaseModel):
    """A proposed mode for one matter in one township (a what-if item). 提案项：某镇某事项的处理方式。"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    township: str = Field(description="township code 镇街编码")
    matter: str = Field(description="matter code 事项编码")
    mode: ChangeMode = Field(description="devolved 下放 | entrusted 委托 | assist 协助 | none 收回")


class DevolutionChangeItem(ProposedItem):
    """One item of a change: from ``effective_from``, ``matter`` in ``township`` is handled in ``mode``.

    变更的一项：自生效日起，该镇该事项按 mode 处理（none 为收回/不下放）。
    """

    effective_from: date = Field(description="first day the change applies (Asia/Shanghai) 生效日期")


class DevolutionChange(BaseModel):
    """A devolution decision 下放调整决定: its 文号 and items. 调整决定：文号与各项。"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    document: str = Field(min_length=1, max_length=200, description="the decision's 文号")
    items: list[DevolutionChangeItem] = Field(min_length=1, max_length=5000)


@dataclass(frozen=True, slots=True)
class Applied:
    """The entries after a change, and the diff (one row per item). 变更后的条目与差异。"""

    entries: tuple[DevolutionEntry, ...]
    diff: tuple[dict[str, Any], ...]
    problems: tuple[Problem, ...]


def apply_change(
    bundle: JurisdictionBundle, change: DevolutionChange, *, recorded_on: date | None
) -> tuple[JurisdictionBundle, Applied]:
    """The bundle with ``change`` applied, the diff, and the problems (none: apply it).

    应用变更后的数据包、差异与问题。Each item closes the entry in force on its day (its
    ``effective_to`` becomes that day; a later-starting entry of the pair is a problem) and adds an
    entry from that day unless its mode is ``none``. An undated list entry that gets closed moves
    out of ``devolution`` into a dated entry with the same start, so nothing before the day changes.
    ``recorded_on``: the day the change is recorded; items must start after it (``None``: no such
    check, for a what-if). 生效日须晚于登记日（模拟时不检查）。
    """
    problems: list[Problem] = []
    legacy = {t: list(codes) for t, codes in bundle.devolution.items()}
    dated = list(bundle.devolution_entries)
    diff: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for k, item in enumerate(change.items):
        path = f"items[{k}]"
        pair = (item.township, item.matter)
        if pair in seen:
            problems.append(Problem(path, f"matter {item.matter} of township {item.township} changed twice"))
            continue
        seen.add(pair)
        if recorded_on is not None and item.effective_from <= recorded_on:
            problems.append(
                Problem(
                    f"{path}.effective_from",
                    f"{item.effective_from} is not after {recorded_on}: history is never rewritten",
                )
            )
            continue
        index = DevolutionIndex([*all_entries(bundle.model_copy(update={"devolution": legacy})), *dated])
        later = [e for e in index.history(*pair) if _start(e) >= item.effective_from]
        if later:
            problems.append(Problem(path, f"an entry of this matter already starts on {later[0].effective_from}"))
            continue
        before = index.on(*pair, item.effective_from)
        if before is not None and before.mode == item.mode:
            problems.append(Problem(f"{path}.mode", f"already {item.mode} on {item.effective_from}"))
            continue
        if before is None and item.mode == "none":
            problems.append(Problem(f"{path}.mode", f"not devolved on {item.effective_from}: nothing to return"))
            continue
        if before is not None:
            closed = before.model_copy(update={"effective_to": item.effective_from})
            if before in dated:
                dated[dated.index(before)] = closed
            else:
                legacy[item.township].remove(item.matter)
                dated.append(closed)
        if item.mode != "none":
            dated.append(
                DevolutionEntry(
                    township=item.township,
                    matter=item.matter,
                    mode=item.mode,
                    effective_from=item.effective_from,
                    document=change.document,
                )
            )
        diff.append(
            {
                "township": item.township,
                "matter": item.matter,
                "effective_from": item.effective_from.isoformat(),
                "before": before.mode if before is not None else "none",
                "after": item.mode,
                "before_document": before.document if before is not None else None,
                "document": change.document,
            }
        )
    new_legacy = {t: codes for t, codes in legacy.items() if codes}
    updated = bundle.model_copy(update={"devolution": new_legacy, "devolution_entries": dated})
    return updated, Applied(tuple(all_entries(updated)), tuple(diff), tuple(problems))


def proposal_entries(entries: Sequence[DevolutionEntry], items: Sequence[ProposedItem]) -> tuple[DevolutionEntry, ...]:
    """A what-if's list: the proposed pairs take the proposed mode on every day, the rest as recorded.

    模拟清单：提案涉及的镇街事项在整个期间按提案方式，其余按实际记录。
    """
    proposed = {(i.township, i.matter): i for i in items}
    kept = [e for e in entries if (e.township, e.matter) not in proposed]
    added = [
        DevolutionEntry(township=i.township, matter=i.matter, mode=i.mode, document="（模拟）")
        for i in proposed.values()
        if i.mode != "none"
    ]
    return (*kept, *added)
