"""Grid's response models (网格服务应答模型); see :mod:`shared.answers`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.answers import Answer


class CountyState(Answer):
    """A county in the registry: current bundle and rule-set versions 区县登记状态."""

    county_code: str
    name: str
    version: int
    rules_version: int
    digest: str
    updated_at: str | None
    updated_by: str | None


class BundleImported(CountyState):
    """An imported bundle: the county's state, whether anything changed, what it holds 导入结果."""

    changed: bool
    counts: dict[str, int]


class RulesReplaced(CountyState):
    """Replaced override rules: the county's state, whether anything changed, how many rules 规则替换结果."""

    changed: bool
    rules: int


class Bundle(Answer):
    """A county's jurisdiction bundle, the format ``PUT /v1/jurisdiction`` takes 辖区数据包."""

    county_code: str
    name: str
    version: int
    divisions: dict[str, Any]
    units: list[dict[str, Any]] = Field(default_factory=list)
    matters: list[dict[str, Any]] = Field(default_factory=list)
    rules: list[dict[str, Any]] = Field(default_factory=list)


class Counties(Answer):
    """Counties in the registry 已登记区县."""

    counties: list[CountyState]


class RuleSetInfo(Answer):
    """One stored rule-set version (without its rules) 规则集版本."""

    county_code: str
    rules_version: int
    bundle_version: int
    change: str
    created_at: str | None
    created_by: str | None


class RuleSet(RuleSetInfo):
    """One stored rule-set version with its rules 规则集版本及规则."""

    rules: list[dict[str, Any]]


class CountyDetail(CountyState):
    """A county with its bundle versions and rule-set history 区县详情."""

    bundle_versions: list[dict[str, Any]]
    rule_sets: list[RuleSetInfo]


class RuleHistory(Answer):
    """A county's rule-set versions 规则集版本历史."""

    county_code: str
    rule_sets: list[RuleSetInfo]


class CurrentRules(Answer):
    """The override rules in force 当前派遣规则."""

    county_code: str
    version: int
    rules_version: int
    rules: list[dict[str, Any]]


class Place(Answer):
    """A division on the way up from a point 区划（编码与名称）."""

    code: str
    name: str


class Located(Answer):
    """Where a point lies: grid, village, township, county 点位定位结果."""

    lng: float
    lat: float
    crs: str
    wgs84: dict[str, float]
    level: str
    grid: Place | None
    village: Place | None
    township: Place | None
    county: Place | None
    version: int
    rules_version: int


class DivisionItem(Answer):
    """A division without geometry 区划."""

    code: str
    name: str
    level: str
    parent_code: str | None


class Divisions(Answer):
    """Divisions of a county 区划列表."""

    county_code: str
    version: int
    divisions: list[DivisionItem]


class DivisionDetail(DivisionItem):
    """One division with its parents, children and (optionally) its boundary 区划详情."""

    county_code: str
    version: int
    parents: list[DivisionItem]
    children: list[DivisionItem]


class Units(Answer):
    """Handling units 承办单位."""

    county_code: str
    version: int
    units: list[dict[str, Any]]


class Matters(Answer):
    """The matter catalogue with devolution 事项清单."""

    county_code: str
    version: int
    matters: list[dict[str, Any]]
