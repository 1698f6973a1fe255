"""Who may talk to the OCPP central system (issue 10, finding 5): real sockets, real ``ocpp``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from firmware_sim.errors import SimError
from hub.ocpp.credentials import basic_header
from lockerhub.v1 import fleet_pb2
from tests.monitoring.test_ocpp import fleet_stub
from tests.support.ocpp import (
    BOOT,
    SITE,
    Harness,
    call,
    central_system,
    eventually,
    make_tls,
    password,
)


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[Harness]:
    async with central_system(tmp_path) as harness:
        yield harness


async def _devices(central: Harness) -> list[str]:
    async with central.store.read() as tx:
        rows = await tx.fetchall("SELECT id FROM devices")
    return [r["id"] for r in rows]


async def _status(central: Harness, ws_factory: Any) -> int:
    with pytest.raises(InvalidStatus) as err:
        async with ws_factory:
            pass
    return int(err.value.response.status_code)


@pytest.mark.parametrize(
    ("pile", "secret"),
    [
        ("pile-1", None),  # no Authorization header
        ("pile-1", "wrong-password-0123456789"),
        ("stranger", "any-password-0123456789"),  # not provisioned
    ],
)
async def test_unauthenticated_piles_get_401_at_the_upgrade(
    central: Harness, pile: str, secret: str | None
) -> None:
    assert await _status(central, central.connect(pile, secret)) == 401
    assert central.system.piles() == []
    assert await _devices(central) == []


async def test_a_pile_cannot_use_another_piles_password_or_site(central: Harness) -> None:
    headers = {"Authorization": basic_header("pile-2", password("pile-2"))}
    as_other = connect(
        central.url("pile-1"), subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers
    )
    assert await _status(central, as_other) == 401


async def test_150_unknown_ids_leave_no_device_row_and_no_metric_series(
    central: Harness,
) -> None:
    for i in range(150):
        assert await _status(central, central.connect(f"intruder-{i}", f"guess-{i}")) == 401
    assert central.system.piles() == []
    assert await _devices(central) == []
    text = generate_latest(central.metrics.registry).decode()
    assert "intruder" not in text
    assert 'pile="' not in text
    assert central.metric("lockerhub_ocpp_connections_refused_total", reason="unauthorized") == 150


async def test_a_second_connection_for_a_connected_pile_is_refused_and_remote_start_reaches_the_real_pile(  # noqa: E501
    central: Harness,
) -> None:
    async with (
        central.pile("pile-1", meter_interval_s=0.1) as real,
        fleet_stub(central.system) as fleet,
    ):
        # Same id, right password: still refused while the real pile holds its socket.
        assert await _status(central, central.connect("pile-1")) == 409
        started = await fleet.RemoteStartCharging(
            fleet_pb2.RemoteStartChargingRequest(pile_id="pile-1", connector_id=1, id_tag="TAG1")
        )
        assert started.accepted
        await eventually(lambda: real.connectors[1].transaction_id)
        assert central.metric("lockerhub_charging_pile_up", site=SITE, pile="pile-1") == 1


async def test_calls_before_an_accepted_boot_are_refused(central: Harness) -> None:
    start = [
        2,
        "s1",
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
    ]
    async with central.connect("pile-a") as ws:
        answer = await call(ws, start)
        assert answer[:3] == [4, "s1", "SecurityError"]
        assert await central.system.sessions.sessions("pile-a") == []
        assert await _devices(central) == []
        assert (await call(ws, BOOT))[2]["status"] == "Accepted"
        assert (await call(ws, start))[0] == 3


async def test_id_tags_outside_the_local_list_are_refused(central: Harness) -> None:
    async with central.connect("pile-a") as ws:
        await call(ws, BOOT)
        for tag, status in (
            ("TAG1", "Accepted"),
            ("tag1", "Accepted"),  # CiString: case-insensitive
            ("NOBODY", "Invalid"),
            ("STOLEN1", "Blocked"),
        ):
            answer = await call(ws, [2, "a", "Authorize", {"idTag": tag}])
            assert answer == [3, "a", {"idTagInfo": {"status": status}}], tag
            start = {
                "connectorId": 1,
                "idTag": tag,
                "meterStart": 0,
                "timestamp": "2026-01-01T00:00:00Z",
            }
            answer = await call(ws, [2, "s", "StartTransaction", start])
            assert answer[2]["idTagInfo"] == {"status": status}, tag
            if status != "Accepted":
                assert answer[2]["transactionId"] == 0
        sessions = await central.system.sessions.sessions("pile-a")
        assert len(sessions) == 2  # TAG1 and tag1 only


async def test_the_simulator_does_not_charge_on_a_refused_tag(central: Harness) -> None:
    async with central.pile("pile-2") as cp:
        with pytest.raises(SimError, match="Invalid"):
            await cp.start_charging(1, "NOBODY")
        assert not cp.connectors[1].transaction_id


async def test_a_reconnect_without_boot_is_online_in_store_and_metric_alike(
    central: Harness,
) -> None:
    async with central.pile("pile-3"):
        pass
    await eventually(
        lambda: central.metric("lockerhub_charging_pile_up", site=SITE, pile="pile-3") == 0
    )
    async with central.pile("pile-3", boot=False) as cp:
        await cp.heartbeat()  # a booted pile may reconnect without booting again
        assert central.metric("lockerhub_charging_pile_up", site=SITE, pile="pile-3") == 1
        async with central.store.read() as tx:
            row = await tx.fetchone("SELECT online FROM devices WHERE id = 'pile-3'")
        assert row is not None
        assert row["online"] == 1
    await eventually(
        lambda: central.metric("lockerhub_charging_pile_up", site=SITE, pile="pile-3") == 0
    )
    async with central.store.read() as tx:
        row = await tx.fetchone("SELECT online FROM devices WHERE id = 'pile-3'")
    assert row is not None
    assert row["online"] == 0


async def test_a_failing_handler_answers_internal_error_without_logging_the_id_tag(
    central: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("store exploded")

    monkeypatch.setattr(central.system, "on_start", broken)
    caplog.set_level(logging.DEBUG)
    async with central.connect("pile-a") as ws:
        await call(ws, BOOT)
        start = {
            "connectorId": 1,
            "idTag": "SECRETTAG9",
            "meterStart": 0,
            "timestamp": "2026-01-01T00:00:00Z",
        }
        answer = await call(ws, [2, "x", "StartTransaction", start])
    assert answer[:3] == [4, "x", "InternalError"]
    assert "SECRETTAG9" not in caplog.text
    assert "SECRETTAG9" not in str(answer)
    assert "store exploded" in caplog.text  # the bug itself is logged, with its traceback


async def test_security_profile_2_serves_basic_auth_over_tls_only(tmp_path: Path) -> None:
    cert, key, client = make_tls(tmp_path)
    async with central_system(
        tmp_path, security_profile=2, tls_cert=cert, tls_key=key, client_tls=client
    ) as central:
        assert central.url("pile-1").startswith("wss://")
        async with central.pile("pile-1") as cp:
            assert cp.registration == "Accepted"
        assert await _status(central, central.connect("pile-2", "wrong-password-0123")) == 401
        plain = central.url("pile-2").replace("wss://", "ws://")
        headers = {"Authorization": basic_header("pile-2", password("pile-2"))}
        with pytest.raises(Exception):  # noqa: B017, PT011 - a TLS port refuses a plain handshake
            async with connect(
                plain,
                subprotocols=[Subprotocol("ocpp1.6")],
                additional_headers=headers,
                open_timeout=5,
            ):
                pass
        assert [p.pile_id for p in central.system.piles()] == ["pile-1"]


async def test_energy_counts_session_deltas_not_the_lifetime_register(central: Harness) -> None:
    ts = "2026-01-01T00:00:00Z"
    async with central.connect("pile-a") as ws:
        await call(ws, BOOT)
        start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 12_000, "timestamp": ts}
        tx_id = (await call(ws, [2, "s", "StartTransaction", start]))[2]["transactionId"]
        energy = central.metric(
            "lockerhub_charging_energy_watt_hours_total", site=SITE, pile="pile-a", connector="1"
        )
        assert energy == 0
        sample = {"value": "12600", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        meter = {"connectorId": 1, "meterValue": [{"timestamp": ts, "sampledValue": [sample]}]}
        assert (await call(ws, [2, "m", "MeterValues", meter]))[0] == 3
        stop = {"meterStop": 13_100, "timestamp": ts, "transactionId": tx_id}
        assert (await call(ws, [2, "t", "StopTransaction", stop]))[0] == 3
    energy = central.metric(
        "lockerhub_charging_energy_watt_hours_total", site=SITE, pile="pile-a", connector="1"
    )
    assert energy == 1_100
    sessions = await central.system.sessions.sessions("pile-a")
    assert sessions[0]["energy_wh"] == 1_100
