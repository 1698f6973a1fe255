"""Bearer tokens with roles: each role's permissions, clear status codes, streams covered, TLS."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.api.auth import token_digest
from hub.errors import ConfigError
from hub.settings import HubSettings
from lockerhub.v1 import dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from tests.hub.conftest import HubHarness, running_hub, settings_for
from tests.hub.test_flow import announcement, online

TOKENS = {"viewer": "v-secret-1", "operator": "o-secret-2", "admin": "a-secret-3"}


@pytest.fixture
async def hub(tmp_path: Path, mosquitto: Any, site: str) -> AsyncIterator[HubHarness]:
    tokens = [
        {"name": f"{role}1", "role": role, "sha256": token_digest(secret)}
        for role, secret in TOKENS.items()
    ]
    settings = settings_for(tmp_path, mosquitto, site, auth={"tokens": tokens})
    async with running_hub(settings, tmp_path, mosquitto) as h:
        yield h


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_each_role_gets_what_it_may(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await check_roles(hub)


async def check_roles(hub: HubHarness) -> None:
    d, f = hub.dispatch, hub.fleet

    def read(t: str) -> Any:
        return d.ListParcels(dispatch_pb2.ListParcelsRequest(), metadata=md(t))

    def announce(t: str) -> Any:
        parcels = [announcement(f"P-{t[:1]}", hub.site)]
        return d.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=parcels), metadata=md(t)
        )

    def sites(t: str) -> Any:
        return f.ListSites(fleet_pb2.ListSitesRequest(), metadata=md(t))

    def ack(t: str) -> Any:
        return f.AcknowledgeAlarm(fleet_pb2.AlarmActionRequest(alarm_id="1"), metadata=md(t))

    ok, denied = grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED
    # (ack of alarm 1: NOT_FOUND, there is none)
    missing = grpc.StatusCode.NOT_FOUND
    expected = {
        "viewer": (ok, denied, ok, denied),
        "operator": (ok, ok, ok, missing),
        "admin": (ok, ok, ok, missing),
    }
    for role, codes in expected.items():
        token = TOKENS[role]
        got = tuple([await code_of(c(token)) for c in (read, announce, sites, ack)])
        assert got == codes, role

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await d.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-x", hub.site)]),
            metadata=md(TOKENS["viewer"]),
        )
    assert "needs role operator" in (err.value.details() or "")
    assert TOKENS["viewer"] not in (err.value.details() or "")
    # The audit actor is the token's name.
    rows = await hub.sql("SELECT actor FROM parcel_transitions WHERE parcel_id = 'P-o'")
    assert rows[0] == ("operator:operator1",)


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Bearer "),),
        (("authorization", "Basic dXNlcjpwdw=="),),
        (("authorization", "Bearer wrong-token"),),
        (("authorization", "Bearer " + "x" * 4000),),
        (("authorization", "Bearer v-secret-1 extra"),),
        (("authorization", "v-secret-1"),),
    ],
)
async def test_missing_or_bad_tokens_are_unauthenticated(
    hub: HubHarness, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.dispatch.ListParcels(dispatch_pb2.ListParcelsRequest(), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await hub.sql("SELECT COUNT(*) FROM parcels") == [(0,)]


async def test_streams_need_a_token_and_health_stays_open(hub: HubHarness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in hub.dispatch.WatchEvents(dispatch_pb2.WatchEventsRequest()):
            pass
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    call = hub.dispatch.WatchEvents(
        dispatch_pb2.WatchEventsRequest(cursor="0"), metadata=md(TOKENS["viewer"])
    )
    async with hub.cabinet("CAB-S") as cab:
        await cab.birth()
        await online(hub, "CAB-S")
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-S", hub.site)]),
            metadata=md(TOKENS["operator"]),
        )
    first = await asyncio.wait_for(call.read(), 10)  # authorised: the stream delivers
    assert first.parcel.parcel_id == "P-S"
    call.cancel()
    health = health_pb2_grpc.HealthStub(hub.channel)
    resp = await health.Check(health_pb2.HealthCheckRequest())
    assert resp.status in (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )


async def test_deadline_is_honoured(hub: HubHarness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in hub.dispatch.WatchEvents(
            dispatch_pb2.WatchEventsRequest(), metadata=md(TOKENS["viewer"]), timeout=0.3
        ):
            pass
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize(
    ("tokens", "key"),
    [
        ([{"name": "a", "role": "root", "sha256": "0" * 64}], "role"),
        ([{"name": "a", "role": "admin", "sha256": "plain-token"}], "sha256"),
        ([{"name": "a b", "role": "admin", "sha256": "0" * 64}], "name"),
        (
            [
                {"name": "a", "role": "admin", "sha256": "0" * 64},
                {"name": "a", "role": "viewer", "sha256": "1" * 64},
            ],
            "duplicate",
        ),
    ],
)
def test_bad_token_settings_name_the_key(tokens: list[dict[str, str]], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        HubSettings.from_mapping({"auth": {"tokens": tokens}})
    assert key in str(err.value)
    assert "plain-token" not in str(err.value) or key == "sha256"


def test_tls_files_go_together() -> None:
    with pytest.raises(ConfigError, match="tls"):
        HubSettings.from_mapping({"grpc": {"tls_cert": "cert.pem"}})


async def test_tls(tmp_path: Path, mosquitto: Any, site: str) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    settings = settings_for(
        tmp_path, mosquitto, site, grpc={"tls_cert": str(cert), "tls_key": str(key)}
    )
    async with running_hub(settings, tmp_path, mosquitto) as h:
        port = h.app.grpc_address.rsplit(":", 1)[1]
        creds = grpc.ssl_channel_credentials(cert.read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{port}", creds) as channel:
            resp = await fleet_pb2_grpc.FleetServiceStub(channel).ListSites(
                fleet_pb2.ListSitesRequest()
            )
            assert [s.site_id for s in resp.sites] == [site]
        # A plaintext client cannot talk to it.
        async with grpc.aio.insecure_channel(h.app.grpc_address) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await dispatch_pb2_grpc.DispatchServiceStub(plain).ListParcels(
                    dispatch_pb2.ListParcelsRequest(), timeout=5
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
