"""In-memory jurisdiction snapshots, one per county / 内存中的辖区快照（每县一个）.

The grid service answers every read (locate, browse, export of the current
version) from :class:`SnapshotRegistry`: a mapping ``county code →``
:class:`~shared.jurisdiction.JurisdictionSnapshot` that is replaced as a whole
(copy-on-write) when a county changes, so a reader always sees one consistent
snapshot per county. A snapshot is only ever replaced by a newer one: every
change of a county (import or rules) bumps its ``rules_version``, which is
therefore a per-county change counter.

网格服务的读取（定位、浏览、导出当前版本）均由 :class:`SnapshotRegistry` 提供：
``区县编码 → 快照`` 的映射，区县变更时整体替换（写时复制），读者总能看到一致的快照。
只会用更新的快照替换旧快照：每次变更（导入或改规则）都会递增 ``rules_version``，
因此它就是每个区县的变更计数。
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shared.jurisdiction import JurisdictionSnapshot
from shared.jurisdiction.limits import LEVEL_RANK
from shared.locator import LocateResult

__all__ = ["SnapshotRegistry"]


class SnapshotRegistry:
    """County code → current snapshot, swapped atomically. 区县编码 → 当前快照（原子替换）."""

    __slots__ = ("_snapshots",)

    def __init__(self) -> None:
        self._snapshots: Mapping[str, JurisdictionSnapshot] = MappingProxyType({})

    def __len__(self) -> int:
        return len(self._snapshots)

    def __contains__(self, county_code: object) -> bool:
        return county_code in self._snapshots

    def get(self, county_code: str) -> JurisdictionSnapshot | None:
        """The current snapshot of a county, or ``None``. 某区县当前快照。"""
        return self._snapshots.get(county_code)

    def codes(self) -> list[str]:
        """Loaded county codes, sorted. 已加载的区县编码（排序）。"""
        return sorted(self._snapshots)

    def snapshots(self) -> Mapping[str, JurisdictionSnapshot]:
        """A read-only view of the current mapping (stable: later swaps do not change it).
        当前映射的只读视图（之后的替换不影响它）。"""
        return self._snapshots

    def put(self, snapshot: JurisdictionSnapshot) -> bool:
        """Install ``snapshot`` unless the registry already holds the same or a newer one.

        安装快照；若已有相同或更新的快照则忽略。Returns whether it was installed.
        Newer means a larger ``rules_version`` (bumped by every change of the county).
        “更新”指 ``rules_version`` 更大（每次变更都会递增）。
        """
        current = self._snapshots.get(snapshot.county_code)
        if current is not None and current.rules_version >= snapshot.rules_version:
            return False
        updated = dict(self._snapshots)
        updated[snapshot.county_code] = snapshot
        self._snapshots = MappingProxyType(updated)
        return True

    def county_of_division(self, code: str) -> JurisdictionSnapshot | None:
        """The snapshot holding division ``code`` (by its 6-digit county prefix, then by search).

        持有该区划编码的快照：先按前 6 位县级编码，再逐县查找。
        """
        snapshots = self._snapshots
        direct = snapshots.get(code[:6])
        if direct is not None and direct.division(code) is not None:
            return direct
        for county in sorted(snapshots):
            if snapshots[county].division(code) is not None:
                return snapshots[county]
        return None

    def locate(self, lng: float, lat: float) -> tuple[JurisdictionSnapshot, LocateResult] | None:
        """Locate a WGS-84 point in every county; the finest level wins, then the smaller county code.

        在所有区县中定位 WGS-84 点：层级最细者胜，同级取编码较小的区县。
        """
        best: tuple[JurisdictionSnapshot, LocateResult] | None = None
        snapshots = self._snapshots
        for county in sorted(snapshots):
            snapshot = snapshots[county]
            result = snapshot.locate(lng, lat)
            if result is None:
                continue
            if best is None or LEVEL_RANK[result.level] < LEVEL_RANK[best[1].level]:
                best = (snapshot, result)
                if result.level == "grid":
                    break
        return best
