"""Grafana dashboards and provisioning: parse, and every panel has a unit and a datasource."""

from __future__ import annotations

import yaml

from monitoring import DASHBOARDS_DIR, GRAFANA_DIR
from tests.monitoring.expressions import dashboards

EXPECTED = {
    "lockerhub-city-overview.json",
    "lockerhub-cabinet-detail.json",
    "lockerhub-energy-charging.json",
    "lockerhub-sorting-hub.json",
    "lockerhub-platform-health.json",
    "lockerhub-dispatch.json",
}
DATASOURCE_UID = "lockerhub-prometheus"
# Grafana unit ids used by the dashboards.
KNOWN_UNITS = {
    "none", "short", "percentunit", "s", "watt", "watth", "kwatth", "lengthkm", "celsius", "ops",
    "reqps",
}  # fmt: skip


def test_the_dashboards_are_there() -> None:
    assert set(dashboards()) == EXPECTED


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for name, board in dashboards().items():
        assert board["uid"] not in uids, name
        uids.add(board["uid"])
        assert board["title"].startswith("lockerhub / ")
        assert board["refresh"]
        assert board["time"]["from"].startswith("now-")
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        variables = {v["name"] for v in board["templating"]["list"]}
        for panel in board["panels"]:
            where = f"{name}: {panel['title']}"
            assert panel["datasource"]["uid"] == DATASOURCE_UID, where
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults.get("unit") in KNOWN_UNITS, where
            steps = defaults["thresholds"]["steps"]
            assert steps, where
            assert steps[0]["value"] is None, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID, where
                assert target["expr"].strip(), where
                for var in ("site", "cabinet", "line", "pile"):
                    if f"${var}" in target["expr"]:
                        assert var in variables, f"{where}: uses ${var} without a variable"
            grid = panel["gridPos"]
            assert grid["x"] >= 0, where
            assert grid["x"] + grid["w"] <= 24, where


def test_percent_panels_are_bounded() -> None:
    for name, board in dashboards().items():
        for panel in board["panels"]:
            d = panel["fieldConfig"]["defaults"]
            if d["unit"] == "percentunit" and panel["type"] != "table":
                assert d.get("min") == 0, f"{name}: {panel['title']}"
                assert d.get("max") == 1, f"{name}: {panel['title']}"


def test_provisioning_points_at_the_dashboards_and_datasource() -> None:
    ds = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/lockerhub.yml").read_text())
    assert ds["datasources"][0]["uid"] == DATASOURCE_UID
    assert ds["datasources"][0]["type"] == "prometheus"
    dash = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/lockerhub.yml").read_text())
    provider = dash["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
    assert DASHBOARDS_DIR.is_dir()
