"""Personal numbers in free text (自由文本中的个人信息): masked before an event leaves intake.

Callers and grid workers type phone numbers and ID numbers into the complaint text
(“我电话13812345678”, “身份证号330127199001011234”). The raw record in intake keeps them
(admin-only); what goes on Kafka, into dispatch's tables and out of the case API carries

* a mainland mobile number (手机号: 1[3-9] + 9 digits, optionally ``+86``/``86`` and spaces or
  dashes between the groups) as ``138****5678``;
* a resident ID number (居民身份证号码: 18 characters, area code, a plausible birth date, the
  last a digit or X) as ``330***********1234``.

Full-width digits (１３８…) count as digits. Pure functions, no I/O.
"""

from __future__ import annotations

import re

_D = "[0-9０-９]"
_SEP = r"[ \-－]?"

MOBILE = re.compile(
    rf"(?<![0-9０-９])(?:(?:\+|＋)?(?:86|８６){_SEP})?([1１][3-9３-９][0-9０-９]){_SEP}({_D}{{4}}){_SEP}({_D}{{4}})(?![0-9０-９])"
)
RESIDENT_ID = re.compile(
    rf"(?<![0-9０-９A-Za-z])({_D}{{6}})(?:1[89]|20|１[８９]|２０){_D}{{2}}{_D}{{2}}{_D}{{2}}{_D}{{3}}([0-9０-９Xx])"
    r"(?![0-9０-９A-Za-z])"
)


def _mask_mobile(match: re.Match[str]) -> str:
    return f"{match.group(1)}****{match.group(3)}"


def _mask_id(match: re.Match[str]) -> str:
    whole = match.group(0)
    return whole[:3] + "*" * (len(whole) - 7) + whole[-4:]


#: Eleven digits at least (separators allowed between them): text without such a run holds no
#: mobile or ID number, and most complaint text has none (one cheap search instead of two).
_CANDIDATE = re.compile(r"[0-9０-９](?:[ \-－]?[0-9０-９]){10}")


def mask_personal_numbers(text: str) -> str:
    """``text`` with every recognisable mobile and resident ID number masked. 屏蔽手机号与身份证号。"""
    if _CANDIDATE.search(text) is None:
        return text
    return MOBILE.sub(_mask_mobile, RESIDENT_ID.sub(_mask_id, text))


def mask_optional(text: str | None) -> str | None:
    """:func:`mask_personal_numbers` for optional fields."""
    return None if text is None else mask_personal_numbers(text)


def mask_id_number(number: str) -> str:
    """A person's ID number as ``330***********1234`` (first three, last four kept). 屏蔽证件号码。"""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
