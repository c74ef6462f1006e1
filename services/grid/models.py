"""Grid service tables (schema ``grid``) / 网格服务数据表（``grid`` 模式）.

The jurisdiction registry (辖区登记) keeps every county side by side, each with
its full history:

辖区登记按区县并列保存，每个区县保留完整历史：

* ``counties`` — one row per county: its current bundle version, current
  rule-set version and the digest of what is current (bundle + current rules);
  每个区县一行：当前数据包版本、当前规则集版本、当前内容摘要；
* ``bundle_versions`` — every imported bundle, verbatim (canonical pydantic
  dump), numbered per county from 1; 每次导入的数据包，按区县从 1 编号；
* ``rule_sets`` — every rule set (one per import, one per ``PUT /rules``),
  numbered per county from 1, with the bundle version it was validated against;
  每个规则集版本（导入或单独更新规则时产生）及其所依据的数据包版本；
* ``devolution_changes`` — every devolution decision (文号, who, when, diff); 下放清单调整记录;
* ``outbox`` — ``jurisdiction.changed`` events, written in the same transaction.
  发件箱：与变更同一事务写入的 ``jurisdiction.changed`` 事件。

Browse endpoints are served from the in-memory snapshots, not from normalised
tables. 浏览接口由内存快照提供，不另建规范化表。
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.messaging.outbox_tables import outbox_tables

metadata = service_metadata("grid")

#: 区县: the current state of each county's jurisdiction.
counties = Table(
    "counties",
    metadata,
    Column("county_code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False, comment="current bundle version 当前数据包版本"),
    Column("rules_version", Integer, nullable=False, comment="current rule-set version 当前规则集版本"),
    Column("digest", Text, nullable=False, comment="bundle_digest of bundle + current rules 当前内容摘要"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=True),
)

#: 数据包版本: every imported bundle of a county.
bundle_versions = Table(
    "bundle_versions",
    metadata,
    Column("county_code", Text, ForeignKey("grid.counties.county_code"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", Text, nullable=False),
    Column("bundle", JSONB, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("imported_by", Text, nullable=True),
)

#: 规则集版本: every override rule set of a county.
rule_sets = Table(
    "rule_sets",
    metadata,
    Column("county_code", Text, primary_key=True),
    Column("rules_version", Integer, primary_key=True),
    Column("bundle_version", Integer, nullable=False, comment="bundle version the rules were validated against"),
    Column("change", Text, nullable=False, comment="bundle (imported with a bundle) | rules (PUT /rules)"),
    Column("rules", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=True),
    ForeignKeyConstraint(
        ["county_code", "bundle_version"],
        ["grid.bundle_versions.county_code", "grid.bundle_versions.version"],
    ),
    CheckConstraint("change IN ('bundle', 'rules')", name="change"),
)

outbox = outbox_tables(metadata)

#: 下放清单调整: every recorded devolution decision (文号, who, when, the diff) and the bundle version it made.
devolution_changes = Table(
    "devolution_changes",
    metadata,
    Column("county_code", Text, primary_key=True),
    Column("version", Integer, primary_key=True, comment="bundle version the decision made 所生成的数据包版本"),
    Column("document", Text, nullable=False, comment="the decision's 文号"),
    Column("items", JSONB, nullable=False, comment="the diff: township, matter, effective_from, before, after"),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", Text, nullable=True),
    ForeignKeyConstraint(
        ["county_code", "version"],
        ["grid.bundle_versions.county_code", "grid.bundle_versions.version"],
    ),
)
