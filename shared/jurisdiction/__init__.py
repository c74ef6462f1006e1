"""The jurisdiction bundle 辖区数据包: model, validation, digest and routing snapshot.

A county's whole jurisdiction — division tree with boundaries, units (承办单位),
matter catalogue (事项清单), devolution lists (下放清单), township functions,
source-code mappings and override rules — travels as one JSON document (the
exchange format of the team's domain notes, jurisdiction.md). The grid service
imports, validates and exports it; dispatch routes with its snapshot.
一个区县的完整辖区数据以一个 JSON 文档流转；网格服务导入、校验、导出，派遣服务据快照派遣。

One job per module 一个模块一项职责:

* :mod:`~shared.jurisdiction.model` — the pydantic models 数据包模型;
* :mod:`~shared.jurisdiction.limits` — code formats and limits 格式与上限;
* :mod:`~shared.jurisdiction.problems` — :class:`Problem` and :class:`BundleInvalidError` 问题;
* :mod:`~shared.jurisdiction.parsing` — :func:`parse_bundle`, :func:`parse_rules`,
  :func:`validate_bundle`, :func:`rules_problems` 解析与校验入口;
* :mod:`~shared.jurisdiction.validation` — one module per bundle section 分节校验;
* :mod:`~shared.jurisdiction.canonical` — canonical JSON and digest 规范化与摘要;
* :mod:`~shared.jurisdiction.devolution` — the dated devolution list and its changes 下放清单（动态调整）;
* :mod:`~shared.jurisdiction.snapshot` — :class:`JurisdictionSnapshot` 快照.

This package re-exports the public bundle API; internals are imported from their
submodules. 本包转出公共接口；内部实现请从各子模块导入。Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from shared.jurisdiction.canonical import bundle_digest, canonical_bundle, canonical_json
from shared.jurisdiction.limits import (
    APPEAL_TYPES,
    CODE_LENGTHS,
    DIVISION_LEVELS,
    MAX_DEADLINE_HOURS,
    MAX_MATTER_GROUPS,
    MAX_RULE_PRIORITY,
    OVERLAP_TOLERANCE_DEG2,
    PARENT_LEVEL,
    SOURCES,
    URGENCIES,
    AppealType,
)
from shared.jurisdiction.model import (
    DeadlineAmount,
    Deadlines,
    DevolutionEntry,
    DevolutionMode,
    DivisionCollection,
    DivisionFeature,
    DivisionProperties,
    Geometry,
    JurisdictionBundle,
    Matter,
    Rule,
    RuleAction,
    RuleConditions,
    Unit,
    WorkingDays,
)
from shared.jurisdiction.parsing import parse_bundle, parse_rules, rules_problems, validate_bundle
from shared.jurisdiction.problems import BundleInvalidError, Problem
from shared.jurisdiction.snapshot import Division, JurisdictionSnapshot

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
    "DeadlineAmount",
    "Deadlines",
    "DevolutionEntry",
    "DevolutionMode",
    "Division",
    "DivisionCollection",
    "DivisionFeature",
    "DivisionProperties",
    "Geometry",
    "JurisdictionBundle",
    "JurisdictionSnapshot",
    "Matter",
    "Problem",
    "Rule",
    "RuleAction",
    "RuleConditions",
    "Unit",
    "WorkingDays",
    "bundle_digest",
    "canonical_bundle",
    "canonical_json",
    "parse_bundle",
    "parse_rules",
    "rules_problems",
    "validate_bundle",
]
