"""监测告警 → ``AlarmReported`` (标准化), and when a re-post is a clearing (告警恢复). Pure: no I/O.

An alarm's category is its ``alarm_type`` (mapped to a matter by ``source_mappings.alarm``); its
urgency follows its level (``info``/``warning`` 一般, ``alarm`` 紧急, ``critical`` 特急). The same
``alarm_id`` posted again with ``cleared_at`` (and possibly a new ``level``) added is an update —
the one exception to the 409 rule (:func:`is_clearing`). 同一告警再次推送、仅增加恢复时间（及级别）
为更新，其余变化仍为冲突。
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from services.intake.pii import mask_optional
from services.intake.points import point
from services.intake.schemas import AlarmRecord
from shared.events import AlarmCleared, AlarmFacts, AlarmReported, incident_event_id

LEVEL_TO_URGENCY: dict[str, Literal["normal", "urgent", "critical"]] = {
    "info": "normal",
    "warning": "normal",
    "alarm": "urgent",
    "critical": "critical",
}
DEVICE_LABELS: dict[str, str] = {
    "video": "视频AI",
    "water_level": "水位",
    "noise": "噪声",
    "smoke": "烟感",
    "manhole": "井盖",
    "air": "空气质量",
    "other": "其他",
}
#: Keys a clearing may add or change. 告警恢复可增改的字段。
CLEARING_KEYS: frozenset[str] = frozenset({"cleared_at", "level"})


def _reading(a: AlarmRecord) -> str:
    parts = [f"级别 {a.level}"]
    if a.value is not None:
        parts.append(f"读数 {a.value:g}" + (f" / 阈值 {a.threshold:g}" if a.threshold is not None else ""))
    if a.confidence is not None:
        parts.append(f"置信度 {a.confidence:.2f}")
    return "，".join(parts)


def from_alarm(a: AlarmRecord, *, received_at: datetime) -> AlarmReported:
    """One alarm → its event. 告警 → 事件。"""
    device = DEVICE_LABELS[a.device_kind]
    return AlarmReported(
        event_id=incident_event_id("alarm", a.alarm_id),
        source="alarm",
        source_id=a.alarm_id,
        reported_at=a.raised_at,
        received_at=received_at,
        title=f"{device}告警 {a.alarm_type}",
        description=f"设备 {a.device_id}（{device}）告警 {a.alarm_type}：{_reading(a)}",
        category_codes={"alarm_type": a.alarm_type, "device_kind": a.device_kind},
        category_key=a.alarm_type,
        location=point(a.location),
        address=mask_optional(a.address),
        urgency=LEVEL_TO_URGENCY[a.level],
        reporter_kind="sensor",
        attachments=[a.snapshot_url] if a.snapshot_url else [],
        alarm=AlarmFacts(
            alarm_id=a.alarm_id,
            device_id=a.device_id,
            device_kind=a.device_kind,
            alarm_type=a.alarm_type,
            raised_at=a.raised_at,
            cleared_at=a.cleared_at,
            level=a.level,
            confidence=a.confidence,
            value=a.value,
            threshold=a.threshold,
            snapshot_url=a.snapshot_url,
        ),
    )


def is_clearing(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """Whether ``incoming`` is ``stored`` with ``cleared_at`` (and possibly ``level``) added. 是否为告警恢复。

    The stored record must not be cleared yet, the incoming one must be; every other key must
    be the same, value for value. 已存记录尚未恢复、新记录带恢复时间，其余字段完全相同。
    """
    if stored.get("cleared_at") is not None or incoming.get("cleared_at") is None:
        return False

    def rest(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in CLEARING_KEYS}

    return rest(stored) == rest(incoming)


def clearing_of(event: AlarmReported) -> AlarmCleared:
    """The ``alarm.cleared`` fact of a cleared alarm's event. 告警恢复事实。"""
    assert event.alarm.cleared_at is not None
    return AlarmCleared(
        event_id=event.event_id,
        source_id=event.source_id,
        cleared_at=event.alarm.cleared_at,
        level=event.alarm.level,
        received_at=event.received_at,
    )
