"""Normalisation (标准化): each source's record → one ``IncidentReported`` (approvals and alarms: its
kinds ``ApprovalReported`` / ``AlarmReported``, :mod:`services.intake.approvals`, :mod:`services.intake.alarms`).

Pure functions, no I/O. The caller's phone never leaves intake: the event
carries it masked (``138****5678``) plus a salted hash for linking repeat
callers; mobile and ID numbers typed into the free text (title, content,
description, address) are masked too (:mod:`services.intake.pii`). Every point is
converted to WGS-84 before anything else looks at it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import datetime
from typing import Any, Literal

import orjson

from services.intake.alarms import from_alarm
from services.intake.approvals import from_approval
from services.intake.pii import mask_optional, mask_personal_numbers
from services.intake.points import point
from services.intake.schemas import (
    AlarmRecord,
    ApprovalRecord,
    CityOpsCase,
    GridWorkerReport,
    HotlineTicket,
    SourceRecord,
)
from shared.events import CallerRef, IncidentReported, incident_event_id

#: 网格员 事件等级 → platform urgency.
SEVERITY_TO_URGENCY: dict[str, Literal["normal", "urgent", "critical"]] = {
    "general": "normal",
    "major": "urgent",
    "serious": "critical",
}

#: 大类 labels of the national 部件和事件 classification (GB/T 30428 / GB/T 47678), by kind.
CITYOPS_MAJOR_NAMES: dict[tuple[str, str], str] = {
    ("component", "01"): "公用设施",
    ("component", "02"): "道路交通",
    ("component", "03"): "市容环境",
    ("component", "04"): "园林绿化",
    ("component", "05"): "房屋土地",
    ("component", "06"): "其他设施",
    ("event", "01"): "市容环境",
    ("event", "02"): "宣传广告",
    ("event", "03"): "施工管理",
    ("event", "04"): "突发事件",
    ("event", "05"): "街面秩序",
    ("event", "06"): "扩展事件",
}


def content_hash(raw: dict[str, Any]) -> str:
    """Hash of a producer's record as sent (canonical JSON): same content ⇔ same hash."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _digits(phone: str) -> str:
    """The phone's digits, a mobile's +86 country prefix dropped."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``; short numbers keep only their last two digits."""
    digits = _digits(phone)
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def phone_hash(phone: str, salt: str) -> str:
    """Salted HMAC-SHA256 of the phone's digits (a mobile's +86 prefix dropped), for linking repeat callers."""
    digits = _digits(phone)
    return hmac.new(salt.encode(), digits.encode(), hashlib.sha256).hexdigest()[:32]


def normalise(source: str, record: SourceRecord, *, received_at: datetime, phone_salt: str) -> IncidentReported:
    """One validated source record → the platform's event."""
    if isinstance(record, HotlineTicket):
        return _from_hotline(record, received_at=received_at, phone_salt=phone_salt)
    if isinstance(record, CityOpsCase):
        return _from_cityops(record, received_at=received_at)
    if isinstance(record, GridWorkerReport):
        return _from_gridworker(record, received_at=received_at)
    if isinstance(record, ApprovalRecord):
        return from_approval(record, received_at=received_at, salt=phone_salt)
    if isinstance(record, AlarmRecord):
        return from_alarm(record, received_at=received_at)
    raise TypeError(f"no normalisation for {source}: {type(record).__name__}")


def event_id_of(source: str, source_id: str) -> uuid.UUID:
    return incident_event_id(source, source_id)


def _from_hotline(t: HotlineTicket, *, received_at: datetime, phone_salt: str) -> IncidentReported:
    caller = None
    if t.caller is not None:
        phone = t.caller.phone
        caller = CallerRef(
            phone_masked=mask_phone(phone) if phone else None,
            phone_hash=phone_hash(phone, phone_salt) if phone else None,
            anonymous=t.caller.anonymous,
        )
    return IncidentReported(
        event_id=event_id_of("12345", t.ticket_no),
        source="12345",
        source_id=t.ticket_no,
        reported_at=t.received_at,
        received_at=received_at,
        title=mask_optional(t.title),
        description=mask_personal_numbers(t.content),
        category_codes={"category_code": t.category_code},
        category_key=t.category_code,
        location=point(t.location),
        address=mask_personal_numbers(t.address),
        division_code=t.division_code,
        urgency=t.urgency,
        reporter_kind="caller",
        appeal_type=t.appeal_type,
        channel=t.channel,
        caller=caller,
        attachments=[a.url for a in t.attachments],
    )


def _from_cityops(c: CityOpsCase, *, received_at: datetime) -> IncidentReported:
    return IncidentReported(
        event_id=event_id_of("cityops", c.case_no),
        source="cityops",
        source_id=c.case_no,
        reported_at=c.reported_at,
        received_at=received_at,
        description=mask_personal_numbers(c.description),
        category_codes={"kind": c.kind, "major_code": c.major_code, "minor_code": c.minor_code},
        category_key=f"{c.major_code}-{c.minor_code}",
        category_name=CITYOPS_MAJOR_NAMES.get((c.kind, c.major_code)),
        location=point(c.location),
        address=mask_personal_numbers(c.address),
        cell_code=c.cell_code,
        urgency=c.urgency,
        reporter_kind=c.reporter_type,
        component_id=c.component_id,
        attachments=list(c.photos),
    )


def _from_gridworker(r: GridWorkerReport, *, received_at: datetime) -> IncidentReported:
    return IncidentReported(
        event_id=event_id_of("gridworker", r.report_id),
        source="gridworker",
        source_id=r.report_id,
        reported_at=r.reported_at,
        received_at=received_at,
        description=mask_personal_numbers(r.description),
        category_codes={"event_type": r.event_type},
        category_key=r.event_type,
        location=point(r.location),
        address=mask_optional(r.address),
        grid_code=r.grid_code,
        urgency=SEVERITY_TO_URGENCY[r.severity],
        reporter_kind="grid_worker",
        worker_id=r.worker_id,
        self_handled=r.self_handled,
        attachments=list(r.photos),
    )
