"""Metrics' data scope 数据范围: the one visibility rule (shared.visibility) applied to filters and rows."""

from __future__ import annotations

import pytest

from services.metrics.access import OutOfScopeError, narrowed, visible_rows
from shared.auth import StaffPrincipal
from shared.visibility import Viewer

QINGXI = "330127101"
ROWS = [
    {"unit": "330127101-zfd", "township": QINGXI, "unit_kind": "enforcement_team"},
    {"unit": "pz-pcs-qingxi", "township": QINGXI, "unit_kind": "stationed_agency"},
    {"unit": "330127102-zfd", "township": "330127102", "unit_kind": "enforcement_team"},
]


def viewer(**spec: str) -> Viewer:
    return Viewer.of(StaffPrincipal(**spec))  # type: ignore[arg-type]


def test_a_township_token_sees_and_filters_its_own_township_only() -> None:
    township = viewer(role="township_admin", township=QINGXI)
    assert narrowed(township, "township", None) == QINGXI
    assert narrowed(township, "township", QINGXI) == QINGXI
    assert narrowed(township, "unit", "anything") == "anything"
    with pytest.raises(OutOfScopeError, match="township"):
        narrowed(township, "township", "330127102")
    assert [r["unit"] for r in visible_rows(ROWS, township)] == ["330127101-zfd", "pz-pcs-qingxi"]


def test_a_unit_token_sees_its_own_unit_only() -> None:
    unit = viewer(role="unit", township=QINGXI, unit="pz-pcs-qingxi")
    assert narrowed(unit, "unit", None) == "pz-pcs-qingxi"
    assert narrowed(unit, "township", "330127102") == "330127102"
    with pytest.raises(OutOfScopeError, match="unit"):
        narrowed(unit, "unit", "330127101-zfd")
    assert [r["unit"] for r in visible_rows(ROWS, unit)] == ["pz-pcs-qingxi"]


@pytest.mark.parametrize(
    "spec",
    [
        {"role": "admin", "township": "*"},
        {"role": "dispatcher", "township": "*"},
        # admin and hotline see everything, whatever township their token names (as in dispatch)
        {"role": "admin", "township": QINGXI},
        {"role": "hotline", "township": QINGXI},
    ],
)
def test_county_wide_tokens_see_everything(spec: dict[str, str]) -> None:
    everyone = viewer(**spec)
    assert narrowed(everyone, "township", "330127102") == "330127102"
    assert narrowed(everyone, "unit", None) is None
    assert len(visible_rows(ROWS, everyone)) == 3
    assert [r["unit"] for r in visible_rows(ROWS, everyone, township=QINGXI, kind="stationed_agency")] == [
        "pz-pcs-qingxi"
    ]
