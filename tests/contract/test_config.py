"""The shared settings loader: TOML + environment, and errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lockerhub.config import load_settings


class Bad(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Net:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    password: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise Bad(f"net.port: {self.port} is not a TCP port")


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    id: str
    lat: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class App:
    net: Net = field(default_factory=Net)
    path: Path = Path("x.db")
    sites: tuple[Site, ...] = ()


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> App:
    p = tmp_path / "app.toml"
    p.write_text(text)
    return load_settings(App, p, env or {}, env_prefix="APP_", error=Bad)


def test_defaults_file_and_env(tmp_path: Path) -> None:
    assert load_settings(App, None, {}, env_prefix="APP_", error=Bad) == App()
    s = load(
        tmp_path,
        '[net]\nport = 1900\n[[sites]]\nid = "a"\nlat = 1\n',
        {"APP_NET__HOST": "broker", "APP_NET__TLS": "yes", "OTHER": "x"},
    )
    assert s.net == Net(host="broker", port=1900, tls=True)
    assert s.sites == (Site(id="a", lat=1.0),)
    s = load(tmp_path, "", {"APP_SITES": '[{"id": "b"}]', "APP_NET__PORT": "2000"})
    assert s.sites == (Site(id="b"),)
    assert s.net.port == 2000


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("[net]\nprot = 1\n", {}, "net.prot"),
        ("[nett]\n", {}, "nett"),
        ('[net]\nport = "80"\n', {}, "net.port"),
        ("[net]\nport = 70000\n", {}, "net.port"),
        ("[net]\ntls = 1\n", {}, "net.tls"),
        ("net = 5\n", {}, "net"),
        ("[[sites]]\nlat = 1\n", {}, "sites[0].id"),
        ("sites = [1]\n", {}, "sites[0]"),
        ("path = 3\n", {}, "path"),
        ("[net\n", {}, "not valid TOML"),
        ("", {"APP_NET__PORT": "eighty"}, "APP_NET__PORT"),
        ("", {"APP_NET__NOPE": "1"}, "net.nope"),
        ("", {"APP_WHAT": "1"}, "APP_WHAT"),
        ("", {"APP_SITES": "[oops"}, "APP_SITES"),
        ("", {"APP_NET__TLS": "maybe"}, "APP_NET__TLS"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], names: str) -> None:
    with pytest.raises(Bad) as err:
        load(tmp_path, text, env)
    assert names in str(err.value)


def test_missing_file_and_binary_garbage(tmp_path: Path) -> None:
    with pytest.raises(Bad, match="cannot read"):
        load_settings(App, tmp_path / "none.toml", {}, env_prefix="APP_", error=Bad)
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(Bad, match="not valid TOML"):
        load_settings(App, p, {}, env_prefix="APP_", error=Bad)
