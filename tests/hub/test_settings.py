"""Settings: TOML + environment, and broken files rejected with the key named."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hub.cli import register
from hub.errors import ConfigError
from hub.settings import HubSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "hub" / "examples" / "hub.toml"


def test_defaults_and_example() -> None:
    defaults = HubSettings.load(None, env={})
    assert defaults.ingest.max_payload_bytes == 64 * 1024
    assert defaults.pickup.deadline_h == 48
    assert defaults.registry.auto_register
    example = HubSettings.load(EXAMPLE, env={})
    assert [s.id for s in example.sites] == ["campus-north", "metro-east"]


def test_environment_overrides() -> None:
    s = HubSettings.load(
        EXAMPLE,
        env={
            "LOCKERHUB_HUB_BROKER__PORT": "1999",
            "LOCKERHUB_HUB_BROKER__PASSWORD": "s3cret",
            "LOCKERHUB_HUB_REGISTRY__AUTO_REGISTER": "false",
            "LOCKERHUB_HUB_STORAGE__PATH": "/tmp/x.db",
            "LOCKERHUB_HUB_SITES": '[{"id": "s1"}]',
            # The inventory names sites: replaced with them.
            "LOCKERHUB_HUB_DEVICES": '[{"id": "c1", "site": "s1", "layout": "S:1"}]',
            "OTHER": "ignored",
        },
    )
    assert s.broker.port == 1999
    assert s.broker.password == "s3cret"
    assert not s.registry.auto_register
    assert s.storage.path == Path("/tmp/x.db")
    assert [x.id for x in s.sites] == ["s1"]
    assert [(d.id, d.layout) for d in s.devices] == [("c1", "S:1")]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[broker]\nprot = 1883\n", "broker.prot"),
        ("[brokr]\nport = 1883\n", "brokr"),
        ('[broker]\nport = "x"\n', "broker.port"),
        ("[broker]\nport = 70000\n", "broker.port"),
        ("[pickup]\ncode_digits = 9\n", "pickup.code_digits"),
        ("[ingest]\nmax_payload_bytes = 1\n", "ingest.max_payload_bytes"),
        ("[registry]\nauto_register = 1\n", "registry.auto_register"),
        ('[broker]\nshare_group = "a/b"\n', "broker.share_group"),
        ('[[sites]]\nname = "no id"\n', "sites[0]"),
        ('[[sites]]\nid = "s"\nlat = 200\n', "sites[s].lat"),
        ('[[sites]]\nid = "s"\n[[sites]]\nid = "s"\n', "sites.id"),
        ("broker = 3\n", "broker"),
        ("[broker\n", "not valid TOML"),
    ],
)
def test_broken_files_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        HubSettings.load(path, env={})
    assert key in str(err.value)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"LOCKERHUB_HUB_BROKER__PORT": "abc"}, "broker.port"),
        ({"LOCKERHUB_HUB_BROKER__NOPE": "1"}, "broker.nope"),
        ({"LOCKERHUB_HUB_NOPE": "1"}, "LOCKERHUB_HUB_NOPE"),
        ({"LOCKERHUB_HUB_REGISTRY__AUTO_REGISTER": "maybe"}, "registry.auto_register"),
    ],
)
def test_broken_environment_names_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        HubSettings.load(None, env=env)
    assert key in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        HubSettings.load(Path("/nonexistent/hub.toml"), env={})


def test_cli_broken_config_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[pickup]\ncode_digits = 12\n")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["hub", "--config", str(path)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pickup.code_digits")
    assert "Traceback" not in err


def test_broker_password_never_appears_in_repr() -> None:
    from hub.settings import BrokerSettings

    assert "s3cret" not in repr(BrokerSettings(username="hub", password="s3cret"))
