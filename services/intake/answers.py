"""Intake's response models (受理服务应答模型); see :mod:`shared.answers`."""

from __future__ import annotations

import uuid
from typing import Any

from shared.answers import Answer


class RawRecord(Answer):
    """What the producer sent, verbatim, and what it became 原始报文与标准化结果 (admin only: personal data)."""

    event_id: uuid.UUID
    source: str
    source_id: str
    received_at: str
    content_hash: str
    raw: dict[str, Any]
    normalised: dict[str, Any]


class Renormalised(Answer):
    """The stored raw record normalised again (dry run) 重新标准化结果（试运行）."""

    event_id: uuid.UUID
    normalised: dict[str, Any]
    stored: dict[str, Any]
    same_as_stored: bool
