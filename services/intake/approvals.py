"""审批办件 双推送 → ``ApprovalReported`` (标准化). Pure: no I/O.

The approval becomes a report whose category is its 审批事项 (``item_code``, mapped to a matter
by the bundle's ``source_mappings.approval``) and whose place is the premises'. The applicant's
personal data is masked like a caller's: an org keeps its name and 统一社会信用代码; a person
keeps neither name nor ID number — the event carries the ID masked and a salted hash (to link
the same applicant's approvals). 申请人个人信息与来电人同样屏蔽：单位保留名称与信用代码；
个人不带姓名，证件号码脱敏并带加盐哈希。
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from services.intake.pii import mask_id_number, mask_optional, mask_personal_numbers
from services.intake.points import point
from services.intake.schemas import Applicant, ApprovalRecord
from shared.events import ApplicantRef, ApprovalFacts, ApprovalReported, incident_event_id

#: 审批结果 labels.
RESULT_LABELS: dict[str, str] = {
    "approved": "准予许可",
    "approved_with_conditions": "附条件准予许可（承诺制）",
    "denied": "不予许可",
    "revoked": "撤销许可",
}


def id_hash(number: str, salt: str) -> str:
    """Salted HMAC-SHA256 of an ID number (upper-cased), for linking one applicant's approvals. 证件号哈希。"""
    return hmac.new(salt.encode(), number.upper().encode(), hashlib.sha256).hexdigest()[:32]


def applicant_ref(applicant: Applicant, salt: str) -> ApplicantRef:
    """申请人 without personal data (see the module). 脱敏后的申请人。"""
    if applicant.kind == "org":
        return ApplicantRef(kind="org", name=applicant.name, credit_code=applicant.credit_code)
    code = applicant.credit_code
    return ApplicantRef(
        kind="person",
        credit_code=mask_id_number(code) if code else None,
        id_hash=id_hash(code, salt) if code else None,
    )


def from_approval(a: ApprovalRecord, *, received_at: datetime, salt: str) -> ApprovalReported:
    """One approval → its event. 审批办件 → 事件。"""
    applicant = applicant_ref(a.applicant, salt)
    who = applicant.name if applicant.kind == "org" else "个人申请人"
    item = a.item_name or a.item_code
    conditions = mask_optional(a.conditions)
    description = f"{item}：{RESULT_LABELS[a.result]}，申请人 {who}"
    if conditions:
        description += f"；承诺/条件：{conditions}"
    return ApprovalReported(
        event_id=incident_event_id("approval", a.approval_no),
        source="approval",
        source_id=a.approval_no,
        reported_at=a.approved_at,
        received_at=received_at,
        title=f"事中事后监管：{item}",
        description=description,
        category_codes={"item_code": a.item_code},
        category_key=a.item_code,
        category_name=a.item_name,
        location=point(a.location),
        address=mask_personal_numbers(a.address),
        division_code=a.division_code,
        reporter_kind="approval_system",
        approval=ApprovalFacts(
            approval_no=a.approval_no,
            item_code=a.item_code,
            item_name=a.item_name,
            result=a.result,
            approved_at=a.approved_at,
            applicant=applicant,
            conditions=conditions,
            supervise_within_days=a.supervise_within_days,
        ),
    )
