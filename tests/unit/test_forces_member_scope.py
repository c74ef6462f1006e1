"""The ``member`` role (队员): its token, what it sees (shared/visibility.py, in Python and SQL) and what
metrics shows it (nothing)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, Table, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from services.metrics.access import OutOfScopeError, narrowed, sees_row
from shared.auth import StaffPrincipal, StaffTokensError, parse_staff_tokens
from shared.visibility import Viewer, case_scope, sees_case

ME = Viewer(role="member", township="T1", unit="U1", member="M1")
T = Table("t", MetaData(), Column("township", Text), Column("unit", Text), Column("cohandlers", ARRAY(Text)),
          Column("assignees", ARRAY(Text)))  # fmt: skip


def test_a_member_token_needs_its_unit_and_member_id() -> None:
    ok = parse_staff_tokens('{"m": {"role": "member", "township": "T1", "unit": "U1", "member": "M1"}}')
    assert ok["m"].member == "M1" and Viewer.of(ok["m"]) == ME
    for spec in ('{"role": "member", "township": "T1", "unit": "U1"}', '{"role": "member", "township": "T1", '
                 '"member": "M1"}', '{"role": "unit", "township": "T1", "unit": "U1", "member": "M1"}'):  # fmt: skip
        with pytest.raises(StaffTokensError):
            parse_staff_tokens('{"x": ' + spec + "}")
    assert StaffPrincipal(role="member", township="*", unit="U1", member="M1").whole_county  # still a member


def test_a_member_sees_the_cases_of_its_unit_assigned_to_it_only() -> None:
    assert sees_case(ME, township="T1", unit="U1", assignees=("M1", "M2"))
    assert not sees_case(ME, township="T1", unit="U1", assignees=("M2",))  # someone else's task
    assert not sees_case(ME, township="T1", unit="U2", assignees=("M1",))  # moved to another unit
    assert not sees_case(ME, township="T1", unit="U1", cohandlers=("U1",))  # the unit's, not its
    county_wide = Viewer(role="member", township="*", unit="U1", member="M1")
    assert not county_wide.sees_all and county_wide.only_township is None and county_wide.only_unit == "U1"
    assert not sees_case(county_wide, township="T9", unit="U9")


def test_the_same_rule_in_sql() -> None:
    def sql(viewer: Viewer, **cols: object) -> str:
        cond = case_scope(viewer, township=T.c.township, unit=T.c.unit, cohandlers=T.c.cohandlers, **cols)
        return str(cond.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))

    assert sql(ME, assignees=T.c.assignees) == "t.unit = 'U1' AND 'M1' = ANY (t.assignees)"
    assert sql(ME) == "false"  # a table without assignments (metrics' facts): nothing


def test_metrics_shows_a_member_no_figures() -> None:
    with pytest.raises(OutOfScopeError):
        narrowed(ME, "unit", None)
    with pytest.raises(OutOfScopeError):
        narrowed(ME, "township", "T1")
    assert not sees_row(ME, {"township": "T1", "unit": "U1"})
