"""The devolution entry a case is routed by 派遣所依据的下放条目 — part of routing's step 4.

A case is routed by the devolution list in force at its *report* time (the team's domain notes,
"Devolution that changes"), never the processing clock, so a replay routes the same. The case
keeps the entry it used (a dated one: its mode, dates and 文号) in its routing facts; an
``entrusted`` (委托) case names the entrusting department as 执法主体; under an ``assist`` (协助)
entry the township unit joins the agency or department as 协办. Undated list entries add
nothing to a case, so bundles without dated entries route exactly as before.
按上报时间有效的下放清单派遣；案件记录所用条目；委托件记执法主体；协助件镇街单位协办。
Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.dispatch.candidates import assist_unit, unit_name
from shared.events import IncidentReported
from shared.jurisdiction import DevolutionEntry, JurisdictionSnapshot, Matter, Unit
from shared.jurisdiction.devolution import entry_dict, is_dated

__all__ = ["entry_facts", "entry_for", "recorded_entry", "with_assist"]


def entry_for(
    snapshot: JurisdictionSnapshot, event: IncidentReported, township: str, matter: Matter
) -> DevolutionEntry | None:
    """The entry in force for the report's township and matter on its report day. 上报当日有效的条目。"""
    return snapshot.devolution_at(township, matter.code, event.reported_at)


def entry_facts(matter: Matter, entry: DevolutionEntry | None) -> dict[str, Any]:
    """The decision's devolution facts: ``devolved``; for a dated entry ``devolution_entry``; for an
    entrusted one ``enforcement_subject`` (执法主体, the entrusting department). 决策中的下放事实。"""
    facts: dict[str, Any] = {"devolved": entry is not None and entry.mode in ("devolved", "entrusted")}
    if entry is not None and is_dated(entry):
        facts["devolution_entry"] = entry_dict(entry)
    if entry is not None and entry.mode == "entrusted":
        facts["enforcement_subject"] = matter.department
    return facts


def recorded_entry(facts: Mapping[str, Any]) -> dict[str, Any]:
    """``devolution_entry`` and ``enforcement_subject`` of ``facts`` when set (else nothing, as before).

    已设置的条目与执法主体（未设置则不出现，与以往一致）。"""
    return {k: facts[k] for k in ("devolution_entry", "enforcement_subject") if facts.get(k)}


def with_assist(
    snapshot: JurisdictionSnapshot,
    matter: Matter,
    township: str,
    entry: DevolutionEntry | None,
    primary: Unit,
    cohandlers: tuple[str, ...],
) -> tuple[tuple[str, ...], str | None]:
    """Co-handlers with the assisting township unit added (协助), and the sentence saying so. 加入协助单位。"""
    helper = assist_unit(snapshot, matter, township, entry)
    if helper is None or helper.id == primary.id or helper.id in cohandlers:
        return cohandlers, None
    return (*cohandlers, helper.id), f"{unit_name(snapshot, helper.id)}协助（协办）"
