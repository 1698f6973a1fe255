"""``lockerhub devices add ... --layout``: the hub's [[devices]] entry, validated and printed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hub.broker.provision import main
from hub.settings import HubSettings


def test_add_prints_the_inventory_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    assert (
        main(
            [
                "devices",
                "--broker-dir",
                d,
                "add",
                "CAB-1",
                "--site",
                "S1",
                "--layout",
                "S:10,M:8,L:4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    entry = out[out.index("[[devices]]") :]
    raw = tomllib.loads(entry) | {"sites": [{"id": "S1"}]}
    (device,) = HubSettings.from_mapping(raw).devices
    assert (device.id, device.site, device.kind, device.layout) == (
        "CAB-1",
        "S1",
        "cabinet",
        "S:10,M:8,L:4",
    )

    assert (
        main(
            [
                "devices",
                "--broker-dir",
                d,
                "add",
                "LINE-1",
                "--site",
                "S1",
                "--kind",
                "sorting_line",
            ]
        )
        == 0
    )
    assert 'kind = "sorting_line"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [
        ["--layout", "S:0"],
        ["--layout", "Q:3"],
        ["--kind", "cabinet"],  # a cabinet needs a layout
        ["--kind", "sorting_line", "--layout", "S:1"],
    ],
)
def test_bad_layouts_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert (
        main(["devices", "--broker-dir", str(tmp_path), "add", "CAB-1", "--site", "S1", *extra])
        == 2
    )
    assert "--layout" in capsys.readouterr().err
    assert not (tmp_path / "accounts.json").exists()
