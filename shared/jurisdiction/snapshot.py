"""The routing snapshot 辖区快照: an immutable, pre-indexed view of one valid bundle.

Built once per (bundle version, rule-set version) and shared: the fast lookups
dispatch needs — divisions and their lineage, a point :class:`~shared.locator.Locator`,
address names, units, matters, devolution, township functions, source mappings
and rules. 供派遣使用的不可变快照：区划、点位定位、地址名称、单位、事项、下放、职能、映射与规则。

Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from shapely.geometry import shape

from shared.jurisdiction.canonical import bundle_digest
from shared.jurisdiction.devolution import DevolutionIndex, all_entries
from shared.jurisdiction.limits import DIVISION_LEVELS, LEVEL_RANK
from shared.jurisdiction.model import AlarmTypeSettings, DevolutionEntry, JurisdictionBundle, Matter, Rule, Unit
from shared.jurisdiction.parsing import rules_problems
from shared.jurisdiction.problems import BundleInvalidError
from shared.jurisdiction.validation.bundle import check_bundle
from shared.jurisdiction.validation.rules import RuleRefs
from shared.locator import LocateResult, Locator, LocatorDivision
from shared.vocabulary import TOWNSHIP_UNIT_KINDS, DivisionLevel, UnitKind

__all__ = ["Division", "JurisdictionSnapshot"]

#: Settings of an alarm type the bundle does not list. 未列出的告警类型的默认设置。
_DEFAULT_ALARM_TYPE = AlarmTypeSettings()


@dataclass(frozen=True, slots=True)
class Division:
    """One division in a snapshot (shapely geometry or ``None``). 快照中的一个区划。"""

    code: str
    name: str
    level: DivisionLevel
    parent_code: str | None
    geometry: Any = field(default=None, repr=False, compare=False)


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
        "_bundle_alarm_types",
        "_children",
        "_county_departments",
        "_devolution",
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
        checked = check_bundle(bundle) if validate else None
        if checked is not None and checked.problems:
            raise BundleInvalidError(checked.problems)
        self._frozen = False
        self.version = version
        self.rules_version = rules_version
        self._bundle = bundle.model_copy(deep=True)
        self._digest: str | None = None
        b = self._bundle

        divisions, children = _index_divisions(b, checked.geometries if checked is not None else None)
        self._divisions: Mapping[str, Division] = MappingProxyType(divisions)
        self._children: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {k: tuple(sorted(v)) for k, v in children.items()}
        )
        self._locator = Locator(LocatorDivision(d.code, d.level, d.parent_code, d.geometry) for d in divisions.values())

        self._units: Mapping[str, Unit] = MappingProxyType({u.id: u for u in b.units})
        by_township, agencies = _index_units(b.units)
        self._units_by_township: Mapping[str, tuple[Unit, ...]] = MappingProxyType(by_township)
        self._agencies: Mapping[tuple[str, str], Unit] = MappingProxyType(agencies)
        self._county_departments: Mapping[str, Unit] = MappingProxyType(
            {u.id: u for u in b.units if u.kind == "county_department"}
        )
        self._matters: Mapping[str, Matter] = MappingProxyType({m.code: m for m in b.matters})
        self._devolved: Mapping[str, frozenset[str]] = MappingProxyType(
            {t: frozenset(codes) for t, codes in b.devolution.items()}
        )
        self._devolution = DevolutionIndex(all_entries(b))
        self._functions: Mapping[str, Mapping[str, str]] = MappingProxyType(
            {t: MappingProxyType(dict(f)) for t, f in b.township_functions.items()}
        )
        self._mappings: Mapping[str, Mapping[str, str]] = MappingProxyType(
            {s: MappingProxyType(dict(m)) for s, m in b.source_mappings.items()}
        )
        self._rules: tuple[Rule, ...] = tuple(sorted(b.rules, key=lambda r: (r.priority, r.id)))
        self._bundle_alarm_types: Mapping[str, AlarmTypeSettings] = MappingProxyType(dict(b.alarm_types))
        names = sorted(
            ((d.name, d) for d in divisions.values() if d.name.strip()),
            key=lambda item: (-len(item[0]), LEVEL_RANK[item[1].level], item[1].code),
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

    def with_devolution(self, bundle: JurisdictionBundle) -> JurisdictionSnapshot:
        """A snapshot with the devolution lists of ``bundle`` (undated and dated); the rest shared.

        换用 ``bundle`` 的下放清单的快照（其余复用，不重建），供模拟调整使用。The caller
        validates the entries (:func:`~shared.jurisdiction.validation.devolution.check_devolution_entries`).
        """
        clone = object.__new__(JurisdictionSnapshot)
        for slot in JurisdictionSnapshot.__slots__:
            if slot in ("_frozen", "_bundle", "_devolution", "_devolved", "_digest"):
                continue
            object.__setattr__(clone, slot, getattr(self, slot))
        update = {"devolution": bundle.devolution, "devolution_entries": bundle.devolution_entries}
        updated = self._bundle.model_copy(update=update, deep=True)
        object.__setattr__(clone, "_bundle", updated)
        object.__setattr__(clone, "_devolution", DevolutionIndex(all_entries(updated)))
        object.__setattr__(
            clone, "_devolved", MappingProxyType({t: frozenset(c) for t, c in updated.devolution.items()})
        )
        object.__setattr__(clone, "_digest", None)
        object.__setattr__(clone, "_frozen", True)
        return clone

    def rule_refs(self) -> RuleRefs:
        """Identifiers rules may reference in this snapshot. 快照内可引用标识。"""
        return RuleRefs(
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

    def devolution_at(self, township: str, matter: str, moment: datetime) -> DevolutionEntry | None:
        """The devolution entry in force for (township, matter) on the Shanghai day of ``moment``.

        某时刻有效的下放条目（按上海日期）；未下放返回 None。The undated ``devolution`` lists count
        as ``devolved`` entries from the bundle's ``effective_date``. 未注明日期的清单视为下放条目。
        """
        return self._devolution.at(township, matter, moment)

    @property
    def devolution(self) -> DevolutionIndex:
        """Every devolution entry, indexed (history included). 全部下放条目（含历史）。"""
        return self._devolution

    def alarm_type(self, code: str) -> AlarmTypeSettings:
        """Settings of an alarm type (the defaults when the bundle lists none). 告警类型设置。"""
        return self._bundle_alarm_types.get(code) or _DEFAULT_ALARM_TYPE

    def source_mapping(self, source: str) -> Mapping[str, str]:
        """The bundle's ``{source code: matter code}`` table of ``source`` (empty if none). 来源编码映射表。"""
        return self._mappings.get(source, MappingProxyType({}))

    # ---------------------------------------------------------------- rules / 规则
    @property
    def rules(self) -> tuple[Rule, ...]:
        """Rules sorted by (priority, id). 按优先级排序的规则。"""
        return self._rules


def _index_divisions(
    bundle: JurisdictionBundle, geometries: Mapping[str, Any] | None
) -> tuple[dict[str, Division], dict[str, list[str]]]:
    """Divisions by code (first feature of a code wins) and child codes by parent. 区划索引与下级列表。

    ``geometries``: the validated shapely geometries, or ``None`` for an unvalidated
    bundle (geometries are then read here, unreadable ones skipped). 未校验时在此解析几何。
    """
    divisions: dict[str, Division] = {}
    children: dict[str, list[str]] = defaultdict(list)
    for feature in bundle.divisions.features:
        props = feature.properties
        if props.code in divisions:
            continue
        geom = geometries.get(props.code) if geometries is not None else None
        if geom is None and feature.geometry is not None and geometries is None:
            try:
                geom = shape(feature.geometry.model_dump())
            except Exception:  # unvalidated bundle: skip unreadable geometry / 跳过无法解析的几何
                geom = None
        divisions[props.code] = Division(props.code, props.name, props.level, props.parent_code, geom)
        if props.parent_code is not None:
            children[props.parent_code].append(props.code)
    return divisions, children


def _index_units(
    units: Sequence[Unit],
) -> tuple[dict[str, tuple[Unit, ...]], dict[tuple[str, str], Unit]]:
    """Township units (镇内设机构与执法队) by township, and stationed agencies by (department, township).

    镇街单位索引与派驻机构索引（同一部门、同一镇取第一个）。
    """
    by_township: dict[str, list[Unit]] = defaultdict(list)
    agencies: dict[tuple[str, str], Unit] = {}
    for unit in units:
        if unit.township_code is not None and unit.kind in TOWNSHIP_UNIT_KINDS:
            by_township[unit.township_code].append(unit)
        if unit.kind == "stationed_agency" and unit.department is not None:
            for township in unit.covers or []:
                agencies.setdefault((unit.department, township), unit)
    return {k: tuple(v) for k, v in by_township.items()}, agencies
