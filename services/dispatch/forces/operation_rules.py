"""联合执法 / 联合行动: the joint operation's state machine (pure: no I/O, the time is passed in).

An operation is opened (发起) by a dispatcher, a township admin or the admin: a lead unit (牵头单位),
participating units, a time window, a place, the cases it addresses and a note. Each participating unit
confirms (报到) with the people it sends; a confirmation after the start is **late** (迟到), and a unit
that never confirmed is recorded **absent** (未报到) when the operation concludes — both feed 监督问责.
The operation concludes (结束) with its result — ``apply="resolve"``: its open cases are resolved with
that result, ``"leave"``: each unit finishes its own — or is cancelled (撤销).

One transition table, :data:`TRANSITIONS`: per action the states it applies in, who may take it, the body,
the target state. :func:`apply` answers :class:`Applied` (the new snapshot and what changed, for the audit
trail) or :class:`Refused` (``forbidden`` 403, ``conflict``/``not_allowed`` 409, ``invalid`` 422), like the
case lifecycle. 联合执法状态机：一张流转表，apply 返回结果或拒绝原因。
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "TRANSITIONS",
    "Applied",
    "Confirmation",
    "OpActor",
    "OpState",
    "Operation",
    "Refused",
    "apply",
    "late_units",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class OpState(StrEnum):
    OPEN = "open"  # 已发起（报到中/进行中）
    CONCLUDED = "concluded"  # 已结束
    CANCELLED = "cancelled"  # 已撤销


class Confirmation(BaseModel):
    """A unit's 报到: when, who it sends, whether after the start (迟到)."""

    model_config = _FROZEN

    at: AwareDatetime
    people: tuple[str, ...]
    late: bool
    note: str = ""


class Operation(BaseModel):
    """The operation's snapshot 联合执法快照 (authoritative; the row's columns mirror it)."""

    model_config = _FROZEN

    id: str
    township: str
    lead_unit: str
    units: tuple[str, ...]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    place: str
    cases: tuple[str, ...] = ()
    note: str = ""
    state: OpState = OpState.OPEN
    version: int = 1
    opened_by: str | None = None
    confirmations: dict[str, Confirmation] = Field(default_factory=dict)
    absent: tuple[str, ...] = ()
    result: str | None = None
    apply_result: Literal["resolve", "leave"] | None = None
    cancel_reason: str | None = None
    last_transition_at: AwareDatetime | None = None


@dataclass(frozen=True)
class OpActor:
    """Who acts: role, unit (for ``unit``), township (``*`` = county), id."""

    role: str
    unit: str | None = None
    township: str | None = None
    id: str | None = None


class _Body(BaseModel):
    model_config = _FROZEN
    expected_version: int


class ConfirmBody(_Body):
    unit: str | None = Field(None, description="admin only: the unit confirming 报到单位")
    people: tuple[str, ...] = Field(min_length=1, max_length=200, description="member ids sent 出动人员")
    note: str = Field("", max_length=2000)


class ConcludeBody(_Body):
    result: str = Field(min_length=1, max_length=2000)
    apply: Literal["resolve", "leave"] = "resolve"


class CancelBody(_Body):
    reason: str = Field(min_length=1, max_length=2000)


@dataclass(frozen=True)
class Applied:
    new: Operation
    action: str
    body: dict[str, Any]
    changes: dict[str, Any]
    actor: OpActor
    at: datetime


@dataclass(frozen=True)
class Refused:
    kind: Literal["forbidden", "conflict", "not_allowed", "invalid"]
    reason: str


_COMMAND = frozenset({"dispatcher", "township_admin", "admin"})


def _command_scope(op: Operation, actor: OpActor) -> str | None:
    if actor.role == "admin" or actor.township in ("*", op.township):
        return None
    return f"联合执法不属于乡镇 {actor.township} / outside township {actor.township}"


def _confirm_scope(op: Operation, actor: OpActor) -> str | None:
    if actor.role == "admin":
        return None
    if actor.unit not in op.units:
        return f"{actor.unit} 不是参与单位 / not a participating unit"
    return None


def _lead_or_command(op: Operation, actor: OpActor) -> str | None:
    if actor.role == "unit":
        return None if actor.unit == op.lead_unit else f"{actor.unit} 不是牵头单位 / not the lead unit"
    return _command_scope(op, actor)


def _confirm(op: Operation, body: ConfirmBody, actor: OpActor, at: datetime) -> dict[str, Any] | str:
    unit = body.unit if actor.role == "admin" and body.unit else actor.unit
    if unit is None or unit not in op.units:
        return f"{unit} 不是参与单位 / {unit!r} is not a participating unit"
    if unit in op.confirmations:
        return f"{unit} 已报到 / {unit} has confirmed already"
    done = Confirmation(at=at, people=body.people, late=at > op.starts_at, note=body.note)
    return {"confirmations": {**op.confirmations, unit: done}}


def _conclude(op: Operation, body: ConcludeBody, actor: OpActor, at: datetime) -> dict[str, Any] | str:
    absent = tuple(u for u in op.units if u not in op.confirmations)
    return {"state": OpState.CONCLUDED, "result": body.result, "apply_result": body.apply, "absent": absent}


def _cancel(op: Operation, body: CancelBody, actor: OpActor, at: datetime) -> dict[str, Any] | str:
    return {"state": OpState.CANCELLED, "cancel_reason": body.reason}


@dataclass(frozen=True)
class Spec:
    """One row of the table: action, label, from-states, roles, scope rule, body, effect."""

    action: str
    label: str
    from_states: frozenset[OpState]
    roles: frozenset[str]
    scope: Callable[[Operation, OpActor], str | None]
    body: type[_Body]
    effect: Callable[[Operation, Any, OpActor, datetime], dict[str, Any] | str]


# fmt: off
TRANSITIONS: Mapping[str, Spec] = MappingProxyType({s.action: s for s in (
    Spec("confirm", "报到", frozenset({OpState.OPEN}), frozenset({"unit", "admin"}), _confirm_scope,
         ConfirmBody, _confirm),
    Spec("conclude", "结束", frozenset({OpState.OPEN}), _COMMAND | {"unit"}, _lead_or_command,
         ConcludeBody, _conclude),
    Spec("cancel", "撤销", frozenset({OpState.OPEN}), _COMMAND, _command_scope, CancelBody, _cancel),
)})
# fmt: on


def apply(op: Operation, action: str, body: Mapping[str, Any], actor: OpActor, now: datetime) -> Applied | Refused:
    """One transition of an operation (checks: role, scope, body, version, state, the action's rule)."""
    spec = TRANSITIONS.get(action)
    if spec is None:
        return Refused("invalid", f"unknown action {action!r}")
    if actor.role not in spec.roles:
        return Refused("forbidden", f"角色 {actor.role} 不能{spec.label} / role {actor.role} may not {action}")
    if (why := spec.scope(op, actor)) is not None:
        return Refused("forbidden", why)
    try:
        parsed = spec.body.model_validate(body)
    except ValidationError as exc:
        return Refused("invalid", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    if parsed.expected_version != op.version:
        return Refused("conflict", f"version conflict: expected {parsed.expected_version}, operation at {op.version}")
    if op.state not in spec.from_states:
        return Refused("not_allowed", f"联合执法{op.state}，不能{spec.label} / cannot {action} a {op.state} operation")
    update = spec.effect(op, parsed, actor, now)
    if isinstance(update, str):
        return Refused("not_allowed" if "已报到" in update else "invalid", update)
    update.update(version=op.version + 1, last_transition_at=now)
    new = op.model_copy(update=update)
    before, after = op.model_dump(mode="json"), new.model_dump(mode="json")
    changes = {k: v for k, v in after.items() if before.get(k) != v}
    return Applied(new, action, parsed.model_dump(mode="json"), changes, actor, now)


def late_units(op: Operation, now: datetime) -> list[str]:
    """Units that have not confirmed though the operation has started (未按时报到). 逾时未报到单位。"""
    if op.state is not OpState.OPEN or now <= op.starts_at:
        return []
    return [u for u in op.units if u not in op.confirmations]
