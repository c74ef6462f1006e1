"""Grid service pure parts: snapshot registry, export format, demo loader CLI.

网格服务纯逻辑：快照登记表、导出格式、示范县导入命令。
"""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from services.grid.load_demo import DEMO_BUNDLE, LoadError, load_demo, main, read_bundle
from services.grid.registry import SnapshotRegistry
from services.grid.service import export_document, stored_bundle
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot, bundle_digest, parse_bundle

DEMO_CODE = "330127"


@pytest.fixture(scope="module")
def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEMO_BUNDLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def demo(demo_data: dict[str, Any]) -> JurisdictionBundle:
    return JurisdictionBundle.model_validate(demo_data)


def _other_county(data: dict[str, Any], code: str, dx: float) -> JurisdictionBundle:
    """The demo as county ``code``, shifted ``dx`` degrees east. 派生另一区县。"""
    text = json.dumps(data, ensure_ascii=False).replace(f'"{DEMO_CODE}', f'"{code}')
    out = json.loads(text)
    out["name"] = f"县{code}"

    def shift(coords: Any) -> Any:
        return [coords[0] + dx, coords[1]] if isinstance(coords[0], int | float) else [shift(c) for c in coords]

    for feature in out["divisions"]["features"]:
        feature["geometry"]["coordinates"] = shift(feature["geometry"]["coordinates"])
    return JurisdictionBundle.model_validate(out)


def test_registry_swaps_only_to_newer_snapshots(demo: JurisdictionBundle) -> None:
    registry = SnapshotRegistry()
    assert len(registry) == 0 and registry.get(DEMO_CODE) is None
    v1 = JurisdictionSnapshot(demo, version=1, rules_version=1, validate=False)
    assert registry.put(v1) and registry.get(DEMO_CODE) is v1
    view = registry.snapshots()
    v2 = v1.with_rules(list(v1.rules)[:2], rules_version=2)
    assert registry.put(v2) and registry.get(DEMO_CODE) is v2
    assert view[DEMO_CODE] is v1, "an earlier view is never mutated"
    assert not registry.put(v1), "an older snapshot never replaces a newer one"
    assert not registry.put(v2)
    assert registry.get(DEMO_CODE) is v2 and DEMO_CODE in registry and registry.codes() == [DEMO_CODE]


def test_registry_locates_across_counties(demo_data: dict[str, Any], demo: JurisdictionBundle) -> None:
    registry = SnapshotRegistry()
    registry.put(JurisdictionSnapshot(demo, version=1, rules_version=1))
    other = _other_county(demo_data, "330128", dx=0.5)
    registry.put(JurisdictionSnapshot(other, version=3, rules_version=4))
    found = registry.locate(119.003, 29.615)
    assert found is not None and found[0].county_code == DEMO_CODE and found[1].grid == "330127001001001"
    found = registry.locate(119.503, 29.615)
    assert found is not None and found[0].county_code == "330128" and found[1].grid == "330128001001001"
    assert registry.locate(116.397, 39.909) is None
    snap = registry.county_of_division("330128101")
    assert snap is not None and snap.county_code == "330128"
    assert registry.county_of_division("330129001") is None


def test_registry_prefers_the_finest_level(demo_data: dict[str, Any], demo: JurisdictionBundle) -> None:
    # county 330126 has a village where the demo county has its grid: the grid wins
    data = copy.deepcopy(demo_data)
    data["divisions"]["features"] = [f for f in data["divisions"]["features"] if f["properties"]["level"] != "grid"]
    data["rules"] = [r for r in data["rules"] if "grid" not in r["conditions"]]
    coarse = _other_county(data, "330126", dx=0.0)
    assert parse_bundle(coarse.model_dump(mode="json"))[1] == []
    registry = SnapshotRegistry()
    registry.put(JurisdictionSnapshot(coarse, version=1, rules_version=1))
    found = registry.locate(119.003, 29.615)
    assert found is not None and found[1].level == "village" and found[0].county_code == "330126"
    registry.put(JurisdictionSnapshot(demo, version=1, rules_version=1))
    found = registry.locate(119.003, 29.615)
    assert found is not None and found[1].level == "grid" and found[0].county_code == DEMO_CODE


def test_export_document_round_trips(demo_data: dict[str, Any], demo: JurisdictionBundle) -> None:
    document = export_document(demo, version=7)
    assert document["version"] == 7 and list(document)[:3] == ["version", "county_code", "name"]
    county = next(f for f in document["divisions"]["features"] if f["properties"]["level"] == "county")
    assert county["properties"]["parent_code"] is None
    office = next(u for u in document["units"] if u["kind"] == "township_office")
    assert "covers" not in office and "department" not in office, "unset optional fields are left out"
    again, problems = parse_bundle(json.loads(json.dumps(document)))
    assert problems == [] and again is not None
    assert bundle_digest(again) == bundle_digest(demo)
    stored = stored_bundle(demo)
    assert "version" not in stored
    assert bundle_digest(JurisdictionBundle.model_validate(stored)) == bundle_digest(demo)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_load_demo_reports_an_unreachable_service(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(LoadError, match="not reachable"):
        load_demo(url, wait_s=0)
    assert main(["--url", url, "--wait", "0"]) == 1
    assert "not reachable" in capsys.readouterr().err


def test_read_bundle_is_the_demo_file(tmp_path: Path) -> None:
    assert read_bundle() == DEMO_BUNDLE.read_bytes()
    other = tmp_path / "b.json"
    other.write_bytes(b"{}")
    assert read_bundle(other) == b"{}"
