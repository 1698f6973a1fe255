"""Settings: the example loads; every kind of mistake is a ConfigError naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.errors import ConfigError
from edge.settings import EdgeSettings
from lockerhub.driver import SizeClass

EXAMPLE = Path(__file__).parents[2] / "edge" / "examples" / "cabinet.toml"
DEVICE = {"device": {"id": "cab-1", "site": "site-a"}}


def test_example_loads_with_env_overrides() -> None:
    s = EdgeSettings.load(
        EXAMPLE,
        env={
            "LOCKERHUB_EDGE_BROKER__PORT": "1884",
            "LOCKERHUB_EDGE_BROKER__PASSWORD": "s3cret",
            "LOCKERHUB_EDGE_TELEMETRY__INTERVAL_S": "5",
            "PATH": "/usr/bin",
        },
    )
    assert s.broker.port == 1884
    assert s.telemetry.interval_s == 5.0
    assert "s3cret" not in repr(s)
    specs = s.driver.compartment_specs()
    assert len(specs) == 14
    assert specs[0].compartment_id == "C01"
    assert (specs[0].size, specs[0].height_mm, specs[0].width_mm, specs[0].depth_mm) == (
        SizeClass.S,
        80,
        380,
        640,
    )
    assert specs[-1].chilled


def test_defaults_only_need_the_device() -> None:
    s = EdgeSettings.from_mapping(DEVICE)
    assert s.broker.session_expiry_s == 7200
    assert s.keypad.max_failures == 5


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "device"),
        ({"device": {"id": "cab 1", "site": "a"}}, "device.id"),
        ({**DEVICE, "broker": {"port": 0}}, "broker.port"),
        ({**DEVICE, "broker": {"port": "1883"}}, "broker.port"),
        ({**DEVICE, "broker": {"prot": 1883}}, "broker.prot"),
        ({**DEVICE, "broker": {"session_expiry_s": 0}}, "broker.session_expiry_s"),
        ({**DEVICE, "brokr": {}}, "brokr"),
        ({**DEVICE, "keypad": {"max_failures": True}}, "keypad.max_failures"),
        ({**DEVICE, "door": {"open_confirm_ms": 5}}, "door.open_confirm_ms"),
        ({**DEVICE, "driver": {"kind": "canbus"}}, "driver.kind"),
        ({**DEVICE, "driver": {"kind": "modbus", "modbus_port": 0}}, "driver.modbus_port"),
        ({**DEVICE, "driver": {"modbus_meter_unit": 300}}, "driver.modbus_meter_unit"),
        ({**DEVICE, "driver": {"modbus_poll_s": 0}}, "driver.modbus_poll_s"),
        ({**DEVICE, "driver": {"board_size": 0}}, "driver.board_size"),
        ({**DEVICE, "driver": {"sim_slow_relay_s": -1}}, "driver.sim_slow_relay_s"),
        ({**DEVICE, "storage": {"outbox_max_bytes": 10}}, "storage.outbox_max_bytes"),
        ({**DEVICE, "storage": {"replay_rate_per_s": 0}}, "storage.replay_rate_per_s"),
        ({**DEVICE, "storage": {"resend_window": -1}}, "storage.resend_window"),
        ({**DEVICE, "door": {"left_open_s": 0}}, "door.left_open_s"),
        ({**DEVICE, "keypad": {"max_lockout_s": 1}}, "keypad.max_lockout_s"),
        ({**DEVICE, "chilled": {"min_c": 8, "max_c": 4}}, "chilled.min_c"),
        ({"device": {"id": "c", "site": "s", "kind": "toaster"}}, "device.kind"),
        ({**DEVICE, "sorter": {"chutes": []}}, "sorter.chutes"),
        ({**DEVICE, "sorter": {"chutes": ["A", "A"], "exception_chute": "A"}}, "sorter.chutes"),
        ({**DEVICE, "sorter": {"chutes": ["a/#"]}}, "sorter.chutes"),
        ({**DEVICE, "sorter": {"exception_chute": "ZZ"}}, "sorter.exception_chute"),
        ({**DEVICE, "sorter": {"confirm_timeout_s": 0}}, "sorter.confirm_timeout_s"),
        ({**DEVICE, "sorter": {"max_recirculations": 99}}, "sorter.max_recirculations"),
        ({**DEVICE, "sorter": {"sim_no_read_rate": 2}}, "sorter.sim_no_read_rate"),
        ({**DEVICE, "driver": {"compartments": [{"size": "XXL"}]}}, "driver.compartments.size"),
        ({**DEVICE, "driver": {"compartments": [{"size": "XL"}]}}, "driver.compartments.width_mm"),
        (
            {**DEVICE, "driver": {"compartments": [{"size": "S", "colour": 1}]}},
            r"driver.compartments\[0\].colour",
        ),
        ({**DEVICE, "driver": {"compartments": {"size": "S"}}}, "driver.compartments"),
        ({**DEVICE, "storage": {"path": 3}}, "storage.path"),
    ],
)
def test_errors_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}\b"):
        EdgeSettings.from_mapping(data)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LOCKERHUB_EDGE_BROKER__PORT": "abc"}, "LOCKERHUB_EDGE_BROKER__PORT (broker.port)"),
        ({"LOCKERHUB_EDGE_BROKER__NOPE": "1"}, "LOCKERHUB_EDGE_BROKER__NOPE"),
        ({"LOCKERHUB_EDGE_BROKERPORT": "1"}, "LOCKERHUB_EDGE_BROKERPORT"),
        ({"LOCKERHUB_EDGE_DRIVER__COMPARTMENTS": "x"}, "LOCKERHUB_EDGE_DRIVER__COMPARTMENTS"),
    ],
)
def test_env_errors_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        EdgeSettings.load(EXAMPLE, env=env)
    assert needle in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        EdgeSettings.load(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[device\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        EdgeSettings.load(bad, env={})
