"""A report becomes a new case, in memory (立案：路由并暂存新案件). Pure: no I/O.

:func:`route_one` routes one ``incident.reported`` and builds its :class:`CaseRecord`;
:func:`route_batch` does it for a batch sharing the jurisdiction's memo (points located
once, :func:`prime_points`). :func:`stage_new_case` stages the new case — merged into a
duplicate, or dispatched / triaged / self-handled — with its rows already serialised
for the store. 路由一条或一批报告并构建案件记录；暂存新案件（并案，或派遣 / 转人工 / 自办），
各行已序列化，供存储层写入。纯模块，无 I/O。
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.dispatch.action_bodies import AddCohandlerBody, DispatchBody, SelfHandleBody, TriageBody
from services.dispatch.case_model import CASE_REPORTED, Action, Actor, CaseSnapshot, CaseState, Role
from services.dispatch.duplicates import DuplicateMatch, Report
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import SYSTEM_ACTOR, SYSTEM_ADMIN, case_id_for
from services.dispatch.lifecycle import apply
from services.dispatch.records import CaseRecord
from services.dispatch.routing import RoutingDecision, route
from services.dispatch.routing_memo import RoutingMemo
from services.dispatch.source_kinds import adapt
from services.dispatch.staging import Pending, must, stage, stage_applied
from services.dispatch.store import CASE_COLUMNS, TRANSITION_COLUMNS
from shared.events import IncidentReported

__all__ = ["Routed", "Staged", "prime_points", "route_batch", "route_one", "stage_new_case"]


def _routing_facts(record: CaseRecord, decision: RoutingDecision) -> None:
    placement = decision.placement
    record.village = placement.village if placement else None
    record.grid = placement.grid if placement else None
    record.placement_method = placement.method if placement else None
    record.matter_group = decision.matter_group
    record.triage_reason = decision.triage_reason
    record.decided_by = decision.decided_by
    record.rule_id = decision.rule_id
    record.rules_version = decision.rules_version
    record.jurisdiction_version = decision.jurisdiction_version
    record.devolved = decision.devolved


@dataclass
class Routed:
    """One report of a batch, routed in memory, before any database work. 批次中已路由的报告。"""

    event: IncidentReported
    correlation_id: str
    at: datetime
    decision: RoutingDecision
    record: CaseRecord
    #: The duplicate check's view of the report; ``None`` when it is not checked (self-handled, no matter).
    #: 并案检查所用报告；自办或无事项时为 None。
    report: Report | None
    #: The report staged as a new case of its own (not merged), before the locks are taken.
    #: 加锁前按“不并案”预先暂存的新案件。
    staged: Staged | None = None


@dataclass
class Staged:
    """A new case staged in memory: its record, timeline rows and events, rows as statement values.

    内存中暂存的新案件：案件记录、时间线与事件；行已转为语句值。"""

    record: CaseRecord
    outcome: str
    pending: Pending
    #: ``record.snapshot`` as JSON. 快照的 JSON。
    snapshot_json: dict[str, Any]
    case_values: list[Any] = field(default_factory=list)
    transition_values: list[list[Any]] = field(default_factory=list)


def route_one(
    event: IncidentReported,
    correlation_id: str,
    jurisdiction: LoadedJurisdiction,
    memo: RoutingMemo | None = None,
) -> Routed:
    """Route ``event`` and build its case record (pure). 路由并构建案件记录（无 I/O）。

    The dispatch time is the event's own: when intake received it (or when it was reported, if
    later), never the processing clock, so a replay of the same events gives the same cases,
    deadlines and timelines. 派遣时间取自事件（受理时间），重放结果一致。
    """
    case_id = case_id_for(event.event_id)
    at = max(event.received_at, event.reported_at)
    decision = route(event, jurisdiction.snapshot, now=at, calendar=jurisdiction.calendar, memo=memo)
    record = CaseRecord(
        id=case_id,
        incident_id=event.event_id,
        source=event.source,
        source_id=event.source_id,
        snapshot=CaseSnapshot(
            id=str(case_id),
            township=decision.township or "",
            source=event.source,
            reported_at=event.reported_at,
            matter=decision.matter,
        ),
        urgency=event.urgency,
        incident=event.model_dump(mode="json"),
        explanation=decision.to_dict(),
        lng=event.location.lng if event.location else None,
        lat=event.location.lat if event.location else None,
        phone_hash=event.caller.phone_hash if event.caller and event.source == "12345" else None,
    )
    _routing_facts(record, decision)
    report: Report | None = None
    if decision.outcome != "self_handled" and decision.matter is not None:
        report = Report(
            matter=decision.matter,
            reported_at=event.reported_at,
            lng=record.lng,
            lat=record.lat,
            grid=record.grid,
            source=event.source,
            phone_hash=record.phone_hash,
        )
    routed = Routed(event, correlation_id, at, decision, record, report)
    adapt(routed, jurisdiction)
    return routed


def prime_points(reports: Sequence[tuple[IncidentReported, str]], jurisdiction: LoadedJurisdiction) -> None:
    """Locate the points of ``reports`` in one vectorised query (pure). 一次向量化定位本批坐标（无 I/O）。"""
    jurisdiction.memo.prime_points([(e.location.lng, e.location.lat) for e, _ in reports if e.location is not None])


def route_batch(reports: Sequence[tuple[IncidentReported, str]], jurisdiction: LoadedJurisdiction) -> list[Routed]:
    """:func:`route_one` for every report, sharing the jurisdiction's :class:`RoutingMemo` (pure).

    批量路由：共享记忆化对象（无 I/O）；坐标应已由 :func:`prime_points` 一次定位（否则逐点定位）。
    The decisions are those of :func:`route_one` one by one; points primed with
    :func:`prime_points` are not located again.
    """
    memo = jurisdiction.memo
    return [route_one(event, correlation_id, jurisdiction, memo) for event, correlation_id in reports]


def stage_new_case(routed: Routed, duplicate: DuplicateMatch | None) -> Staged:
    """Stage a new case: merged, or dispatched / triaged / self-handled; its rows as statement values.

    暂存新案件的时间线与事件：并案，或派遣 / 转人工 / 自办；各行转为语句值。``routed.record``
    is left as routed (a copy is staged), so a report staged before the duplicate check can be
    staged again as merged. 暂存的是记录副本，原记录不变，可在并案检查后重新暂存为并案。
    """
    staged = _stage_case_record(routed, duplicate)
    staged.case_values = CASE_COLUMNS.values(staged.record.to_row(snapshot_json=staged.snapshot_json))
    staged.transition_values = [TRANSITION_COLUMNS.values(row) for row in staged.pending.rows]
    return staged


def _stage_case_record(routed: Routed, duplicate: DuplicateMatch | None) -> Staged:
    """The record, timeline rows and events of :func:`stage_new_case`. 暂存案件记录、时间线与事件。

    The staged snapshot's JSON is kept up to date from each transition's ``changes`` (the JSON
    values of the fields that differ), so the case row needs no second dump of the snapshot.
    快照 JSON 随各次流转的 ``changes``（变化字段的 JSON 值）更新，案件行无需再次序列化快照。
    """
    record = copy.copy(routed.record)
    if duplicate is not None:
        return _stage_merged(record, routed, duplicate)
    return _stage_routed(record, routed)


def _stage_merged(record: CaseRecord, routed: Routed, duplicate: DuplicateMatch) -> Staged:
    """A merged report (并案): a closed record linked to the first case, one ``case.merged``. 暂存并案件。"""
    pending = Pending()
    record.merged_into = uuid.UUID(duplicate.case_id)
    record.triage_reason = None
    record.decided_by = None
    record.explanation = {
        **record.explanation,
        "outcome": "merged",
        "merged_into": duplicate.case_id,
        "duplicate": {"reason": duplicate.reason, "distance_m": duplicate.distance_m},
        "explanation_zh": duplicate.explanation_zh,
        "routing_explanation_zh": routed.decision.explanation_zh,
    }
    # A merged report is a closed record linked to the first case: no assignment of its own.
    # 并案件是关联到首件的已结记录，不另行派遣。
    record.snapshot = record.snapshot.model_copy(update={"state": CaseState.CLOSED})
    snapshot_json = record.snapshot.model_dump(mode="json")
    stage(
        pending,
        record,
        event_type="case.merged",
        action="merge",
        actor=SYSTEM_ACTOR,
        at=routed.at,
        previous_state=None,
        body={"merged_into": duplicate.case_id, "reason": duplicate.reason},
        changes=snapshot_json,
        note=duplicate.explanation_zh,
        extra={"reason": duplicate.explanation_zh, "details": {"duplicate_reason": duplicate.reason}},
        correlation_id=routed.correlation_id,
    )
    return Staged(record, "merged", pending, snapshot_json)


def _stage_routed(record: CaseRecord, routed: Routed) -> Staged:
    """A new case of its own: reported, then dispatched (+ co-handlers), triaged or self-handled. 暂存新案件。"""
    decision, event, at, correlation_id = routed.decision, routed.event, routed.at, routed.correlation_id
    pending = Pending()
    snapshot_json = record.snapshot.model_dump(mode="json")
    stage(
        pending,
        record,
        event_type=CASE_REPORTED,
        action=None,
        actor=Actor(Role.SYSTEM, id=f"intake:{event.source}"),
        at=event.reported_at,
        previous_state=None,
        body={},
        changes=snapshot_json,
        note=None,
        extra=None,
        correlation_id=correlation_id,
        publish=False,
    )

    def step(action: Action, body: Any, actor: Actor, extra: Mapping[str, Any] | None = None) -> None:
        """Apply one system transition, stage it and keep the snapshot JSON current. 系统流转一步。"""
        nonlocal snapshot_json
        applied = must(apply(record.snapshot, action, body, actor, at))
        stage_applied(pending, record, applied, correlation_id=correlation_id, extra=extra)
        snapshot_json = {**snapshot_json, **applied.changes}

    details = {
        "decided_by": decision.decided_by,
        "rule_id": decision.rule_id,
        "rules_version": decision.rules_version,
        "jurisdiction_version": decision.jurisdiction_version,
        "placement": decision.placement.to_dict() if decision.placement else None,
    }
    routing_extra = {"reason": decision.explanation_zh, "details": details}
    if decision.outcome == "dispatch":
        assert decision.unit is not None and decision.deadline is not None
        record.unit_kind = decision.unit_kind
        record.accept_deadline = decision.accept_deadline
        record.time_basis = decision.time_basis
        record.provisional = decision.provisional
        record.dispatched_at = at
        body = DispatchBody(
            expected_version=record.snapshot.version,
            unit=decision.unit,
            deadline=decision.deadline,
            reject_window_ends_at=decision.reject_window_ends_at,
        )
        step(Action.DISPATCH, body, SYSTEM_ACTOR, routing_extra)
        for unit in decision.cohandlers:
            cohandler = AddCohandlerBody(expected_version=record.snapshot.version, unit=unit)
            step(Action.ADD_COHANDLER, cohandler, SYSTEM_ADMIN, {"reason": f"规则 {decision.rule_id}"})
    elif decision.outcome == "triage":
        body_t = TriageBody(expected_version=record.snapshot.version, reason=decision.triage_reason or "triage")
        step(Action.TRIAGE, body_t, SYSTEM_ACTOR, routing_extra)
    else:
        body_s = SelfHandleBody(expected_version=record.snapshot.version, handler=event.worker_id, note="网格员自办")
        step(Action.SELF_HANDLE, body_s, SYSTEM_ACTOR)
    return Staged(record, decision.outcome, pending, snapshot_json)
