"""Who dispatch is and how its ids are made (派遣的身份与确定性标识).

Ids are deterministic — ``cases.id = uuid5(CASE_NAMESPACE, incident id)`` and
``event id = uuid5(case id, "<version>:<type>")`` — so replaying ``incident.reported``
from offset 0 creates no case and publishes nothing twice. 标识确定：重放不会产生新案件或重复事件。
Pure: no I/O. 纯函数，无 I/O。
"""

from __future__ import annotations

import hashlib
import uuid

from services.dispatch.case_model import Actor, Role

__all__ = [
    "CASE_NAMESPACE",
    "EVENT_SOURCE",
    "SYSTEM_ACTOR",
    "SYSTEM_ADMIN",
    "case_id_for",
    "event_id_for",
    "uuid5_of",
]

#: Namespace of case ids: ``uuid5(CASE_NAMESPACE, str(incident event id))``. 案件 id 命名空间。
CASE_NAMESPACE = uuid.UUID("0b7d6c2e-5a43-5f0e-8d2a-6f3c1e9b4a71")
#: ``source`` of the events dispatch publishes. 事件来源。
EVENT_SOURCE = "/dispatch"
#: Who the service acts as for automatic transitions. 自动流转的操作人。
SYSTEM_ACTOR = Actor(Role.SYSTEM, id="system:dispatch")
#: Routing's co-handlers and the sweep's auto-escalation act with admin rights, recorded as the system.
#: 路由添加协办、超期自动吹哨以管理员权限执行，记录为系统。
SYSTEM_ADMIN = Actor(Role.ADMIN, township="*", id="system:dispatch")

_CASE_NAMESPACE_BYTES = CASE_NAMESPACE.bytes
#: Bits :func:`uuid.uuid5` sets: RFC 4122 variant (10xx) and version 5. uuid5 设置的变体与版本位。
_UUID5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID5_SET = (0x8000 << 48) | (5 << 76)


def uuid5_of(namespace: bytes, name: str) -> uuid.UUID:
    """:func:`uuid.uuid5` of a namespace given as bytes (the same id, about twice as fast). 同 uuid5，更快。"""
    digest = int.from_bytes(hashlib.sha1(namespace + name.encode()).digest()[:16], "big")
    return uuid.UUID(int=(digest & _UUID5_CLEAR) | _UUID5_SET)


def case_id_for(incident_id: uuid.UUID) -> uuid.UUID:
    """The case id of an incident (deterministic). 事件对应的案件 id（确定性）。"""
    return uuid5_of(_CASE_NAMESPACE_BYTES, str(incident_id))


def event_id_for(case_id: uuid.UUID, version: int, event_type: str) -> uuid.UUID:
    """The id of the event a transition publishes (deterministic). 流转事件 id（确定性）。"""
    return uuid5_of(case_id.bytes, f"{version}:{event_type}")
