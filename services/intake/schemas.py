"""Wire formats (version 1) of the producer systems, as pydantic models: 12345 工单, 数字城管 案卷,
网格员 上报, 审批办件 (双推送) and 监测告警.

Unknown extra keys are allowed, within bounds (size, depth, numbers: see
:mod:`services.intake.guards`): they stay in the raw record (intake's own
table) and are ignored by normalisation. No string may hold a NUL character.
Timestamps without an offset are read as Asia/Shanghai and must lie in a
plausible window (not before ``EARLIEST_REPORTED_AT``, not more than
``FUTURE_TOLERANCE`` ahead). Validation errors name the failing field
(FastAPI's 422 error list).
"""

from __future__ import annotations

import functools
import json
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.intake.guards import record_problem
from shared.geo import in_china_bbox
from shared.vocabulary import AlarmLevel, ApprovalResult, Crs, DeviceKind, Source, Urgency

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: How far ahead of now a reported time may be (clock skew); set from settings at start-up.
FUTURE_TOLERANCE = timedelta(minutes=5)


#: No reported time before this is plausible (a year-0001 time would break every later date
#: computation); set from settings at start-up. 早于此时间的上报时间不合理。
EARLIEST_REPORTED_AT = datetime(2000, 1, 1, tzinfo=SHANGHAI)


def set_future_tolerance(seconds: float) -> None:
    global FUTURE_TOLERANCE
    FUTURE_TOLERANCE = timedelta(seconds=seconds)


def set_earliest_reported_at(earliest: datetime) -> None:
    global EARLIEST_REPORTED_AT
    EARLIEST_REPORTED_AT = earliest if earliest.tzinfo else earliest.replace(tzinfo=SHANGHAI)


def _aware(value: datetime, info: ValidationInfo) -> datetime:
    """Naive → Asia/Shanghai; reject times before the plausible window or more than a few minutes ahead."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    context = info.context or {}
    now: datetime = context.get("now") or datetime.now(UTC)
    tolerance: timedelta = context.get("future_tolerance") or FUTURE_TOLERANCE
    earliest: datetime = context.get("earliest") or EARLIEST_REPORTED_AT
    try:
        too_early = value < earliest
    except OverflowError:  # an offset that pushes the time outside datetime's range
        too_early = True
    if too_early:
        raise ValueError(f"time is before {earliest.isoformat()} (not a plausible report time)")
    if value > now + tolerance:
        raise ValueError(f"time is in the future (more than {int(tolerance.total_seconds())} s ahead of now)")
    return value


ReportedTime = Annotated[datetime, AfterValidator(_aware)]
SourceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-./:#]+$")]


@functools.cache
def declared_paths(model: type[BaseModel]) -> frozenset[tuple[str, ...]]:
    """Paths of a model's declared keys, nested models included (``"*"`` for list items). 声明字段路径。"""
    paths: set[tuple[str, ...]] = set()
    stack: list[tuple[type[BaseModel], tuple[str, ...]]] = [(model, ())]
    while stack:
        current, prefix = stack.pop()
        for name, field in current.model_fields.items():
            paths.add((*prefix, name))
            pending: list[tuple[Any, tuple[str, ...]]] = [(field.annotation, (*prefix, name))]
            while pending:
                annotation, at = pending.pop()
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    stack.append((annotation, at))
                    continue
                origin = typing.get_origin(annotation)
                inner = (*at, "*") if origin in (list, tuple, set) else at
                pending.extend((arg, inner) for arg in typing.get_args(annotation))
    return frozenset(paths)


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _guard(cls, data: Any) -> Any:
        """NUL characters, excessive nesting and oversized unknown keys → 422 naming the field."""
        if isinstance(data, dict):
            problem = record_problem(data, known=declared_paths(cls))
            if problem is not None:
                raise PydanticCustomError("unsafe_input", "{problem}", {"problem": problem})
        return data


class Location(BaseModel):
    """事发位置: a point in the producer's coordinate system."""

    model_config = ConfigDict(extra="forbid")

    lng: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Crs

    @model_validator(mode="after")
    def _in_china(self) -> Location:
        if not in_china_bbox(self.lng, self.lat):
            raise ValueError("coordinates are outside China's bounding box (lng 73–135.5, lat 3.5–53.6)")
        return self


class Caller(BaseModel):
    """来电人 (personal data: stays in intake's raw record)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=32, pattern=r"^\+?[\d\- ]{3,32}$")
    anonymous: bool = False


class Attachment(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str = Field(min_length=1, max_length=2048)
    kind: str | None = Field(None, max_length=32)


class HotlineTicket(_Record):
    """12345 热线工单."""

    ticket_no: SourceId
    received_at: ReportedTime
    channel: Literal["phone", "web", "app", "wechat", "email", "other"]
    appeal_type: Literal["consult", "help", "complaint", "report", "suggestion", "praise"]
    category_code: str = Field(min_length=1, max_length=32)
    title: str | None = Field(None, max_length=200)
    content: str = Field(min_length=1, max_length=20_000)
    caller: Caller | None = None
    address: str = Field(min_length=1, max_length=500)
    location: Location | None = None
    division_code: str | None = Field(None, pattern=r"^\d{6,15}$")
    urgency: Urgency = "normal"
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)


class CityOpsCase(_Record):
    """数字城管案卷. 大类 two digits; 小类 two digits (older scheme) or three (GB/T 47678.5-2026)."""

    case_no: SourceId
    reported_at: ReportedTime
    reporter_type: Literal["supervisor", "public", "leader", "media", "sensor"]
    kind: Literal["component", "event"]
    major_code: str = Field(pattern=r"^\d{2}$")
    minor_code: str = Field(pattern=r"^\d{2,3}$")
    component_id: str | None = Field(None, max_length=64)
    description: str = Field(min_length=1, max_length=20_000)
    address: str = Field(min_length=1, max_length=500)
    location: Location | None = None
    cell_code: str | None = Field(None, pattern=r"^\d{6,20}$")
    urgency: Urgency = "normal"
    photos: list[str] = Field(default_factory=list, max_length=50)


class GridWorkerReport(_Record):
    """网格员上报."""

    report_id: SourceId
    reported_at: ReportedTime
    worker_id: str = Field(min_length=1, max_length=64)
    worker_name: str | None = Field(None, max_length=100)
    grid_code: str = Field(pattern=r"^\d{9,20}$")
    event_type: str = Field(min_length=1, max_length=32)
    description: str = Field(min_length=1, max_length=20_000)
    address: str | None = Field(None, max_length=500)
    location: Location | None = None
    severity: Literal["general", "major", "serious"] = "general"
    self_handled: bool = False
    photos: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("photos")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        return [u.strip() for u in v]


class Applicant(BaseModel):
    """申请人: an org (统一社会信用代码) or a person (ID number: personal data, stays in intake's raw record)."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["org", "person"]
    name: str = Field(min_length=1, max_length=200)
    credit_code: str | None = Field(None, pattern=r"^[0-9A-Za-z]{15,18}$")


class ApprovalRecord(_Record):
    """审批办件 双推送: an approval decision of the 便民服务中心, for 事中事后监管."""

    approval_no: SourceId
    approved_at: ReportedTime
    item_code: str = Field(min_length=1, max_length=64, description="审批事项 code")
    item_name: str | None = Field(None, max_length=200)
    result: ApprovalResult
    applicant: Applicant
    address: str = Field(min_length=1, max_length=500)
    location: Location | None = None
    division_code: str | None = Field(None, pattern=r"^\d{6,15}$")
    conditions: str | None = Field(None, max_length=5_000, description="承诺事项 / 许可条件")
    supervise_within_days: int | None = Field(None, ge=1, le=365, description="first check due, working days")


class AlarmRecord(_Record):
    """监测告警: a video-AI or sensor alarm. Re-posting it with ``cleared_at`` (and possibly ``level``)
    added is an update (告警恢复)."""

    alarm_id: SourceId
    device_id: str = Field(min_length=1, max_length=64)
    device_kind: DeviceKind
    alarm_type: str = Field(min_length=1, max_length=64)
    raised_at: ReportedTime
    cleared_at: ReportedTime | None = None
    level: AlarmLevel
    confidence: float | None = Field(None, ge=0, le=1)
    value: float | None = None
    threshold: float | None = None
    location: Location
    address: str | None = Field(None, max_length=500)
    snapshot_url: str | None = Field(None, min_length=1, max_length=2048)

    @model_validator(mode="after")
    def _cleared_after_raised(self) -> AlarmRecord:
        if self.cleared_at is not None and self.cleared_at < self.raised_at:
            raise ValueError("cleared_at is before raised_at")
        return self


SourceRecord = HotlineTicket | CityOpsCase | GridWorkerReport | ApprovalRecord | AlarmRecord

SOURCE_MODELS: dict[Source, type[SourceRecord]] = {
    "12345": HotlineTicket,
    "cityops": CityOpsCase,
    "gridworker": GridWorkerReport,
    "approval": ApprovalRecord,
    "alarm": AlarmRecord,
}
SOURCE_ID_FIELD: dict[Source, str] = {
    "12345": "ticket_no",
    "cityops": "case_no",
    "gridworker": "report_id",
    "approval": "approval_no",
    "alarm": "alarm_id",
}


class BatchBody(BaseModel):
    """``{"events": [...]}``: each item is validated on its own; one bad item never rejects the others."""

    events: list[dict[str, Any]] = Field(min_length=1)


#: A complete example record per source (OpenAPI docs, README, tests): ``deploy/demo/examples/<source>.json``.
EXAMPLES: dict[Source, dict[str, Any]] = {
    source: json.loads(
        (Path(__file__).resolve().parents[2] / "deploy" / "demo" / "examples" / f"{source}.json").read_text(
            encoding="utf-8"
        )
    )
    for source in get_args(Source)
}
