"""The grid service's application logic: import bundles, replace rule sets, load snapshots.

网格服务应用逻辑：导入数据包、替换规则集、从数据库加载快照。

Functions take the session as a keyword argument and never commit: the caller's
unit of work owns the transaction, so the registry rows and the
``jurisdiction.changed`` outbox row commit together or not at all. Changes of one
county are serialised with a transaction-scoped advisory lock on the county code,
so concurrent imports (also from several replicas) number versions without gaps
or duplicates. Other counties are never touched.

函数接收 session 参数且从不自行提交：由调用方的工作单元掌握事务，登记表与
``jurisdiction.changed`` 发件箱记录同时提交或同时回滚。同一区县的变更以事务级
咨询锁串行化（多副本并发导入亦然），版本号连续且不重复；其他区县不受影响。
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.grid.models import bundle_versions, counties, outbox, rule_sets
from services.grid.registry import SnapshotRegistry
from shared.events import JURISDICTION_CHANGED, DevolutionChanged, JurisdictionChanged, make_envelope
from shared.jurisdiction import (
    JurisdictionBundle,
    JurisdictionSnapshot,
    Problem,
    Rule,
    rules_problems,
)
from shared.logging import get_logger
from shared.messaging.outbox import add_events

log = get_logger(__name__)

__all__ = [
    "EVENT_SOURCE",
    "ChangeOutcome",
    "CountyNotFoundError",
    "CountyState",
    "RulesInvalidError",
    "export_document",
    "get_bundle_version",
    "get_county",
    "get_rule_set",
    "import_bundle",
    "list_bundle_versions",
    "list_counties",
    "list_rule_sets",
    "load_snapshot",
    "refresh_registry",
    "replace_rules",
    "utc_now",
]

#: ``source`` of the events this service emits. 本服务事件的 ``source``。
EVENT_SOURCE = "/grid"


@dataclass(frozen=True, slots=True)
class CountyState:
    """A ``counties`` row: what is current for one county. 区县当前状态。"""

    county_code: str
    name: str
    version: int
    rules_version: int
    digest: str
    updated_at: datetime
    updated_by: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. 可直接序列化的字典。"""
        return {
            "county_code": self.county_code,
            "name": self.name,
            "version": self.version,
            "rules_version": self.rules_version,
            "digest": self.digest,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """Result of an import or a rules replacement. 导入或规则替换的结果。

    ``changed`` is false when the content equals what is current (same digest):
    nothing was written and ``snapshot`` is ``None``. 内容与当前相同时不写入任何数据。
    """

    changed: bool
    state: CountyState
    snapshot: JurisdictionSnapshot | None


class CountyNotFoundError(LookupError):
    """The county has no jurisdiction in the registry. 区县尚未登记辖区。"""


class RulesInvalidError(ValueError):
    """A rule set refers to unknown things or is malformed. 规则集无效。"""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


def utc_now() -> datetime:
    """The current time, UTC. 当前 UTC 时间。"""
    return datetime.now(UTC)


def _state(row: Any) -> CountyState:
    return CountyState(
        county_code=row.county_code,
        name=row.name,
        version=row.version,
        rules_version=row.rules_version,
        digest=row.digest,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def stored_bundle(bundle: JurisdictionBundle) -> dict[str, Any]:
    """The JSON stored in ``bundle_versions.bundle`` (no informative ``version``). 入库的数据包 JSON。"""
    return bundle.model_dump(mode="json", exclude={"version"})


def stored_rules(rules: list[Rule] | tuple[Rule, ...]) -> list[dict[str, Any]]:
    """The JSON stored in ``rule_sets.rules`` (order kept as given). 入库的规则 JSON。"""
    return [r.model_dump(mode="json") for r in rules]


def export_document(bundle: JurisdictionBundle, version: int) -> dict[str, Any]:
    """The bundle in the exchange format (jurisdiction.md), ready for a re-import.

    以交换格式导出数据包（可直接重新导入）。Optional fields that are unset are
    left out, except each feature's ``parent_code`` and ``geometry``, which the
    format always names. 未设置的可选字段省略；要素的 ``parent_code`` 与 ``geometry`` 始终保留。
    """
    data = bundle.model_dump(mode="json", exclude_none=True)
    data["version"] = version
    if not data.get("devolution_entries"):
        data.pop("devolution_entries", None)
    for feature in data["divisions"]["features"]:
        feature["properties"].setdefault("parent_code", None)
        feature.setdefault("geometry", None)
    return data


# --------------------------------------------------------------------------- reads / 读取


async def _lock_county(session: AsyncSession, county_code: str) -> None:
    """Serialise changes of one county until the transaction ends. 串行化同一区县的变更。"""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"grid.county:{county_code}"})


async def get_county(*, session: AsyncSession, county_code: str) -> CountyState | None:
    """The ``counties`` row of a county, or ``None``. 区县当前状态。"""
    row = (await session.execute(select(counties).where(counties.c.county_code == county_code))).first()
    return _state(row) if row is not None else None


async def list_counties(*, session: AsyncSession) -> list[CountyState]:
    """Every county in the registry, by code. 全部已登记区县。"""
    rows = (await session.execute(select(counties).order_by(counties.c.county_code))).all()
    return [_state(r) for r in rows]


async def list_bundle_versions(*, session: AsyncSession, county_code: str) -> list[dict[str, Any]]:
    """Version history of a county's bundle (without the bundles). 数据包版本历史（不含内容）。"""
    rows = (
        await session.execute(
            select(
                bundle_versions.c.version,
                bundle_versions.c.digest,
                bundle_versions.c.imported_at,
                bundle_versions.c.imported_by,
            )
            .where(bundle_versions.c.county_code == county_code)
            .order_by(bundle_versions.c.version)
        )
    ).all()
    return [
        {
            "version": r.version,
            "digest": r.digest,
            "imported_at": r.imported_at.isoformat(),
            "imported_by": r.imported_by,
        }
        for r in rows
    ]


async def get_bundle_version(*, session: AsyncSession, county_code: str, version: int) -> JurisdictionBundle | None:
    """One stored bundle version (with the rules it was imported with). 某一数据包版本（含导入时的规则）。"""
    row = (
        await session.execute(
            select(bundle_versions.c.bundle).where(
                bundle_versions.c.county_code == county_code, bundle_versions.c.version == version
            )
        )
    ).first()
    return JurisdictionBundle.model_validate(row.bundle) if row is not None else None


def _rule_set_dict(row: Any, *, with_rules: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "county_code": row.county_code,
        "rules_version": row.rules_version,
        "bundle_version": row.bundle_version,
        "change": row.change,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
    }
    if with_rules:
        out["rules"] = row.rules
    return out


async def get_rule_set(*, session: AsyncSession, county_code: str, rules_version: int) -> dict[str, Any] | None:
    """One stored rule-set version. 某一规则集版本。"""
    row = (
        await session.execute(
            select(rule_sets).where(rule_sets.c.county_code == county_code, rule_sets.c.rules_version == rules_version)
        )
    ).first()
    return _rule_set_dict(row) if row is not None else None


async def list_rule_sets(*, session: AsyncSession, county_code: str) -> list[dict[str, Any]]:
    """Rule-set history of a county (without the rules). 规则集版本历史（不含规则）。"""
    rows = (
        await session.execute(
            select(rule_sets).where(rule_sets.c.county_code == county_code).order_by(rule_sets.c.rules_version)
        )
    ).all()
    return [_rule_set_dict(r, with_rules=False) for r in rows]


async def load_snapshot(*, session: AsyncSession, state: CountyState) -> JurisdictionSnapshot:
    """Build the snapshot of a county's current bundle and rule set (validated at import).

    由数据库中当前数据包与规则集构建快照（导入时已校验，不再重复校验）。
    """
    row = (
        await session.execute(
            select(bundle_versions.c.bundle, rule_sets.c.rules)
            .select_from(bundle_versions)
            .join(rule_sets, rule_sets.c.county_code == bundle_versions.c.county_code)
            .where(
                bundle_versions.c.county_code == state.county_code,
                bundle_versions.c.version == state.version,
                rule_sets.c.rules_version == state.rules_version,
            )
        )
    ).one()
    data = dict(row.bundle)
    data["rules"] = row.rules
    bundle = JurisdictionBundle.model_validate(data)
    return await asyncio.to_thread(
        JurisdictionSnapshot, bundle, version=state.version, rules_version=state.rules_version, validate=False
    )


async def refresh_registry(*, session: AsyncSession, registry: SnapshotRegistry) -> list[str]:
    """Load every county whose stored state is newer than the registry's; returns their codes.

    加载数据库中比内存更新的区县（其他副本的导入、启动时加载），返回已更新的区县编码。
    """
    refreshed: list[str] = []
    for state in await list_counties(session=session):
        current = registry.get(state.county_code)
        if current is not None and current.rules_version >= state.rules_version:
            continue
        snapshot = await load_snapshot(session=session, state=state)
        if registry.put(snapshot):
            refreshed.append(state.county_code)
    return refreshed


# --------------------------------------------------------------------------- writes / 写入


def _event(
    state: CountyState,
    change: Literal["bundle", "rules"],
    correlation_id: str,
    now: datetime,
    devolution: DevolutionChanged | None = None,
) -> Any:
    return make_envelope(
        event_type="jurisdiction.changed",
        data=JurisdictionChanged(
            county_code=state.county_code,
            version=state.version,
            rules_version=state.rules_version,
            digest=state.digest,
            change="devolution" if devolution is not None else change,
            devolution=devolution,
        ),
        source=EVENT_SOURCE,
        correlation_id=correlation_id,
        subject=state.county_code,
        time=now,
    )


async def import_bundle(
    *,
    session: AsyncSession,
    bundle: JurisdictionBundle,
    digest: str,
    actor: str | None,
    correlation_id: str,
    now: datetime,
    devolution: DevolutionChanged | None = None,
) -> ChangeOutcome:
    """Replace one county's jurisdiction with a validated bundle (other counties untouched).

    用已校验的数据包替换该区县的辖区（其他区县不变）。Same digest as what is
    current → nothing changes (``changed=False``). Otherwise the bundle version and
    the rule-set version both go up by one, the bundle and its rules are stored, and
    ``jurisdiction.changed`` (change ``bundle``; ``devolution`` with the diff when ``devolution`` is
    given, a dated devolution decision) is queued in the outbox.
    摘要相同则不作任何变更；否则数据包版本与规则集版本各加一，保存数据包与规则，
    并在发件箱中写入 ``jurisdiction.changed``（change=bundle）。
    """
    code = bundle.county_code
    await _lock_county(session, code)
    current = await get_county(session=session, county_code=code)
    if current is not None and current.digest == digest:
        return ChangeOutcome(changed=False, state=current, snapshot=None)
    version = (current.version if current else 0) + 1
    rules_version = (current.rules_version if current else 0) + 1
    values = {
        "name": bundle.name,
        "version": version,
        "rules_version": rules_version,
        "digest": digest,
        "updated_at": now,
        "updated_by": actor,
    }
    await session.execute(
        pg_insert(counties)
        .values(county_code=code, created_at=now, **values)
        .on_conflict_do_update(index_elements=[counties.c.county_code], set_=values)
    )
    await session.execute(
        bundle_versions.insert().values(
            county_code=code,
            version=version,
            digest=digest,
            bundle=stored_bundle(bundle),
            imported_at=now,
            imported_by=actor,
        )
    )
    await session.execute(
        rule_sets.insert().values(
            county_code=code,
            rules_version=rules_version,
            bundle_version=version,
            change="bundle",
            rules=stored_rules(bundle.rules),
            created_at=now,
            created_by=actor,
        )
    )
    state = CountyState(code, bundle.name, version, rules_version, digest, now, actor)
    snapshot = await asyncio.to_thread(
        JurisdictionSnapshot, bundle, version=version, rules_version=rules_version, validate=False
    )
    await add_events(session, outbox, JURISDICTION_CHANGED, [_event(state, "bundle", correlation_id, now, devolution)])
    log.info("jurisdiction imported", county=code, version=version, rules_version=rules_version, actor=actor)
    return ChangeOutcome(changed=True, state=state, snapshot=snapshot)


async def replace_rules(
    *,
    session: AsyncSession,
    county_code: str,
    rules: list[Rule],
    registry: SnapshotRegistry,
    actor: str | None,
    correlation_id: str,
    now: datetime,
) -> ChangeOutcome:
    """Replace a county's override rules with a new rule-set version.

    以新的规则集版本替换区县的派遣规则。Rules are validated against the county's
    current bundle (:func:`~shared.jurisdiction.rules_problems`; raises
    :class:`RulesInvalidError` listing every problem). Identical rules change
    nothing. Otherwise ``rules_version`` goes up by one, the bundle version stays,
    and ``jurisdiction.changed`` (change ``rules``) is queued in the outbox.
    规则依当前数据包校验（有问题则抛出 :class:`RulesInvalidError` 并列出全部问题）；
    规则相同则不变更；否则规则集版本加一、数据包版本不变，并写入 ``jurisdiction.changed``。
    """
    await _lock_county(session, county_code)
    current = await get_county(session=session, county_code=county_code)
    if current is None:
        raise CountyNotFoundError(county_code)
    base = registry.get(county_code)
    if base is None or (base.version, base.rules_version) != (current.version, current.rules_version):
        base = await load_snapshot(session=session, state=current)  # another replica changed it / 其他副本已变更
    problems = rules_problems(rules, base)
    if problems:
        raise RulesInvalidError(problems)
    rules_version = current.rules_version + 1
    snapshot = base.with_rules(rules, rules_version)
    digest = await asyncio.to_thread(lambda: snapshot.digest)  # cached on the snapshot / 缓存在快照上
    if digest == current.digest:
        return ChangeOutcome(changed=False, state=current, snapshot=None)
    await session.execute(
        rule_sets.insert().values(
            county_code=county_code,
            rules_version=rules_version,
            bundle_version=current.version,
            change="rules",
            rules=stored_rules(rules),
            created_at=now,
            created_by=actor,
        )
    )
    await session.execute(
        update(counties)
        .where(counties.c.county_code == county_code)
        .values(rules_version=rules_version, digest=digest, updated_at=now, updated_by=actor)
    )
    state = CountyState(county_code, current.name, current.version, rules_version, digest, now, actor)
    await add_events(session, outbox, JURISDICTION_CHANGED, [_event(state, "rules", correlation_id, now)])
    log.info("rules replaced", county=county_code, version=current.version, rules_version=rules_version, actor=actor)
    return ChangeOutcome(changed=True, state=state, snapshot=snapshot)
