"""The operator API's port, tokens, admin role and reflection; config errors of its TLS files."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from hub.api.auth import token_digest
from hub.errors import ConfigError
from hub.settings import HubSettings
from lockerhub.v1 import admin_pb2, admin_pb2_grpc, fleet_pb2
from tests.hub.conftest import HubHarness, running_hub, settings_for
from tests.support.processes import Proc

PAST = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
FUTURE = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
TOKENS = {
    "admin1": ("admin", "a-secret", None),
    "ops1": ("operator", "o-secret", FUTURE),
    "gone": ("admin", "g-secret", PAST),
}


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def hub(tmp_path: Path, mosquitto: Any, site: str) -> AsyncIterator[HubHarness]:
    tokens = [
        {"name": name, "role": role, "sha256": token_digest(secret), "expires": expires}
        for name, (role, secret, expires) in TOKENS.items()
    ]
    for t in tokens:
        if t["expires"] is None:
            del t["expires"]
    settings = settings_for(tmp_path, mosquitto, site, auth={"tokens": tokens})
    async with running_hub(settings, tmp_path, mosquitto) as h:
        yield h


def hub_config(tmp_path: Path, broker: Any, site: str, grpc_section: str) -> Path:
    user, password = broker.hub_credentials()
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "hub.toml"
    path.write_text(
        f"""
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{user}"
password = "{password}"
client_id = "second-{site}"
share_group = "second{site.replace("-", "")}"
[storage]
path = "{tmp_path / "hub.db"}"
[grpc]
host = "127.0.0.1"
{grpc_section}
[metrics]
port = 0
[notify]
path = "{tmp_path / "notes.jsonl"}"
[[sites]]
id = "{site}"
"""
    )
    return path


def run_hub_to_exit(config: Path) -> tuple[int, str]:
    proc = Proc(["hub", "--config", str(config)])
    try:
        code = proc.popen.wait(60)
    finally:
        proc.terminate()
    return code, proc.output()


async def test_a_second_hub_on_the_same_grpc_port_refuses_to_start(
    hub: HubHarness, tmp_path: Path, mosquitto: Any, site: str
) -> None:
    port = int(hub.app.grpc_address.rsplit(":", 1)[1])
    config = hub_config(tmp_path / "second", mosquitto, site, f"port = {port}")
    code, output = run_hub_to_exit(config)
    assert code == 2, output
    assert f"error: grpc.port: cannot listen on 127.0.0.1:{port}" in output
    assert "Traceback" not in output
    # The first hub still serves every call.
    admin = admin_pb2_grpc.AdminServiceStub(hub.channel)
    for _ in range(8):
        await admin.ListTokens(admin_pb2.ListTokensRequest(), metadata=md("a-secret"))


async def test_expired_token_is_unauthenticated(hub: HubHarness) -> None:
    sites = fleet_pb2.ListSitesRequest()
    await hub.fleet.ListSites(sites, metadata=md("o-secret"))  # expires in 2099
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.fleet.ListSites(sites, metadata=md("g-secret"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (err.value.details() or "")


async def test_admin_lists_tokens_and_no_one_else_may(hub: HubHarness) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(hub.channel)
    resp = await admin.ListTokens(admin_pb2.ListTokensRequest(), metadata=md("a-secret"))
    listed = {t.name: (t.role, t.expires_ms, t.expired) for t in resp.tokens}
    assert listed == {
        "admin1": ("admin", 0, False),
        "ops1": ("operator", int(FUTURE.timestamp() * 1000), False),
        "gone": ("admin", int(PAST.timestamp() * 1000), True),
    }
    assert token_digest("a-secret") not in str(resp)
    for token, code in (
        ("o-secret", grpc.StatusCode.PERMISSION_DENIED),
        ("g-secret", grpc.StatusCode.UNAUTHENTICATED),
        ("nope", grpc.StatusCode.UNAUTHENTICATED),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await admin.ListTokens(admin_pb2.ListTokensRequest(), metadata=md(token))
        assert err.value.code() == code


def test_token_expiry_is_read_from_toml_and_must_carry_an_offset(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    entry = f'[[auth.tokens]]\nname = "a"\nrole = "admin"\nsha256 = "{"0" * 64}"\n'
    config.write_text(entry + "expires = 2027-01-31T00:00:00Z\n")
    (token,) = HubSettings.load(config, env={}).auth.tokens
    assert token.expires_ms == int(dt.datetime(2027, 1, 31, tzinfo=dt.UTC).timestamp() * 1000)
    config.write_text(entry + "expires = 2027-01-31T00:00:00\n")
    with pytest.raises(ConfigError, match=r"auth\.tokens\[0\]\.expires: must be a date-time"):
        HubSettings.load(config, env={})


@pytest.mark.parametrize(
    "service", ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
)
async def test_reflection_v1_and_v1alpha(hub: HubHarness, service: str) -> None:
    call = hub.channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="lockerhub.v1.AdminService"),
    ]
    answers = [r async for r in call(iter(requests))]
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"lockerhub.v1.AdminService", "lockerhub.v1.FleetService", service} <= names
    assert answers[1].file_descriptor_response.file_descriptor_proto


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


GARBAGE = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("broken", ["grpc.tls_key", "grpc.tls_cert"])
async def test_garbage_tls_pem_is_reported_naming_the_key(
    tmp_path: Path, mosquitto: Any, site: str, broken: str
) -> None:
    cert, key = _self_signed(tmp_path)
    (key if broken == "grpc.tls_key" else cert).write_text(GARBAGE)
    config = hub_config(
        tmp_path / "hub", mosquitto, site, f'port = 0\ntls_cert = "{cert}"\ntls_key = "{key}"'
    )
    code, output = run_hub_to_exit(config)
    assert code == 2, output
    assert f"error: {broken}: " in output
    assert "Failed to bind" not in output
    assert "cannot listen" not in output
