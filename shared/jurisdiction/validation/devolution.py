"""Check of the dated devolution entries 带日期下放条目校验.

Each entry names a known township and matter, has a township unit for the matter's function
(every mode needs one: the devolved/entrusted handler, or the assisting 协办 unit), ends after it
starts, and no two entries of one (township, matter) — the undated lists included — are in force
on the same day. 每个条目的镇街、事项须已知，本镇须有承担该职能的单位，终止日须晚于生效日，
同一镇街同一事项的条目（含未注明日期的清单）不得在同一天同时有效。
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Set
from datetime import date

from shared.jurisdiction.model import DevolutionEntry, JurisdictionBundle, Matter
from shared.jurisdiction.problems import Problem, join_path

__all__ = ["MAX_DOCUMENT_LENGTH", "check_devolution_entries"]

#: A 文号 is short text. 文号长度上限。
MAX_DOCUMENT_LENGTH = 200


def check_devolution_entries(
    bundle: JurisdictionBundle, townships: Set[str], matters: Mapping[str, Matter]
) -> list[Problem]:
    """Every problem of ``devolution_entries`` (and their overlaps with the undated lists). 条目问题。"""
    problems: list[Problem] = []
    spans: dict[tuple[str, str], list[tuple[date, date, str]]] = defaultdict(list)
    for township, codes in bundle.devolution.items():
        for k, code in enumerate(codes):
            start = bundle.effective_date or date.min
            spans[(township, code)].append((start, date.max, join_path("devolution", township, k)))
    for k, entry in enumerate(bundle.devolution_entries):
        path = join_path("devolution_entries", k)
        problems += _entry_problems(entry, path, bundle, townships, matters)
        start, end = entry.effective_from or date.min, entry.effective_to or date.max
        spans[(entry.township, entry.matter)].append((start, end, path))
    for (township, matter), listed in spans.items():
        listed.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(listed):
            if start < end:
                problems.append(
                    Problem(second, f"matter {matter} of township {township} overlaps {first} (one entry per day)")
                )
    return problems


def _entry_problems(
    entry: DevolutionEntry,
    path: str,
    bundle: JurisdictionBundle,
    townships: Set[str],
    matters: Mapping[str, Matter],
) -> list[Problem]:
    problems: list[Problem] = []
    if entry.township not in townships:
        problems.append(Problem(f"{path}.township", f"unknown township {entry.township}"))
    matter = matters.get(entry.matter)
    if matter is None:
        problems.append(Problem(f"{path}.matter", f"unknown matter {entry.matter}"))
    elif entry.township in townships and matter.township_function not in bundle.township_functions.get(
        entry.township, {}
    ):
        problems.append(
            Problem(
                path,
                f"township_functions.{entry.township} has no unit for function {matter.township_function!r}",
            )
        )
    if entry.effective_from is not None and entry.effective_to is not None:
        if entry.effective_to <= entry.effective_from:
            problems.append(Problem(f"{path}.effective_to", "effective_to must be after effective_from"))
    if entry.document is not None and not (0 < len(entry.document.strip()) <= MAX_DOCUMENT_LENGTH):
        problems.append(Problem(f"{path}.document", f"document must be 1–{MAX_DOCUMENT_LENGTH} characters"))
    return problems
