"""Dispatch's response models (派遣服务应答模型); see :mod:`shared.answers`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.answers import Answer


class CaseSummary(Answer):
    """A case as lists show it 案件（列表项）."""

    id: str
    incident_id: str
    source: str
    source_id: str
    state: str
    version: int
    township: str | None
    village: str | None
    grid: str | None
    unit: str | None
    unit_kind: str | None
    cohandlers: list[str]
    matter: str | None
    urgency: str | None
    reported_at: str | None
    deadline: str | None
    overdue: bool
    merged_into: str | None
    triage_reason: str | None
    decided_by: str | None
    explanation_zh: str | None


class CaseList(Answer):
    """A page of cases in the caller's scope 案件列表（分页）."""

    items: list[CaseSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class CaseDetail(CaseSummary):
    """One case with its routing explanation, incident and what the caller may do 案件详情."""

    explanation: dict[str, Any] | None
    snapshot: dict[str, Any]
    incident: dict[str, Any] | None
    duplicates: list[str]
    allowed_actions: list[str]
    action_reasons: dict[str, str | None]
    role_actions: list[str]


class Candidate(Answer):
    """A candidate unit for manual dispatch 候选单位."""

    unit: str
    unit_name: str | None
    decided_by: str
    exists: bool
    why_zh: str
    rejected: bool


class Candidates(Answer):
    """Candidate units in routing order 手动派遣候选单位."""

    case_id: str
    matter: str | None
    township: str | None
    suggested: str | None
    rejected_units: list[str]
    candidates: list[Candidate]


class TimelineEntry(Answer):
    """One transition of a case 流转记录."""

    id: int
    case_id: str
    version: int
    action: str | None
    event_type: str
    state: str
    previous_state: str | None
    actor_role: str | None
    occurred_at: str | None
    recorded_at: str | None
    note: str | None


class Timeline(Answer):
    """Every transition of a case, oldest first 案件时间线."""

    case_id: str
    entries: list[TimelineEntry]


class AppliedTransition(Answer):
    """A transition an action applied 已执行的流转."""

    version: int
    event_type: str
    state: str


class ActionResult(Answer):
    """The case after an action, and the transitions it applied 操作结果."""

    case: CaseSummary
    transitions: list[AppliedTransition]


class ActionItemAnswer(Answer):
    """One item of an action batch, in the items' order 批量操作的一项: ``status`` 200 with the case's state
    and version after it and the transitions applied; else the single action's refusal (403 / 404 / 409 /
    422) with ``detail`` and ``kind``."""

    index: int
    case_id: str | None
    status: int
    state: str | None = None
    version: int | None = None
    transitions: list[AppliedTransition] | None = None
    detail: str | None = None
    kind: str | None = None


class ActionBatchResult(Answer):
    """Answer to a batch of lifecycle actions 批量操作结果: how many applied and refused, and each item's answer."""

    applied: int
    refused: int
    results: list[ActionItemAnswer]


class Me(Answer):
    """The signed-in staff token's role and scope 当前账号与数据范围."""

    token_name: str
    role: str
    township: str
    unit: str | None
    member: str | None = None
    whole_county: bool


class CalendarAnswer(Answer):
    """Working days and hours around today 工作日历."""

    time_zone: str
    from_: str = Field(alias="from")
    to: str
    working_hours: list[list[str]]
    hours_per_day: float
    working_days: list[str]
    provisional_days: list[str]


class CalendarLoaded(Answer):
    """The override file read again, and the deadlines it changed 日历重新载入与期限重算结果."""

    county: str | None
    years: dict[str, str]
    recomputed: int
    cases: list[str]
