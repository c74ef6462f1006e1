"""The reads of dispatch (派遣的读侧查询): nothing here writes or commits.

派遣的只读查询：不写库、不提交。

* cases and their timeline: :func:`list_cases` / :func:`page_of_cases` (filters
  :class:`CaseFilters`, scope :func:`scope_condition` — the one visibility rule of
  :mod:`shared.visibility`), :func:`get_case`, :func:`merged_into`,
  :func:`get_timeline` / :func:`timeline_entries`, and the SSE stream's
  :func:`transitions_after` / :func:`last_transition_id`. 案件、时间线与事件流查询。

The API layer (``api.py``) stays thin; the answers the dashboard needs beyond the
case row are computed here, from the lifecycle and routing modules, so the page
never re-implements a rule: 调度台不再自行推算规则，以下结果均由服务端依据状态机与路由模块给出：

* :func:`action_reasons` / :func:`role_actions` — for every action the API exposes,
  why the signed-in actor may not take it now (``None``: allowed), and which
  actions the actor's role may take at all. 各操作的不可用原因，以及角色可执行的操作。
* :func:`case_candidates` — ``routing.candidates()`` for a case on the current
  jurisdiction snapshot (override rules honoured), with the units that rejected
  the case flagged. 手动派遣的候选单位（含派遣规则，标出退单单位）。
* :func:`caller_json` — the caller as the API shows it: masked phone and the
  anonymous flag, never the hash. 来电人（脱敏号码与匿名标志，绝不含哈希）。
* :func:`list_callback_pending` — closed 12345 cases with no 回访 recorded yet
  (the 待回访 queue). 待回访队列。
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.actions import API_ACTIONS
from services.dispatch.candidates import Candidate, candidates
from services.dispatch.case_model import (
    CASE_REPORTED,
    HOTLINE_SOURCE,
    Action,
    Actor,
    CaseSnapshot,
    CaseState,
    Role,
    TimelineEntry,
)
from services.dispatch.lifecycle import TRANSITIONS, allowed_actions, can_see
from services.dispatch.models import case_transitions, cases
from services.dispatch.placement import locate_event
from services.dispatch.records import CaseNotFoundError, CaseRecord
from shared.jurisdiction import JurisdictionSnapshot
from shared.visibility import Viewer, case_scope

__all__ = [
    "CandidatesAnswer",
    "CandidatesProblem",
    "CaseFilters",
    "FilterConflictError",
    "action_reasons",
    "blocked_units",
    "callback_pending_conflict",
    "caller_json",
    "case_candidates",
    "case_conditions",
    "get_case",
    "get_timeline",
    "last_transition_id",
    "list_callback_pending",
    "list_cases",
    "merged_into",
    "merged_reason",
    "page_of_cases",
    "role_actions",
    "scope_condition",
    "timeline_entries",
    "transitions_after",
]


# --------------------------------------------------------------------------- cases 案件


@dataclass(frozen=True)
class CaseFilters:
    """Filters of ``GET /v1/cases``. 案件列表筛选条件。"""

    township: str | None = None
    unit: str | None = None
    state: Sequence[str] = ()
    source: str | None = None
    source_id: str | None = None
    matter: str | None = None
    triage: bool = False
    overdue: bool | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    merged: bool | None = None
    kind: str | None = None


def scope_condition(actor: Actor) -> Any:
    """SQL condition of the cases ``actor`` may see (:func:`shared.visibility.case_scope`). 可见范围条件。"""
    c = cases.c
    return case_scope(
        Viewer.of(actor),
        township=c.township,
        unit=c.unit,
        cohandlers=c.cohandlers,
        escalated_to=c.escalated_to,
        assignees=c.assignees,
    )


def case_conditions(actor: Actor, filters: CaseFilters) -> list[Any]:
    """SQL conditions of the cases ``actor`` may see that match ``filters``. 可见且符合筛选的案件条件。"""
    c = cases.c
    conditions: list[Any] = [scope_condition(actor)]
    if filters.township:
        conditions.append(c.township == filters.township)
    if filters.unit:
        conditions.append(c.unit == filters.unit)
    if filters.state:
        conditions.append(c.state.in_(list(filters.state)))
    if filters.triage:
        conditions.append(c.state == str(CaseState.TRIAGE))
    if filters.source:
        conditions.append(c.source == filters.source)
    if filters.kind:
        conditions.append(c.kind == filters.kind)
    if filters.source_id:
        conditions.append(c.source_id == filters.source_id)
    if filters.matter:
        conditions.append(c.matter == filters.matter)
    if filters.overdue is not None:
        conditions.append(c.overdue.is_(filters.overdue))
    if filters.reported_from is not None:
        conditions.append(c.reported_at >= filters.reported_from)
    if filters.reported_to is not None:
        conditions.append(c.reported_at < filters.reported_to)
    if filters.merged is not None:
        conditions.append(c.merged_into.is_not(None) if filters.merged else c.merged_into.is_(None))
    return conditions


async def page_of_cases(
    *, session: AsyncSession, conditions: Sequence[Any], cursor: int | None, limit: int
) -> tuple[list[CaseRecord], int | None]:
    """Cases matching ``conditions``, newest first, cursor-paginated on ``seq``. 按 seq 游标分页。"""
    c = cases.c
    where = [*conditions, c.seq < cursor] if cursor is not None else list(conditions)
    rows = (await session.execute(select(cases).where(*where).order_by(c.seq.desc()).limit(limit + 1))).mappings().all()
    records = [CaseRecord.from_row(r) for r in rows[:limit]]
    next_cursor = records[-1].seq if len(rows) > limit and records else None
    return records, next_cursor


async def list_cases(
    *, session: AsyncSession, actor: Actor, filters: CaseFilters, cursor: int | None, limit: int
) -> tuple[list[CaseRecord], int | None]:
    """Visible cases, newest first, cursor-paginated on ``seq``. 可见案件（新→旧，按 seq 游标分页）。"""
    return await page_of_cases(session=session, conditions=case_conditions(actor, filters), cursor=cursor, limit=limit)


async def get_case(*, session: AsyncSession, case_id: uuid.UUID, actor: Actor) -> CaseRecord:
    """One visible case. Raises :class:`CaseNotFoundError`. 取单个可见案件。"""
    row = (await session.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
    if row is None:
        raise CaseNotFoundError(str(case_id))
    record = CaseRecord.from_row(row)
    if not can_see(record.snapshot, actor):
        raise CaseNotFoundError(str(case_id))
    return record


async def merged_into(*, session: AsyncSession, case_id: uuid.UUID) -> list[uuid.UUID]:
    """Cases merged into ``case_id``. 并入该案件的重复件。"""
    rows = await session.execute(select(cases.c.id).where(cases.c.merged_into == case_id).order_by(cases.c.seq))
    return [r.id for r in rows]


async def get_timeline(*, session: AsyncSession, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every transition of a case, by version. 案件时间线（按版本）。"""
    rows = await session.execute(
        select(case_transitions).where(case_transitions.c.case_id == case_id).order_by(case_transitions.c.version)
    )
    return [dict(r) for r in rows.mappings()]


def timeline_entries(rows: Sequence[Mapping[str, Any]]) -> list[TimelineEntry]:
    """Timeline rows (as stored or as the API answers them) → entries :func:`lifecycle.replay` takes.

    时间线行 → :func:`lifecycle.replay` 所需的记录。The creation row (version 1:
    ``case.reported``, or ``case.merged`` for a merged report) becomes the
    ``case.reported`` entry holding the whole snapshot. 第一行转为立案记录。
    """
    out: list[TimelineEntry] = []
    for row in rows:
        first = row["version"] == 1
        out.append(
            TimelineEntry(
                case_id=str(row["case_id"]),
                version=row["version"],
                event_type=CASE_REPORTED if first else row["event_type"],
                action=None if first else Action(row["action"]),
                actor=Actor(
                    Role(row["actor_role"]),
                    unit=row["actor_unit"],
                    township=row["actor_township"],
                    id=row["actor_id"],
                ),
                at=row["occurred_at"],
                body=row["body"] if not first else {},
                changes=row["changes"],
            )
        )
    return out


async def transitions_after(
    *, session: AsyncSession, after_id: int, actor: Actor, limit: int = 500
) -> list[dict[str, Any]]:
    """Transitions with ``id > after_id`` of cases ``actor`` may see (SSE). 游标之后的可见流转。"""
    t, c = case_transitions.c, cases.c
    rows = await session.execute(
        select(
            t.id,
            t.case_id,
            t.version,
            t.action,
            t.event_type,
            t.state,
            t.previous_state,
            t.actor_role,
            t.actor_unit,
            t.occurred_at,
            t.note,
            t.deadline,
            t.event_id,
            c.township,
            c.unit,
            c.matter,
            c.source,
            c.source_id,
            c.overdue,
            c.merged_into,
            scope_condition(actor).label("visible"),
        )
        .join(cases, c.id == t.case_id)
        .where(t.id > after_id)
        .order_by(t.id)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def last_transition_id(*, session: AsyncSession) -> int:
    """The newest transition id (0 when there is none). 最新流转 id。"""
    value = await session.scalar(select(func.max(case_transitions.c.id)))
    return int(value or 0)


# --------------------------------------------------------------------------- actions 操作可用性


def merged_reason(record: CaseRecord) -> str:
    """Why no action applies to a merged report (the service refuses them all). 并案件不可操作的原因。"""
    return f"案件已并入 {record.merged_into} / the case was merged into {record.merged_into}"


def action_reasons(record: CaseRecord, actor: Actor, now: datetime) -> dict[str, str | None]:
    """For every API action: ``None`` if ``actor`` may take it now, else why not. 各操作的不可用原因。

    From :func:`lifecycle.allowed_actions` (role → scope → state → precondition);
    a merged report refuses everything, as ``perform_action`` does. Body-dependent
    checks (e.g. the new deadline) are left to the action itself.
    依据状态机的 ``allowed_actions``（角色 → 范围 → 状态 → 前置条件）；并案件一律不可操作，
    与执行时一致；依赖请求体的校验（如新期限）在执行时进行。
    """
    if record.merged_into is not None:
        reason = merged_reason(record)
        return {str(action): reason for action in API_ACTIONS}
    reasons = allowed_actions(record.snapshot, actor, now)
    return {str(action): reasons[action] for action in API_ACTIONS}


def role_actions(actor: Actor) -> list[str]:
    """API actions the actor's role may take on some case (the buttons it ever gets). 角色可执行的操作。"""
    return [str(action) for action in API_ACTIONS if actor.role in TRANSITIONS[action].roles]


# --------------------------------------------------------------------------- caller 来电人


def caller_json(incident: Mapping[str, Any]) -> dict[str, Any] | None:
    """The caller of a stored incident as the API shows it, or ``None``. 来电人的接口表示。

    Only ``phone_masked`` and ``anonymous``: the salted ``phone_hash`` links repeat
    callers inside dispatch and never leaves it. 只含脱敏号码与匿名标志；加盐哈希仅供内部并案，不对外。
    """
    caller = incident.get("caller")
    if not isinstance(caller, Mapping):
        return None
    return {"phone_masked": caller.get("phone_masked"), "anonymous": bool(caller.get("anonymous", False))}


# --------------------------------------------------------------------------- candidates 候选单位


class CandidatesProblem(ValueError):
    """The query names a matter or township the snapshot does not know (→ 422). 事项或乡镇未知。"""


def blocked_units(case: CaseSnapshot) -> list[str]:
    """Units that rejected the case and may not get it back, in order. 已退单且不得再派的单位。

    A 退单 blocks the unit unless a ruling (判定退单) declared it invalid — the
    rule the lifecycle applies to 手动派遣 / 改派. 退单未被判定无效的单位不得再派（与状态机一致）。
    """
    return list(dict.fromkeys(r.unit for r in case.rejections if r.valid is not False))


@dataclass(frozen=True)
class CandidatesAnswer:
    """What ``GET /v1/cases/{id}/candidates`` answers. 候选单位查询结果。"""

    matter: str | None
    township: str | None
    jurisdiction_version: int
    rules_version: int
    candidates: list[dict[str, Any]]
    rejected_units: list[str]

    @property
    def suggested(self) -> str | None:
        """The first candidate that exists and did not reject the case (the routing suggestion). 系统建议。"""
        return next((c["unit"] for c in self.candidates if c["unit"] and c["exists"] and not c["rejected"]), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. 可序列化形式。"""
        return {
            "matter": self.matter,
            "township": self.township,
            "jurisdiction_version": self.jurisdiction_version,
            "rules_version": self.rules_version,
            "suggested": self.suggested,
            "rejected_units": self.rejected_units,
            "candidates": self.candidates,
        }


def _candidate_json(snapshot: JurisdictionSnapshot, candidate: Candidate, rejected: set[str]) -> dict[str, Any]:
    unit = snapshot.unit(candidate.unit) if candidate.unit else None
    return {
        "unit": candidate.unit,
        "unit_name": unit.name if unit is not None else None,
        "decided_by": candidate.decided_by,
        "exists": candidate.exists,
        "why_zh": candidate.why_zh,
        "rejected": candidate.unit in rejected,
    }


def case_candidates(
    record: CaseRecord,
    snapshot: JurisdictionSnapshot,
    *,
    matter: str | None = None,
    township: str | None = None,
) -> CandidatesAnswer:
    """The ordered candidate units of a case for ``matter`` in ``township`` (routing's own list).

    按路由模块的顺序给出候选单位。``matter`` defaults to the case's matter and
    ``township`` to the case's township. When ``township`` is not where the incident
    was located, the incident is routed as if reported with that township's code only
    (no point, grid or address). Override rules (派遣规则) are honoured; units that
    rejected the case are flagged ``rejected``. Raises :class:`CandidatesProblem` for
    an unknown matter or township.
    事项默认取案件事项，乡镇默认取案件所属乡镇；指定其他乡镇时按“仅上报该乡镇编码”定位；
    派遣规则照常生效；退单单位标记为 ``rejected``。事项或乡镇未知时抛出 :class:`CandidatesProblem`。
    """
    case = record.snapshot
    matter = matter or case.matter
    township = township or case.township or None
    if matter is not None and snapshot.matter(matter) is None:
        raise CandidatesProblem(f"未知事项 {matter} / unknown matter {matter!r}")
    if township is not None:
        division = snapshot.division(township)
        if division is None or division.level != "township":
            raise CandidatesProblem(f"{township} 不是本县的乡镇/街道 / {township!r} is not a township of the county")
    event = record.event_model()
    if township is not None:
        placement = locate_event(event, snapshot)
        if placement is None or placement.township != township:
            event = event.model_copy(
                update={
                    "location": None,
                    "address": None,
                    "grid_code": None,
                    "cell_code": None,
                    "division_code": township,
                }
            )
    listed = candidates(event, snapshot, matter=matter) if matter is not None and township is not None else []
    rejected = blocked_units(case)
    rejected_set = set(rejected)
    return CandidatesAnswer(
        matter=matter,
        township=township,
        jurisdiction_version=snapshot.version,
        rules_version=snapshot.rules_version,
        candidates=[_candidate_json(snapshot, c, rejected_set) for c in listed],
        rejected_units=rejected,
    )


# --------------------------------------------------------------------------- 待回访 queue


class FilterConflictError(ValueError):
    """Filters that contradict ``callback_pending=true`` (→ 422). 与待回访筛选冲突的条件。"""


def callback_pending_conflict(filters: CaseFilters) -> str | None:
    """Why ``filters`` cannot go with ``callback_pending=true`` (None if they can). 与待回访冲突的筛选条件。"""
    if filters.state or filters.triage:
        return "callback_pending=true already means state=closed; drop state/queue 待回访已限定为已结案"
    if filters.source not in (None, "", HOTLINE_SOURCE):
        return f"callback_pending=true lists {HOTLINE_SOURCE} cases only 待回访只含 12345 案件"
    if filters.merged:
        return "merged reports get no callback 并案件不回访"
    return None


async def list_callback_pending(
    *, session: AsyncSession, actor: Actor, filters: CaseFilters, cursor: int | None, limit: int
) -> tuple[list[CaseRecord], int | None]:
    """Closed 12345 cases with no 回访 for the current closure, newest first (the 待回访 queue). 待回访案件。

    The same condition the lifecycle puts on 回访 (12345 source, ``satisfaction``
    unset since the last closure — a 重办 clears it), in ``actor``'s scope, merged
    reports left out; cursor-paginated on ``seq`` like ``list_cases``. Besides it
    the township, unit, matter, source id, overdue and reported-at filters apply.
    条件与状态机的回访前置条件一致（12345、本次结案尚无满意度），限定可见范围、排除并案件，
    按 seq 游标分页；另可叠加乡镇、单位、事项、来源编号、超期与上报时间筛选。
    """
    if (conflict := callback_pending_conflict(filters)) is not None:
        raise FilterConflictError(conflict)
    c = cases.c
    # The list filters (the conflict check above leaves no state, queue or other source), then the
    # 回访 precondition. 先套用列表筛选（冲突检查已排除状态、队列与其他来源），再加回访前置条件。
    conditions = [
        *case_conditions(actor, filters),
        c.state == str(CaseState.CLOSED),
        c.source == HOTLINE_SOURCE,
        c.merged_into.is_(None),
        c.snapshot["satisfaction"].astext.is_(None),
    ]
    return await page_of_cases(session=session, conditions=conditions, cursor=cursor, limit=limit)
