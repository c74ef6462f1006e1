"""力量调度's response models (documentation; see :mod:`shared.answers`). 力量调度应答模型。"""

from __future__ import annotations

from pydantic import Field

from shared.answers import Answer


class ForcesLoaded(Answer):
    """The people document was loaded 人员文档已载入."""

    county_code: str
    version: int
    members: int
    teams: int
    shifts: int


class MemberItem(Answer):
    """A member 队员 (phone masked outside the unit's own account)."""

    member_id: str
    unit: str
    name: str
    role: str = Field(description="leader 负责人 | member 队员 | grid_worker 网格员")
    grids: list[str]
    terminal_id: str | None
    phone: str | None


class MemberList(Answer):
    items: list[MemberItem]


class FixItem(Answer):
    at: str
    lng: float
    lat: float


class DutyItem(Answer):
    """A member now: on duty, busy, available and why 值班在岗."""

    member_id: str
    name: str
    role: str
    on_duty: bool
    on_duty_since: str | None
    on_duty_until: str | None
    busy: bool
    available: bool
    reason_zh: str
    open_tasks: int
    position: FixItem | None


class DutyList(Answer):
    unit: str
    at: str
    items: list[DutyItem]


class StatusSet(Answer):
    member_id: str
    busy: bool
    reason: str
    since: str


class PositionsAccepted(Answer):
    """A batch of positions 位置批量上报: how many were received and stored (WGS-84)."""

    received: int
    stored: int


class PositionItem(Answer):
    member_id: str
    unit: str
    name: str
    role: str
    at: str
    lng: float
    lat: float
    fresh: bool
    available: bool | None = None


class PositionList(Answer):
    items: list[PositionItem]


class Track(Answer):
    member_id: str
    points: list[FixItem]


class SuggestionItem(Answer):
    kind: str = Field(description="member | team")
    id: str
    name: str
    tier: int = Field(description="1 fresh position by distance, 2 grid worker of the grid (grid matter), 3 rest")
    distance_m: int | None
    open_tasks: int
    on_duty_since: str | None
    reasons: list[str]
    members: list[str]


class Suggestions(Answer):
    case_id: str
    unit: str | None
    items: list[SuggestionItem]


class Subscription(Answer):
    """A webhook subscription 推送订阅 (the secret is never shown)."""

    id: str
    unit: str
    member: str | None
    url: str
    created_at: str | None


class SubscriptionList(Answer):
    items: list[Subscription]


class Delivery(Answer):
    """One delivery 投递: pending (with its next attempt), delivered, or dead (死信, after N failures)."""

    id: int
    webhook_id: str
    transition_id: int
    event_type: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: str
    delivered_at: str | None
    payload: dict[str, object]


class DeliveryList(Answer):
    items: list[Delivery]


class OperationOne(Answer):
    """A joint operation 联合执法: its snapshot, units late to confirm now, units that confirmed late."""

    id: str
    township: str
    lead_unit: str
    units: list[str]
    starts_at: str
    ends_at: str
    place: str
    cases: list[str]
    state: str = Field(description="open | concluded | cancelled")
    version: int
    confirmations: dict[str, dict[str, object]]
    absent: list[str] = Field(description="units that never confirmed (recorded at the conclusion) 未报到")
    late_units: list[str] = Field(description="not confirmed though started 逾时未报到")
    confirmed_late: list[str] = Field(description="confirmed after the start 迟到报到")


class OperationList(Answer):
    items: list[OperationOne]


class OperationTimeline(Answer):
    operation_id: str
    entries: list[dict[str, object]]
