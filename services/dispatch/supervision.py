"""Supervision tasks 监管任务 (事中事后监管 after an approval, 审批办件双推送). Pure: no I/O.

An approval (``approved`` 准予 / ``approved_with_conditions`` 附条件准予) becomes a case of kind
``inspection``, routed like any case (place, matter, devolution); its deadline is the first
check's: ``supervise_within_days`` working days after approval (the approval's own, else the
matter's 监管时限, else :data:`DEFAULT_SUPERVISE_DAYS`). ``denied`` 不予许可 creates nothing;
``revoked`` 撤销 closes the open task of the same approval (:attr:`Action.REVOKE`).

The task ends with an inspection result (:attr:`Action.RECORD_INSPECTION`): ``compliant`` 合格
(closed), ``rectify`` 责令整改 (closed; a follow-up check task 整改复查, with its own deadline, is
created and linked — its id is :func:`follow_up_id`), ``case_opened`` 立案查处 (the 执法 case
number is stored). 审批通过生成监管任务；检查结果：合格、责令整改（生成复查任务）、立案查处。
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from services.dispatch.action_bodies import ActionBody, Text
from services.dispatch.case_model import Actor, CaseSnapshot
from services.dispatch.identity import uuid5_of
from shared.jurisdiction import Matter
from shared.vocabulary import InspectionResult

__all__ = [
    "DEFAULT_SUPERVISE_DAYS",
    "INSPECTION",
    "REVOKED",
    "RecordInspectionBody",
    "RevokeBody",
    "creates_task",
    "effect_record_inspection",
    "effect_revoke",
    "follow_up_id",
    "pre_inspection_task",
    "supervise_days",
    "validate_record_inspection",
]

INSPECTION = "inspection"
#: Close reason of a task whose approval was revoked. 撤销。
REVOKED = "撤销"
#: 监管时限 when neither the approval nor the matter says. 默认监管时限（工作日）。
DEFAULT_SUPERVISE_DAYS = 10


class RecordInspectionBody(ActionBody):
    """检查结果: the result, what was found, the 执法 case number (立案查处 only), and for 责令整改
    the working days to the follow-up check (else the matter's 监管时限)."""

    result: InspectionResult
    note: Text
    enforcement_case_no: str | None = Field(None, min_length=1, max_length=64)
    follow_up_within_days: int | None = Field(None, ge=1, le=365)


class RevokeBody(ActionBody):
    """撤销: the approval was revoked (the revoking approval's number)."""

    approval_no: str | None = None
    reason: str = REVOKED


def creates_task(result: str) -> bool:
    """Whether an approval result creates a supervision task (准予 / 附条件准予). 是否生成监管任务。"""
    return result in ("approved", "approved_with_conditions")


def supervise_days(own: int | None, matter: Matter | None) -> int:
    """Working days to the first check: the approval's, else the matter's, else the default. 监管时限。"""
    if own is not None:
        return own
    if matter is not None and matter.supervise_within_days is not None:
        return matter.supervise_within_days
    return DEFAULT_SUPERVISE_DAYS


def follow_up_id(case_id: str | uuid.UUID) -> uuid.UUID:
    """The id of the 整改复查 task a rectify result creates (deterministic). 复查任务 id。"""
    return uuid5_of(uuid.UUID(str(case_id)).bytes, "follow-up")


# --------------------------------------------------------------------------- transition cells


def pre_inspection_task(case: CaseSnapshot, at: datetime) -> str | None:
    """Only supervision tasks. 仅限监管任务。"""
    if case.kind != INSPECTION:
        return "不是监管任务 / not a supervision task"
    return None


def validate_record_inspection(case: CaseSnapshot, body: RecordInspectionBody, at: datetime) -> str | None:
    """立案查处 needs the 执法 case number; the other results take none. 立案查处须填执法案件编号。"""
    if body.result == "case_opened" and not body.enforcement_case_no:
        return "立案查处须填执法案件编号 / case_opened needs enforcement_case_no"
    if body.result != "case_opened" and body.enforcement_case_no:
        return "只有立案查处才有执法案件编号 / enforcement_case_no belongs to case_opened only"
    return None


def effect_record_inspection(
    case: CaseSnapshot, body: RecordInspectionBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {
        "inspection_result": body.result,
        "enforcement_case_no": body.enforcement_case_no,
        "follow_up_case": str(follow_up_id(case.id)) if body.result == "rectify" else None,
    }


def effect_revoke(case: CaseSnapshot, body: RevokeBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"close_reason": REVOKED, "reject_window_ends_at": None}
