"""Parse and validate 解析与校验: the entry points for raw bundles and rule sets.

Each lists *every* problem with a JSON-pointer-like path, never just the first.
列出全部问题及其路径，而非仅第一个。
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from shared.jurisdiction.model import JurisdictionBundle, Rule
from shared.jurisdiction.problems import Problem, problems_from_validation_error
from shared.jurisdiction.validation.bundle import check_bundle
from shared.jurisdiction.validation.rules import check_rules, refs_from_bundle

if TYPE_CHECKING:
    from shared.jurisdiction.snapshot import JurisdictionSnapshot

__all__ = ["parse_bundle", "parse_rules", "rules_problems", "validate_bundle"]

_RULES_ADAPTER: TypeAdapter[list[Rule]] = TypeAdapter(list[Rule])


def parse_bundle(data: Any) -> tuple[JurisdictionBundle | None, list[Problem]]:
    """Parse and validate raw JSON data; the bundle is ``None`` if its shape is wrong.

    解析并校验原始 JSON：结构错误时返回 (None, 问题列表)；结构正确时返回
    (数据包, :func:`validate_bundle` 的问题列表)。A bundle is importable only when
    the problem list is empty. 问题列表为空才可导入。
    """
    try:
        bundle = JurisdictionBundle.model_validate(data)
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)
    return bundle, validate_bundle(bundle)


def parse_rules(data: Any) -> tuple[list[Rule] | None, list[Problem]]:
    """Parse a raw rule list (PUT /rules body); shape errors only. 解析规则列表（仅结构）。

    Call :func:`rules_problems` afterwards for references. 引用校验请再调用 :func:`rules_problems`。
    """
    try:
        rules = _RULES_ADAPTER.validate_python(data)
    except ValidationError as exc:
        return None, problems_from_validation_error(exc, "rules")
    return rules, []


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
    return check_bundle(bundle).problems


def rules_problems(rules: Sequence[Rule], bundle: JurisdictionBundle | JurisdictionSnapshot) -> list[Problem]:
    """Validate a new rule set against a bundle or snapshot (PUT /rules). 校验新规则集。

    Paths are ``rules[i]...``. Checks unknown matters/townships/grids/units,
    empty condition lists, deadline ranges, duplicate ids and priorities, and
    actions that do nothing. 检查未知引用、空条件、时限范围、重复 id 与优先级、空动作。
    """
    refs = refs_from_bundle(bundle) if isinstance(bundle, JurisdictionBundle) else bundle.rule_refs()
    return check_rules(rules, refs)
