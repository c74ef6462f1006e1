"""The jurisdiction bundle: model, validation, digest and routing snapshot / 辖区数据包.

A county's whole jurisdiction — division tree with boundaries, units (承办单位),
matter catalogue (事项清单), devolution lists (下放清单), township functions,
source-code mappings and override rules — travels as one JSON document (see
``shared/domain/jurisdiction.md``). This module is shared by the grid service
(import/export, PUT /rules) and the dispatch service (routing):

一个区县的完整辖区数据（区划树及边界、承办单位、事项清单、下放清单、镇街职能、
来源编码映射、派遣规则）以一个 JSON 文档流转。本模块由网格服务（导入导出、规则更新）
和派遣服务（派遣路由）共用：

* pydantic v2 models of the bundle — :class:`JurisdictionBundle` and parts;
  数据包的 pydantic 模型；
* :func:`parse_bundle` / :func:`validate_bundle` / :func:`rules_problems` —
  list *every* problem with a JSON-pointer-like path, never just the first;
  校验：列出全部问题及其路径；
* :func:`canonical_json` / :func:`bundle_digest` — a content hash, so importing
  the same bundle twice is detectable; 规范化 JSON 与内容摘要；
* :class:`JurisdictionSnapshot` — an immutable, pre-indexed view with the fast
  lookups dispatch needs (including a point :class:`~shared.locator.Locator`).
  不可变的快照，提供派遣所需的快速查询。

Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from shapely.geometry import shape
from shapely.validation import explain_validity

from shared.locator import LocateResult, Locator, LocatorDivision

__all__ = [
    "APPEAL_TYPES",
    "CODE_LENGTHS",
    "DIVISION_LEVELS",
    "MAX_DEADLINE_HOURS",
    "MAX_MATTER_GROUPS",
    "MAX_RULE_PRIORITY",
    "OVERLAP_TOLERANCE_DEG2",
    "PARENT_LEVEL",
    "SOURCES",
    "URGENCIES",
    "AppealType",
    "BundleInvalidError",
    "Deadlines",
    "Division",
    "DivisionCollection",
    "DivisionFeature",
    "DivisionLevel",
    "DivisionProperties",
    "Geometry",
    "JurisdictionBundle",
    "JurisdictionSnapshot",
    "LocateResult",
    "Matter",
    "Problem",
    "Rule",
    "RuleAction",
    "RuleConditions",
    "RuleFacts",
    "SourceName",
    "TimeBasis",
    "Unit",
    "UnitKind",
    "Urgency",
    "bundle_digest",
    "canonical_bundle",
    "canonical_json",
    "cityops_key_candidates",
    "parse_bundle",
    "parse_rules",
    "rule_matches",
    "rules_problems",
    "validate_bundle",
]

# --------------------------------------------------------------------------- vocabulary / 词表

DivisionLevel = Literal["county", "township", "village", "grid"]
UnitKind = Literal["township_office", "enforcement_team", "stationed_agency", "county_department"]
TimeBasis = Literal["working", "natural"]
Urgency = Literal["normal", "urgent", "critical"]
SourceName = Literal["12345", "cityops", "gridworker"]
AppealType = Literal["consult", "help", "complaint", "report", "suggestion", "praise"]

DIVISION_LEVELS: tuple[DivisionLevel, ...] = get_args(DivisionLevel)
URGENCIES: tuple[Urgency, ...] = get_args(Urgency)
SOURCES: tuple[SourceName, ...] = get_args(SourceName)
APPEAL_TYPES: tuple[AppealType, ...] = get_args(AppealType)

#: The level a division's parent must have. 各层级的上级层级。
PARENT_LEVEL: Mapping[DivisionLevel, DivisionLevel] = MappingProxyType(
    {"township": "county", "village": "township", "grid": "village"}
)
#: Allowed code lengths per level (统计用区划代码 ``PPCCDD TTT VVV`` + grid suffix of 3–4 digits).
#: 各层级编码位数：县 6、镇 9、村 12、网格在村编码后加 3–4 位。
CODE_LENGTHS: Mapping[DivisionLevel, tuple[int, ...]] = MappingProxyType(
    {"county": (6,), "township": (9,), "village": (12,), "grid": (15, 16)}
)
#: Deadlines and rule deadline overrides must be in (0, 1 year]. 时限范围（小时）。
MAX_DEADLINE_HOURS = 24 * 365
#: Two grids of one village overlap when their intersection is larger than this (deg²; ≈ 1 m²).
#: 同村网格交叠面积阈值（平方度，约 1 平方米）。
OVERLAP_TOLERANCE_DEG2 = 1e-10
#: Rule priorities are integers in [0, MAX_RULE_PRIORITY]. 规则优先级范围。
MAX_RULE_PRIORITY = 1_000_000
#: Matter groups become Prometheus label values: keep them few and short. 事项分组数量与长度上限。
MAX_MATTER_GROUPS = 32
MAX_GROUP_LENGTH = 16

_LEVEL_RANK: Mapping[str, int] = MappingProxyType({"grid": 0, "village": 1, "township": 2, "county": 3})
_TOWNSHIP_KINDS = frozenset({"township_office", "enforcement_team"})
_CITYOPS_KEY = re.compile(r"\d{2}-\d{2,3}")

# --------------------------------------------------------------------------- models / 模型


class _Closed(BaseModel):
    """Base for bundle parts whose unknown keys are errors (typos must not pass silently).

    未知字段视为错误（避免拼写错误被静默忽略）。
    """

    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Base for GeoJSON parts and the envelope: unknown keys are ignored. 未知字段忽略。"""

    model_config = ConfigDict(extra="ignore")


class DivisionProperties(_Open):
    """Properties of one division feature. 区划要素属性。"""

    code: str
    name: str
    level: DivisionLevel
    parent_code: str | None = None


class Geometry(_Open):
    """A GeoJSON Polygon or MultiPolygon in WGS-84. WGS-84 面或多面几何。"""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class DivisionFeature(_Open):
    """One division (county, township, village or grid). 一个区划要素。"""

    type: Literal["Feature"] = "Feature"
    properties: DivisionProperties
    geometry: Geometry | None = None


class DivisionCollection(_Open):
    """The division tree as a GeoJSON FeatureCollection. 区划要素集合。"""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[DivisionFeature] = Field(default_factory=list)


class Unit(_Closed):
    """A handling unit (承办单位).

    ``township_code`` for township offices and enforcement teams; ``department``
    (id of a ``county_department`` unit) for stationed agencies — a county
    department names itself; ``covers``: townships a stationed agency serves.
    镇内设机构、执法队填 ``township_code``；派驻机构填 ``department`` 与 ``covers``。
    """

    id: str
    name: str
    kind: UnitKind
    township_code: str | None = None
    department: str | None = None
    covers: list[str] | None = None


class Deadlines(_Closed):
    """Deadlines in hours by urgency (working hours when the basis is working time).

    按紧急程度的办理时限（小时；工作时制时为工作小时）。
    """

    normal: float
    urgent: float
    critical: float

    def for_urgency(self, urgency: Urgency) -> float:
        """Deadline hours for ``urgency``. 指定紧急程度的时限。"""
        value: float = getattr(self, urgency)
        return value


class Matter(_Closed):
    """A matter of the catalogue (事项). 事项清单中的一项。"""

    code: str
    name: str
    department: str
    township_function: str
    deadlines: Deadlines
    time_basis: TimeBasis
    #: Bounded group label (市容环境, 违法建设 …) used as a metrics label. 事项分组（用作监控标签）。
    group: str | None = None
    #: Escalate automatically once overdue. 超期自动升级。
    auto_escalate_when_overdue: bool = False


class RuleConditions(_Closed):
    """Conditions of an override rule: every listed one must hold (any value of its list).

    规则条件：所列条件须全部满足（列表内任一值即可）；空条件匹配一切。
    """

    matter: list[str] | None = None
    township: list[str] | None = None
    grid: list[str] | None = None
    source: list[SourceName] | None = None
    appeal_type: list[AppealType] | None = None
    urgency: list[Urgency] | None = None
    keywords: list[str] | None = None


class RuleAction(_Closed):
    """What a matching rule decides. 规则动作：主办单位、协办单位、时限覆盖。"""

    unit: str | None = None
    cohandlers: list[str] | None = None
    deadline_hours: float | None = None


class Rule(_Closed):
    """An override rule (派遣规则); lower ``priority`` first. 优先级数字小者先匹配。"""

    id: str
    priority: int
    description: str = ""
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    action: RuleAction = Field(default_factory=RuleAction)


class JurisdictionBundle(_Open):
    """A county's whole jurisdiction as one document (see jurisdiction.md). 辖区数据包。

    ``version`` is informative and ignored on import (the grid service numbers
    versions itself). ``version`` 仅供参考，导入时忽略。
    """

    version: int | None = None
    county_code: str
    name: str
    divisions: DivisionCollection
    units: list[Unit] = Field(default_factory=list)
    matters: list[Matter] = Field(default_factory=list)
    devolution: dict[str, list[str]] = Field(default_factory=dict)
    township_functions: dict[str, dict[str, str]] = Field(default_factory=dict)
    source_mappings: dict[SourceName, dict[str, str]] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)


_RULES_ADAPTER: TypeAdapter[list[Rule]] = TypeAdapter(list[Rule])

# --------------------------------------------------------------------------- problems / 问题


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a bundle, with a JSON-pointer-like path.

    数据包中的一个问题，``path`` 形如 ``divisions.features[12].properties.parent_code``。
    """

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form. 可直接序列化的字典。"""
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class BundleInvalidError(ValueError):
    """Raised when a snapshot is built from an invalid bundle or rule set. 数据包无效。"""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{len(self.problems)} problem(s): {shown}{more}")


def _path(*parts: str | int) -> str:
    """Join path parts: ints become ``[i]``, strings ``.name``. 拼接路径。"""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _problems_from_validation_error(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Turn pydantic errors into problems with our path syntax. pydantic 错误转问题。"""
    problems: list[Problem] = []
    for err in exc.errors():
        parts: list[str | int] = [prefix] if prefix else []
        parts.extend(p if isinstance(p, int) else str(p) for p in err["loc"])
        problems.append(Problem(_path(*parts) or "$", err["msg"]))
    return problems


# --------------------------------------------------------------------------- parsing / 解析


def parse_bundle(data: Any) -> tuple[JurisdictionBundle | None, list[Problem]]:
    """Parse and validate raw JSON data; the bundle is ``None`` if its shape is wrong.

    解析并校验原始 JSON：结构错误时返回 (None, 问题列表)；结构正确时返回
    (数据包, :func:`validate_bundle` 的问题列表)。A bundle is importable only when
    the problem list is empty. 问题列表为空才可导入。
    """
    try:
        bundle = JurisdictionBundle.model_validate(data)
    except ValidationError as exc:
        return None, _problems_from_validation_error(exc)
    return bundle, validate_bundle(bundle)


def parse_rules(data: Any) -> tuple[list[Rule] | None, list[Problem]]:
    """Parse a raw rule list (PUT /rules body); shape errors only. 解析规则列表（仅结构）。

    Call :func:`rules_problems` afterwards for references. 引用校验请再调用 :func:`rules_problems`。
    """
    try:
        rules = _RULES_ADAPTER.validate_python(data)
    except ValidationError as exc:
        return None, _problems_from_validation_error(exc, "rules")
    return rules, []


# --------------------------------------------------------------------------- validation / 校验


@dataclass(slots=True)
class _Refs:
    """Known identifiers that rules may reference. 规则可引用的标识集合。"""

    townships: set[str]
    grids: set[str]
    matters: set[str]
    units: set[str]


@dataclass(slots=True)
class _Checked:
    """Side products of validation reused by the snapshot. 校验的副产品（供快照复用）。"""

    problems: list[Problem]
    geometries: dict[str, Any] = field(default_factory=dict)


def validate_bundle(bundle: JurisdictionBundle | Mapping[str, Any]) -> list[Problem]:
    """List every problem of a bundle (empty list: the bundle is valid).

    列出数据包的全部问题（空列表表示有效）。Checks the division tree (parents,
    levels, code prefixes, duplicates), geometry (readable, non-empty, valid,
    WGS-84 range, grids have polygons, grids of one village do not overlap), units,
    matters (departments, deadlines, groups), devolution lists, township functions,
    source mappings and rules. A mapping is parsed first (shape errors are listed
    the same way). 传入字典时先解析，结构错误同样列出。
    """
    if not isinstance(bundle, JurisdictionBundle):
        _, problems = parse_bundle(bundle)
        return problems
    return _check_bundle(bundle).problems


def rules_problems(rules: Sequence[Rule], bundle: JurisdictionBundle | JurisdictionSnapshot) -> list[Problem]:
    """Validate a new rule set against a bundle or snapshot (PUT /rules). 校验新规则集。

    Paths are ``rules[i]...``. Checks unknown matters/townships/grids/units,
    empty condition lists, deadline ranges, duplicate ids and priorities, and
    actions that do nothing. 检查未知引用、空条件、时限范围、重复 id 与优先级、空动作。
    """
    if isinstance(bundle, JurisdictionSnapshot):
        refs = bundle._refs()
    else:
        refs = _refs_from_bundle(bundle)
    return _check_rules(rules, refs)


def _refs_from_bundle(bundle: JurisdictionBundle) -> _Refs:
    """Identifiers a rule may reference, taken from a bundle. 从数据包收集可引用标识。"""
    levels: dict[str, set[str]] = defaultdict(set)
    for feature in bundle.divisions.features:
        levels[feature.properties.level].add(feature.properties.code)
    return _Refs(
        townships=levels["township"],
        grids=levels["grid"],
        matters={m.code for m in bundle.matters},
        units={u.id for u in bundle.units},
    )


def _check_bundle(bundle: JurisdictionBundle) -> _Checked:
    """Every check of :func:`validate_bundle`, keeping the parsed geometries. 全部校验（保留已解析几何）。"""
    out = _Checked(problems=[])
    add = out.problems.append
    features = bundle.divisions.features

    # ---- division tree / 区划树
    if not (bundle.county_code.isdigit() and len(bundle.county_code) == 6):
        add(Problem("county_code", f"{bundle.county_code!r} is not a 6-digit county code (PPCCDD)"))
    first_index: dict[str, int] = {}
    county_seen = False
    for i, feature in enumerate(features):
        props = feature.properties
        base = _path("divisions", "features", i, "properties")
        if props.code in first_index:
            add(
                Problem(
                    f"{base}.code",
                    f"duplicate division code {props.code} (first at divisions.features[{first_index[props.code]}])",
                )
            )
        else:
            first_index[props.code] = i
        lengths = CODE_LENGTHS[props.level]
        if not props.code.isdigit() or len(props.code) not in lengths:
            want = " or ".join(str(n) for n in lengths)
            add(Problem(f"{base}.code", f"a {props.level} code has {want} digits, got {props.code!r}"))
        if not props.name.strip():
            add(Problem(f"{base}.name", "name is empty"))
        if props.level == "county":
            if county_seen:
                add(Problem(f"{base}.level", "a bundle describes one county: extra county feature"))
            county_seen = True
            if props.code != bundle.county_code:
                add(
                    Problem(
                        f"{base}.code",
                        f"county feature code {props.code} differs from county_code {bundle.county_code}",
                    )
                )
            if props.parent_code is not None:
                add(Problem(f"{base}.parent_code", "the county has no parent: parent_code must be null"))
    if not county_seen:
        add(Problem(_path("divisions", "features"), f"no county feature (level county, code {bundle.county_code})"))

    level_of = {code: features[i].properties.level for code, i in first_index.items()}
    for i, feature in enumerate(features):
        props = feature.properties
        if props.level == "county":
            continue
        base = _path("divisions", "features", i, "properties")
        want = PARENT_LEVEL[props.level]
        parent = props.parent_code
        if parent is None:
            add(Problem(f"{base}.parent_code", f"a {props.level} needs a parent {want}"))
            continue
        if parent not in level_of:
            add(Problem(f"{base}.parent_code", f"unknown parent code {parent}"))
            continue
        if level_of[parent] != want:
            add(
                Problem(
                    f"{base}.parent_code",
                    f"parent {parent} is a {level_of[parent]}; a {props.level}'s parent must be a {want}",
                )
            )
        if not props.code.startswith(parent) or props.code == parent:
            add(Problem(f"{base}.code", f"code {props.code} does not extend its parent's code {parent}"))

    # ---- geometry / 几何
    grids_by_village: dict[str, list[tuple[int, str, Any]]] = defaultdict(list)
    parsed: list[tuple[int, Any]] = []
    for i, feature in enumerate(features):
        props = feature.properties
        gpath = _path("divisions", "features", i, "geometry")
        if feature.geometry is None:
            if props.level == "grid":
                add(Problem(gpath, f"grid {props.code} has no geometry (point-less grid): a grid needs a polygon"))
            continue
        try:
            geom = shape(feature.geometry.model_dump())
        except Exception as exc:  # malformed coordinate arrays / 坐标数组格式错误
            add(Problem(f"{gpath}.coordinates", f"unreadable {feature.geometry.type} coordinates: {exc}"))
            continue
        if geom.is_empty:
            add(Problem(gpath, f"{props.level} {props.code} has an empty geometry"))
            continue
        parsed.append((i, geom))
    valid_flags = shapely.is_valid(np.array([g for _, g in parsed], dtype=object)) if parsed else []
    for (i, geom), ok in zip(parsed, valid_flags, strict=True):
        props = features[i].properties
        gpath = _path("divisions", "features", i, "geometry")
        minx, miny, maxx, maxy = geom.bounds
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)) or (
            minx < -180 or maxx > 180 or miny < -90 or maxy > 90
        ):
            add(Problem(f"{gpath}.coordinates", "coordinates outside the WGS-84 range (lng ±180, lat ±90)"))
            continue
        if not ok:
            add(Problem(gpath, f"invalid polygon: {explain_validity(geom)}"))
            continue
        if first_index.get(props.code) == i:
            out.geometries[props.code] = geom
            if props.level == "grid" and props.parent_code is not None:
                grids_by_village[props.parent_code].append((i, props.code, geom))
    for village, grids in grids_by_village.items():
        if len(grids) < 2:
            continue
        geoms = np.array([g for _, _, g in grids], dtype=object)
        tree = shapely.STRtree(geoms)
        pairs = tree.query(geoms, predicate="intersects")
        keep = pairs[0] < pairs[1]
        left, right = pairs[0][keep], pairs[1][keep]
        if not len(left):
            continue
        areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
        for a, b, area in zip(left, right, areas, strict=True):
            if area > OVERLAP_TOLERANCE_DEG2:
                ia, code_a, _ = grids[int(a)]
                ib, code_b, _ = grids[int(b)]
                first, second = (ia, code_a), (ib, code_b)
                if second[0] < first[0]:
                    first, second = second, first
                add(
                    Problem(
                        _path("divisions", "features", second[0], "geometry"),
                        f"grid {second[1]} overlaps grid {first[1]} (divisions.features[{first[0]}]) "
                        f"of village {village} by {area:.3g} deg²",
                    )
                )

    townships = {c for c, lvl in level_of.items() if lvl == "township"}

    # ---- units / 承办单位
    county_departments = {u.id for u in bundle.units if u.kind == "county_department"}
    unit_index: dict[str, int] = {}
    enforcement_of: dict[str, int] = {}
    agency_of: dict[tuple[str, str], int] = {}
    for i, unit in enumerate(bundle.units):
        base = _path("units", i)
        if not unit.id.strip():
            add(Problem(f"{base}.id", "unit id is empty"))
        if unit.id in unit_index:
            add(Problem(f"{base}.id", f"duplicate unit id {unit.id} (first at units[{unit_index[unit.id]}])"))
        else:
            unit_index[unit.id] = i
        if unit.kind in _TOWNSHIP_KINDS:
            if unit.township_code is None:
                add(
                    Problem(
                        f"{base}.township_code",
                        f"a {unit.kind} belongs to one township: township_code is required",
                    )
                )
        if unit.township_code is not None and unit.township_code not in townships:
            add(Problem(f"{base}.township_code", f"unknown township {unit.township_code}"))
        if unit.kind == "enforcement_team" and unit.township_code in townships:
            assert unit.township_code is not None
            if unit.township_code in enforcement_of:
                add(
                    Problem(
                        f"{base}.kind",
                        f"township {unit.township_code} already has an enforcement team "
                        f"(units[{enforcement_of[unit.township_code]}])",
                    )
                )
            else:
                enforcement_of[unit.township_code] = i
        if unit.kind == "county_department":
            if unit.department is not None and unit.department != unit.id:
                add(
                    Problem(
                        f"{base}.department",
                        f"a county department names itself: expected {unit.id!r} or nothing",
                    )
                )
        elif unit.department is not None and unit.department not in county_departments:
            add(Problem(f"{base}.department", f"unknown county department {unit.department}"))
        if unit.kind == "stationed_agency":
            if unit.department is None:
                add(
                    Problem(
                        f"{base}.department",
                        "a stationed agency belongs to a county department: department is required",
                    )
                )
            if not unit.covers:
                add(Problem(f"{base}.covers", "a stationed agency covers one or more townships"))
            for k, township in enumerate(unit.covers or []):
                if township not in townships:
                    add(Problem(f"{base}.covers[{k}]", f"unknown township {township}"))
                elif unit.department is not None:
                    key = (unit.department, township)
                    if key in agency_of and agency_of[key] != i:
                        add(
                            Problem(
                                f"{base}.covers[{k}]",
                                f"township {township} is already covered by units[{agency_of[key]}] "
                                f"of department {unit.department}",
                            )
                        )
                    else:
                        agency_of[key] = i
        elif unit.covers:
            add(Problem(f"{base}.covers", f"only stationed agencies cover townships, not a {unit.kind}"))

    # ---- matters / 事项
    matter_index: dict[str, int] = {}
    groups: dict[str, int] = {}
    for i, matter in enumerate(bundle.matters):
        base = _path("matters", i)
        if not matter.code.strip():
            add(Problem(f"{base}.code", "matter code is empty"))
        if matter.code in matter_index:
            add(
                Problem(
                    f"{base}.code",
                    f"duplicate matter code {matter.code} (first at matters[{matter_index[matter.code]}])",
                )
            )
        else:
            matter_index[matter.code] = i
        if matter.department not in county_departments:
            what = "unknown unit" if matter.department not in unit_index else "not a county_department unit"
            add(Problem(f"{base}.department", f"{matter.department}: {what}"))
        if not matter.township_function.strip():
            add(Problem(f"{base}.township_function", "township_function is empty"))
        in_range = True
        for name in URGENCIES:
            hours = matter.deadlines.for_urgency(name)
            if not _hours_ok(hours):
                in_range = False
                add(
                    Problem(
                        f"{base}.deadlines.{name}",
                        f"{hours} h is out of range (0 < h ≤ {MAX_DEADLINE_HOURS})",
                    )
                )
        d = matter.deadlines
        if in_range and not (d.normal >= d.urgent >= d.critical):
            add(
                Problem(
                    f"{base}.deadlines",
                    f"deadlines must not grow with urgency (normal {d.normal} ≥ urgent {d.urgent} "
                    f"≥ critical {d.critical})",
                )
            )
        if matter.group is not None:
            if not matter.group.strip() or len(matter.group) > MAX_GROUP_LENGTH:
                add(Problem(f"{base}.group", f"group must be 1–{MAX_GROUP_LENGTH} characters"))
            else:
                groups.setdefault(matter.group, i)
    if len(groups) > MAX_MATTER_GROUPS:
        add(Problem("matters", f"{len(groups)} matter groups; at most {MAX_MATTER_GROUPS} (metrics label)"))

    matters = {m.code: m for m in bundle.matters}

    # ---- township functions / 镇街职能
    for township, functions in bundle.township_functions.items():
        base = _path("township_functions", township)
        if township not in townships:
            add(Problem(base, f"unknown township {township}"))
        for function, unit_id in functions.items():
            if unit_id not in unit_index:
                add(Problem(f"{base}.{function}", f"unknown unit {unit_id}"))
                continue
            unit = bundle.units[unit_index[unit_id]]
            if unit.kind in _TOWNSHIP_KINDS and unit.township_code != township:
                add(
                    Problem(
                        f"{base}.{function}",
                        f"unit {unit_id} belongs to township {unit.township_code}, not {township}",
                    )
                )
            elif unit.kind == "stationed_agency" and township not in (unit.covers or []):
                add(Problem(f"{base}.{function}", f"stationed agency {unit_id} does not cover {township}"))
            elif unit.kind == "county_department":
                add(
                    Problem(
                        f"{base}.{function}",
                        f"{unit_id} is a county department; a township function needs a township unit",
                    )
                )

    # ---- devolution / 下放清单
    for township, codes in bundle.devolution.items():
        base = _path("devolution", township)
        if township not in townships:
            add(Problem(base, f"unknown township {township}"))
        seen: set[str] = set()
        functions = bundle.township_functions.get(township, {})
        for k, code in enumerate(codes):
            if code not in matters:
                add(Problem(f"{base}[{k}]", f"unknown matter {code}"))
            elif code in seen:
                add(Problem(f"{base}[{k}]", f"matter {code} listed twice"))
            elif township in townships and matters[code].township_function not in functions:
                fn = matters[code].township_function
                add(
                    Problem(
                        f"{base}[{k}]",
                        f"matter {code} is devolved but township_functions.{township} has no unit for function {fn!r}",
                    )
                )
            seen.add(code)

    # ---- source mappings / 来源编码映射
    for source, mapping in bundle.source_mappings.items():
        for src_code, code in mapping.items():
            p = _path("source_mappings", source, src_code)
            if not src_code.strip() or src_code != src_code.strip():
                add(Problem(p, f"source code {src_code!r} is empty or has surrounding spaces"))
            if source == "cityops" and not _CITYOPS_KEY.fullmatch(src_code):
                add(Problem(p, f"cityops key {src_code!r} must be <major>-<minor>: 2 digits, '-', 2 or 3 digits"))
            if code not in matters:
                add(Problem(p, f"unknown matter {code}"))

    # ---- rules / 规则
    refs = _Refs(
        townships=townships,
        grids={c for c, lvl in level_of.items() if lvl == "grid"},
        matters=set(matters),
        units=set(unit_index),
    )
    out.problems.extend(_check_rules(bundle.rules, refs))
    return out


def _hours_ok(hours: float) -> bool:
    """0 < hours ≤ one year, finite. 时限是否在范围内。"""
    return math.isfinite(hours) and 0 < hours <= MAX_DEADLINE_HOURS


def _check_rules(rules: Sequence[Rule], refs: _Refs) -> list[Problem]:
    """Problems of a rule set against known identifiers. 规则集校验。"""
    problems: list[Problem] = []
    add = problems.append
    ids: dict[str, int] = {}
    priorities: dict[int, int] = {}
    known: dict[str, tuple[set[str], str]] = {
        "matter": (refs.matters, "matter"),
        "township": (refs.townships, "township"),
        "grid": (refs.grids, "grid"),
    }
    for i, rule in enumerate(rules):
        base = _path("rules", i)
        if not rule.id.strip():
            add(Problem(f"{base}.id", "rule id is empty"))
        if rule.id in ids:
            add(Problem(f"{base}.id", f"duplicate rule id {rule.id} (first at rules[{ids[rule.id]}])"))
        else:
            ids[rule.id] = i
        if not 0 <= rule.priority <= MAX_RULE_PRIORITY:
            add(Problem(f"{base}.priority", f"priority {rule.priority} is out of range (0–{MAX_RULE_PRIORITY})"))
        if rule.priority in priorities:
            add(
                Problem(
                    f"{base}.priority",
                    f"duplicate priority {rule.priority} "
                    f"(rules[{priorities[rule.priority]}]): the order would be ambiguous",
                )
            )
        else:
            priorities[rule.priority] = i
        cond = rule.conditions
        for name in ("matter", "township", "grid", "source", "appeal_type", "urgency", "keywords"):
            values: list[str] | None = getattr(cond, name)
            if values is None:
                continue
            if not values:
                add(Problem(f"{base}.conditions.{name}", "empty list never matches: omit the condition instead"))
                continue
            if name in known:
                pool, what = known[name]
                for k, value in enumerate(values):
                    if value not in pool:
                        add(Problem(f"{base}.conditions.{name}[{k}]", f"unknown {what} {value}"))
            elif name == "keywords":
                for k, value in enumerate(values):
                    if not value.strip():
                        add(Problem(f"{base}.conditions.keywords[{k}]", "empty keyword matches everything"))
        action = rule.action
        if action.unit is not None and action.unit not in refs.units:
            add(Problem(f"{base}.action.unit", f"unknown unit {action.unit}"))
        seen: set[str] = set()
        for k, unit_id in enumerate(action.cohandlers or []):
            p = f"{base}.action.cohandlers[{k}]"
            if unit_id not in refs.units:
                add(Problem(p, f"unknown unit {unit_id}"))
            elif unit_id == action.unit:
                add(Problem(p, f"{unit_id} is already the primary unit"))
            elif unit_id in seen:
                add(Problem(p, f"{unit_id} listed twice"))
            seen.add(unit_id)
        if action.deadline_hours is not None and not _hours_ok(action.deadline_hours):
            add(
                Problem(
                    f"{base}.action.deadline_hours",
                    f"{action.deadline_hours} h is out of range (0 < h ≤ {MAX_DEADLINE_HOURS})",
                )
            )
        if action.unit is None and not action.cohandlers and action.deadline_hours is None:
            add(Problem(f"{base}.action", "the action does nothing: name a unit, cohandlers or deadline_hours"))
    return problems


# --------------------------------------------------------------------------- canonical form / 规范化


def _floats(value: Any) -> Any:
    """Coordinates with every number as float (``119`` and ``119.0`` hash alike). 坐标统一为浮点。"""
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def canonical_bundle(bundle: JurisdictionBundle) -> dict[str, Any]:
    """Canonical plain-data form: defaults filled, ``version`` dropped, lists whose
    order carries no meaning sorted (features by code, units by id, matters by
    code, rules by priority, condition/devolution/covers lists), coordinates as floats.

    规范化形式：补全默认值、去掉 ``version``、对无序列表排序、坐标统一为浮点。
    Geometry coordinate order and ``cohandlers`` order are kept. 坐标与协办顺序保持原样。
    """
    data = bundle.model_dump(mode="json", exclude={"version"})
    features = data["divisions"]["features"]
    for feature in features:
        if feature.get("geometry"):
            feature["geometry"]["coordinates"] = _floats(feature["geometry"]["coordinates"])
    features.sort(key=lambda f: (f["properties"]["code"], f["properties"]["level"]))
    for unit in data["units"]:
        if unit.get("covers") is not None:
            unit["covers"] = sorted(unit["covers"])
    data["units"].sort(key=lambda u: u["id"])
    data["matters"].sort(key=lambda m: m["code"])
    data["devolution"] = {t: sorted(codes) for t, codes in data["devolution"].items()}
    for rule in data["rules"]:
        rule["conditions"] = {k: (sorted(v) if v is not None else None) for k, v in rule["conditions"].items()}
    data["rules"].sort(key=lambda r: (r["priority"], r["id"]))
    return data


def canonical_json(bundle: JurisdictionBundle) -> bytes:
    """Canonical JSON bytes (sorted keys, compact, UTF-8). 规范化 JSON 字节串。"""
    text = json.dumps(
        canonical_bundle(bundle), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return text.encode("utf-8")


def bundle_digest(bundle: JurisdictionBundle) -> str:
    """SHA-256 hex digest of :func:`canonical_json` — equal digests mean nothing to import.

    规范化 JSON 的 SHA-256 摘要；摘要相同即内容相同，重复导入无需变更。
    """
    return hashlib.sha256(canonical_json(bundle)).hexdigest()


# --------------------------------------------------------------------------- rule matching / 规则匹配


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """What is known about an event when rules are evaluated. 规则匹配时的事件要素。"""

    matter: str | None = None
    township: str | None = None
    grid: str | None = None
    source: str | None = None
    appeal_type: str | None = None
    urgency: str | None = None
    #: Free text searched for keywords (title + content + address …). 关键词匹配文本。
    text: str = ""


def rule_matches(rule: Rule, facts: RuleFacts) -> bool:
    """Whether every listed condition of ``rule`` holds for ``facts``. 规则是否命中。

    A list condition holds when the fact is one of its values (an unknown fact
    never matches); ``keywords`` holds when any keyword occurs in ``facts.text``
    (case-insensitive). 关键词任一出现在文本中即满足（不区分大小写）。
    """
    cond = rule.conditions
    for name in ("matter", "township", "grid", "source", "appeal_type", "urgency"):
        values: list[str] | None = getattr(cond, name)
        if values is not None and getattr(facts, name) not in values:
            return False
    if cond.keywords is not None:
        text = facts.text.casefold()
        if not any(kw.strip() and kw.casefold() in text for kw in cond.keywords):
            return False
    return True


# --------------------------------------------------------------------------- snapshot / 快照


@dataclass(frozen=True, slots=True)
class Division:
    """One division in a snapshot (shapely geometry or ``None``). 快照中的一个区划。"""

    code: str
    name: str
    level: DivisionLevel
    parent_code: str | None
    geometry: Any = field(default=None, repr=False, compare=False)


def cityops_key_candidates(code: str) -> list[str]:
    """Keys to try for a 数字城管 ``major-minor`` code, most exact first. 数字城管编码候选键。

    Accepts ``01-01`` (older scheme), ``01-001`` (GB/T 47678.5-2026), ``1-1``,
    ``01/001``, ``01_001`` and run-together ``0101``/``01001``; yields the given
    form normalised, then the 2-digit and 3-digit minor forms.
    兼容旧版两位小类与 2026 版三位小类，并尝试互相转换。
    """
    raw = code.strip()
    s = re.sub(r"[\s_/.]+", "-", raw)
    if "-" in s:
        major, _, minor = s.partition("-")
    elif s.isdigit() and len(s) in (4, 5):
        major, minor = s[:2], s[2:]
    else:
        return [raw]
    if not (major.isdigit() and minor.isdigit()) or len(major) > 2 or len(minor) > 3:
        return [raw]
    major = major.zfill(2)
    number = int(minor)
    out = [raw, f"{major}-{minor.zfill(2)}"]
    if number < 100:
        out.append(f"{major}-{number:02d}")
    out.append(f"{major}-{number:03d}")
    return list(dict.fromkeys(out))


class JurisdictionSnapshot:
    """Immutable, pre-indexed view of one valid bundle for routing. 供派遣使用的不可变快照。

    Build once per (bundle version, rule-set version) and share between tasks;
    every lookup is a dict access (the locator is an STRtree). Returned pydantic
    models are shared: treat them as read-only. 每个（数据包版本、规则集版本）构建
    一次；查询均为字典访问；返回的模型对象共享，只读使用。
    """

    __slots__ = (
        "_agencies",
        "_bundle",
        "_children",
        "_county_departments",
        "_devolved",
        "_digest",
        "_divisions",
        "_frozen",
        "_functions",
        "_locator",
        "_mappings",
        "_matters",
        "_names",
        "_rules",
        "_units",
        "_units_by_township",
        "rules_version",
        "version",
    )

    def __init__(
        self,
        bundle: JurisdictionBundle,
        *,
        version: int,
        rules_version: int,
        validate: bool = True,
    ) -> None:
        """Index ``bundle`` (deep-copied). 建立快照（数据包会被深拷贝）。

        ``validate=True`` runs :func:`validate_bundle` and raises
        :class:`BundleInvalidError` listing every problem; pass ``False`` only for
        bundles already validated at import. 已在导入时校验过的数据包可跳过校验。
        """
        checked = _check_bundle(bundle) if validate else None
        if checked is not None and checked.problems:
            raise BundleInvalidError(checked.problems)
        self._frozen = False
        self.version = version
        self.rules_version = rules_version
        self._bundle = bundle.model_copy(deep=True)
        self._digest: str | None = None
        b = self._bundle

        geometries = checked.geometries if checked is not None else {}
        divisions: dict[str, Division] = {}
        children: dict[str, list[str]] = defaultdict(list)
        for feature in b.divisions.features:
            props = feature.properties
            if props.code in divisions:
                continue
            geom = geometries.get(props.code)
            if geom is None and feature.geometry is not None and checked is None:
                try:
                    geom = shape(feature.geometry.model_dump())
                except Exception:  # unvalidated bundle: skip unreadable geometry / 跳过无法解析的几何
                    geom = None
            divisions[props.code] = Division(props.code, props.name, props.level, props.parent_code, geom)
            if props.parent_code is not None:
                children[props.parent_code].append(props.code)
        self._divisions: Mapping[str, Division] = MappingProxyType(divisions)
        self._children: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {k: tuple(sorted(v)) for k, v in children.items()}
        )
        self._locator = Locator(LocatorDivision(d.code, d.level, d.parent_code, d.geometry) for d in divisions.values())

        self._units: Mapping[str, Unit] = MappingProxyType({u.id: u for u in b.units})
        by_township: dict[str, list[Unit]] = defaultdict(list)
        agencies: dict[tuple[str, str], Unit] = {}
        for unit in b.units:
            if unit.township_code is not None and unit.kind in _TOWNSHIP_KINDS:
                by_township[unit.township_code].append(unit)
            if unit.kind == "stationed_agency" and unit.department is not None:
                for township in unit.covers or []:
                    agencies.setdefault((unit.department, township), unit)
        self._units_by_township: Mapping[str, tuple[Unit, ...]] = MappingProxyType(
            {k: tuple(v) for k, v in by_township.items()}
        )
        self._agencies: Mapping[tuple[str, str], Unit] = MappingProxyType(agencies)
        self._county_departments: Mapping[str, Unit] = MappingProxyType(
            {u.id: u for u in b.units if u.kind == "county_department"}
        )
        self._matters: Mapping[str, Matter] = MappingProxyType({m.code: m for m in b.matters})
        self._devolved: Mapping[str, frozenset[str]] = MappingProxyType(
            {t: frozenset(codes) for t, codes in b.devolution.items()}
        )
        self._functions: Mapping[str, Mapping[str, str]] = MappingProxyType(
            {t: MappingProxyType(dict(f)) for t, f in b.township_functions.items()}
        )
        self._mappings: Mapping[str, Mapping[str, str]] = MappingProxyType(
            {s: MappingProxyType(dict(m)) for s, m in b.source_mappings.items()}
        )
        self._rules: tuple[Rule, ...] = tuple(sorted(b.rules, key=lambda r: (r.priority, r.id)))
        names = sorted(
            ((d.name, d) for d in divisions.values() if d.name.strip()),
            key=lambda item: (-len(item[0]), _LEVEL_RANK[item[1].level], item[1].code),
        )
        self._names: tuple[tuple[str, Division], ...] = tuple(names)
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False) and name != "_digest":
            raise AttributeError(f"JurisdictionSnapshot is immutable (cannot set {name})")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (
            f"JurisdictionSnapshot(county={self.county_code}, version={self.version}, "
            f"rules_version={self.rules_version}, divisions={len(self._divisions)})"
        )

    # ---------------------------------------------------------------- identity / 标识
    @property
    def county_code(self) -> str:
        """County code. 区县编码。"""
        return self._bundle.county_code

    @property
    def name(self) -> str:
        """County name. 区县名称。"""
        return self._bundle.name

    @property
    def digest(self) -> str:
        """:func:`bundle_digest` of the bundle (computed once, lazily). 数据包摘要。"""
        if self._digest is None:
            self._digest = bundle_digest(self._bundle)
        return self._digest

    def bundle(self) -> JurisdictionBundle:
        """A deep copy of the bundle (for export). 数据包深拷贝（导出用）。"""
        return self._bundle.model_copy(deep=True)

    def with_rules(self, rules: Sequence[Rule], rules_version: int) -> JurisdictionSnapshot:
        """A new snapshot with another rule set; divisions and locator are shared.

        换用新规则集的新快照（区划与定位器复用，不重建）。Raises
        :class:`BundleInvalidError` when :func:`rules_problems` finds problems.
        """
        problems = rules_problems(rules, self)
        if problems:
            raise BundleInvalidError(problems)
        clone = object.__new__(JurisdictionSnapshot)
        for slot in JurisdictionSnapshot.__slots__:
            if slot in ("_frozen", "_rules", "_bundle", "_digest", "rules_version"):
                continue
            object.__setattr__(clone, slot, getattr(self, slot))
        copied = [r.model_copy(deep=True) for r in rules]
        object.__setattr__(clone, "_bundle", self._bundle.model_copy(update={"rules": copied}))
        object.__setattr__(clone, "_rules", tuple(sorted(copied, key=lambda r: (r.priority, r.id))))
        object.__setattr__(clone, "_digest", None)
        object.__setattr__(clone, "rules_version", rules_version)
        object.__setattr__(clone, "_frozen", True)
        return clone

    def _refs(self) -> _Refs:
        """Identifiers rules may reference in this snapshot. 快照内可引用标识。"""
        return _Refs(
            townships={c for c, d in self._divisions.items() if d.level == "township"},
            grids={c for c, d in self._divisions.items() if d.level == "grid"},
            matters=set(self._matters),
            units=set(self._units),
        )

    # ---------------------------------------------------------------- divisions / 区划
    def division(self, code: str) -> Division | None:
        """Division by code. 按编码取区划。"""
        return self._divisions.get(code)

    def divisions(self, level: DivisionLevel | None = None) -> tuple[Division, ...]:
        """All divisions (of one level), sorted by code. 全部（某层级）区划，按编码排序。"""
        return tuple(
            sorted(
                (d for d in self._divisions.values() if level is None or d.level == level),
                key=lambda d: d.code,
            )
        )

    def children(self, code: str) -> tuple[Division, ...]:
        """Direct children, sorted by code. 直接下级。"""
        return tuple(self._divisions[c] for c in self._children.get(code, ()))

    def lineage(self, code: str) -> tuple[Division, ...]:
        """The division itself then its ancestors up to the county (grid → village →
        township → county); empty for an unknown code. 自身及全部上级（由细到粗）。"""
        out: list[Division] = []
        seen: set[str] = set()
        current = self._divisions.get(code)
        while current is not None and current.code not in seen:
            seen.add(current.code)
            out.append(current)
            current = self._divisions.get(current.parent_code) if current.parent_code else None
        return tuple(out)

    def ancestors(self, code: str) -> tuple[Division, ...]:
        """Ancestors of a division, nearest first (excluding itself). 上级区划（不含自身）。"""
        return self.lineage(code)[1:]

    def codes_of(self, code: str) -> LocateResult | None:
        """The grid/village/township/county codes of a known division code (as a
        :class:`LocateResult`), e.g. for a ``grid_code`` or ``division_code`` a source sent.
        已知区划编码的编码链（用于来源系统给出的网格/镇街编码）。"""
        chain = self.lineage(code)
        if not chain:
            return None
        codes: dict[str, str | None] = {lvl: None for lvl in DIVISION_LEVELS}
        for d in chain:
            codes[d.level] = codes[d.level] or d.code
        return LocateResult(
            grid=codes["grid"],
            village=codes["village"],
            township=codes["township"],
            county=codes["county"],
            level=chain[0].level,
        )

    def township_of(self, code: str) -> str | None:
        """The township code of a division (itself if it is a township). 所属镇街编码。"""
        for d in self.lineage(code):
            if d.level == "township":
                return d.code
        return None

    @property
    def locator(self) -> Locator:
        """Point locator over grid/village/township polygons. 点位定位器。"""
        return self._locator

    def locate(self, lng: float, lat: float) -> LocateResult | None:
        """Shortcut for ``locator.locate``. 定位单点。"""
        return self._locator.locate(lng, lat)

    @property
    def division_names(self) -> tuple[tuple[str, str], ...]:
        """``(name, code)`` pairs, longest name first (finer level, then code, on ties).
        区划名称（最长优先），用于地址文本匹配。"""
        return tuple((name, d.code) for name, d in self._names)

    def match_address(self, text: str) -> Division | None:
        """The division whose name occurs in ``text``, longest name first.

        在地址文本中匹配区划名称（最长者胜）。When the longest name is shared by
        several divisions (同名村), the one whose ancestors' names also occur in the
        text wins, then the smallest code. 同名时优先上级名称也出现在文本中的，再取最小编码。
        """
        if not text:
            return None
        best: list[Division] = []
        best_len = 0
        for name, division in self._names:
            if len(name) < best_len:
                break
            if name in text and (not best or best[0].name == name):
                best.append(division)
                best_len = len(name)
        if not best:
            return None
        if len(best) == 1:
            return best[0]

        def support(d: Division) -> int:
            return sum(1 for a in self.ancestors(d.code) if a.name and a.name in text)

        return sorted(best, key=lambda d: (-support(d), d.code))[0]

    # ---------------------------------------------------------------- units / 单位
    def unit(self, unit_id: str) -> Unit | None:
        """Unit by id. 按 id 取单位。"""
        return self._units.get(unit_id)

    def units(self, kind: UnitKind | None = None, township: str | None = None) -> tuple[Unit, ...]:
        """Units, optionally of one kind and/or belonging to (or covering) a township.
        按类型和/或镇街（所属或派驻覆盖）筛选单位。"""
        out = []
        for u in self._units.values():
            if kind is not None and u.kind != kind:
                continue
            if township is not None and u.township_code != township and township not in (u.covers or []):
                continue
            out.append(u)
        return tuple(out)

    def township_units(self, township: str) -> tuple[Unit, ...]:
        """Township offices and the enforcement team of a township. 镇内设机构与执法队。"""
        return self._units_by_township.get(township, ())

    def township_function_unit(self, township: str, function: str) -> Unit | None:
        """The unit performing ``function`` in ``township``. 镇街某职能的承办单位。"""
        unit_id = self._functions.get(township, {}).get(function)
        return self._units.get(unit_id) if unit_id is not None else None

    def township_functions(self, township: str) -> Mapping[str, str]:
        """``{function: unit id}`` of a township. 镇街职能表。"""
        return self._functions.get(township, MappingProxyType({}))

    def stationed_agency(self, department: str, township: str) -> Unit | None:
        """The stationed agency (派驻机构) of ``department`` covering ``township``. 覆盖该镇的派驻机构。"""
        return self._agencies.get((department, township))

    def county_department(self, department: str) -> Unit | None:
        """County department unit by id. 县级部门。"""
        return self._county_departments.get(department)

    # ---------------------------------------------------------------- matters / 事项
    def matter(self, code: str) -> Matter | None:
        """Matter by code. 按编码取事项。"""
        return self._matters.get(code)

    @property
    def matters(self) -> tuple[Matter, ...]:
        """All matters in bundle order. 全部事项。"""
        return tuple(self._matters.values())

    def is_devolved(self, township: str, matter: str) -> bool:
        """Whether ``matter`` is devolved (下放) to ``township``. 事项是否下放至该镇街。"""
        return matter in self._devolved.get(township, frozenset())

    def devolved_matters(self, township: str) -> frozenset[str]:
        """Codes of the matters devolved to ``township``. 下放至该镇街的事项编码。"""
        return self._devolved.get(township, frozenset())

    def matter_for_source(self, source: str, code: str) -> str | None:
        """Matter code for a source's own category code, or ``None``. 来源编码 → 事项编码。

        ``12345``: 诉求分类 code; ``cityops``: ``major-minor`` (2- or 3-digit minor,
        see :func:`cityops_key_candidates`); ``gridworker``: 事件类型 (case-insensitive).
        """
        mapping = self._mappings.get(source)
        if not mapping or code is None:
            return None
        if code in mapping:
            return mapping[code]
        if source == "cityops":
            for key in cityops_key_candidates(code):
                if key in mapping:
                    return mapping[key]
            return None
        stripped = code.strip()
        if stripped in mapping:
            return mapping[stripped]
        if source == "gridworker":
            upper = stripped.upper()
            for key, matter in mapping.items():
                if key.upper() == upper:
                    return matter
        return None

    def matter_for_cityops(self, major: str, minor: str) -> str | None:
        """Matter for a 数字城管 大类/小类 pair. 数字城管大类/小类 → 事项。"""
        return self.matter_for_source("cityops", f"{major.strip()}-{minor.strip()}")

    # ---------------------------------------------------------------- rules / 规则
    @property
    def rules(self) -> tuple[Rule, ...]:
        """Rules sorted by (priority, id). 按优先级排序的规则。"""
        return self._rules

    def first_matching_rule(self, facts: RuleFacts) -> Rule | None:
        """The first rule (by priority) matching ``facts``. 第一条命中的规则。"""
        for rule in self._rules:
            if rule_matches(rule, facts):
                return rule
        return None
