"""The OCPP 1.6J central system against simulated charge points (real websockets, real ocpp)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from hub.api.charging import ChargingRpcs
from hub.api.interceptors import DomainErrorInterceptor
from hub.devices.alarms import AlarmService
from hub.errors import ConfigError
from hub.metrics.catalogue import HubMetrics
from hub.ocpp import CentralSystem
from hub.settings import HubSettings, OcppSettings
from hub.store.repo import devices as devices_repo
from lockerhub.clock import ManualClock, SystemClock
from lockerhub.v1 import fleet_pb2, fleet_pb2_grpc
from tests.support.ocpp import BOOT, SITE, Harness, call, central_system, eventually


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[Harness]:
    async with central_system(tmp_path) as harness:
        yield harness


class _Fleet(ChargingRpcs, fleet_pb2_grpc.FleetServiceServicer):
    pass


@contextlib.asynccontextmanager
async def fleet_stub(
    system: CentralSystem | None,
) -> AsyncIterator[fleet_pb2_grpc.FleetServiceStub]:
    server = grpc.aio.server(interceptors=[DomainErrorInterceptor()])
    fleet_pb2_grpc.add_FleetServiceServicer_to_server(_Fleet(system), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield fleet_pb2_grpc.FleetServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def test_session_with_energy_remote_start_stop_and_metrics(central: Harness) -> None:
    async with (
        central.pile("pile-1", power_w=36_000, meter_interval_s=0.1) as cp,
        fleet_stub(central.system) as fleet,
    ):
        assert cp.registration == "Accepted"
        listed = await fleet.ListChargingPiles(fleet_pb2.ListChargingPilesRequest(site=SITE))
        assert [p.pile_id for p in listed.piles] == ["pile-1"]
        assert listed.piles[0].online
        assert listed.piles[0].vendor == "lockerhub-sim"
        started = await fleet.RemoteStartCharging(
            fleet_pb2.RemoteStartChargingRequest(pile_id="pile-1", connector_id=1, id_tag="TAG1")
        )
        assert started.accepted
        assert started.status == "Accepted"
        await eventually(lambda: cp.connectors[1].transaction_id)
        tx_id = cp.connectors[1].transaction_id
        # Meter values arrive: power and a growing energy register.
        await eventually(
            lambda: (
                (
                    central.metric(
                        "lockerhub_charging_energy_watt_hours_total",
                        site=SITE,
                        pile="pile-1",
                        connector="1",
                    )
                    or 0
                )
                > 1
            )
        )
        assert (
            central.metric(
                "lockerhub_charging_power_watts", site=SITE, pile="pile-1", connector="1"
            )
            == 36_000
        )
        assert (
            central.metric(
                "lockerhub_charging_connector_status",
                site=SITE,
                pile="pile-1",
                connector="1",
                status="Charging",
            )
            == 1
        )
        stopped = await fleet.RemoteStopCharging(
            fleet_pb2.RemoteStopChargingRequest(pile_id="pile-1", transaction_id=tx_id)
        )
        assert stopped.accepted
        await eventually(lambda: not cp.connectors[1].transaction_id)
        sessions = await eventually(lambda: _closed(central))
        assert sessions[0]["transaction_id"] == tx_id
        assert sessions[0]["energy_wh"] > 1
        charging_s = central.metric(
            "lockerhub_charging_seconds_total", site=SITE, pile="pile-1", connector="1"
        )
        assert charging_s is not None
        assert charging_s > 0
        assert central.metric("lockerhub_charging_sessions_total", site=SITE, pile="pile-1") == 1
        # The pile is a registered device of its site.
        async with central.store.read() as tx:
            device = await devices_repo.get_device(tx, "pile-1")
        assert device is not None
        assert device.kind == "charging_pile"
        assert device.online
    # Disconnected: offline in metrics and store.
    await eventually(
        lambda: central.metric("lockerhub_charging_pile_up", site=SITE, pile="pile-1") == 0
    )


async def _closed(central: Harness) -> list[dict[str, object]]:
    rows = await central.system.sessions.sessions("pile-1")
    return rows if rows and rows[0]["stopped_ms"] else []


async def test_fault_raises_and_clears_an_alarm(central: Harness) -> None:
    async with central.pile("pile-2") as cp:
        await cp.fault(2, "GroundFailure")
        assert central.metric("lockerhub_alarms_total", kind="charging_pile_fault") == 1
        assert (
            central.metric(
                "lockerhub_charging_connector_status",
                site=SITE,
                pile="pile-2",
                connector="2",
                status="Faulted",
            )
            == 1
        )
        async with central.store.read() as tx:
            rows = await tx.fetchall("SELECT kind, status FROM alarms WHERE device = 'pile-2'")
        assert [(r["kind"], r["status"]) for r in rows] == [("charging_pile_fault", "raised")]
        await cp.status(2, "Available")
        async with central.store.read() as tx:
            rows = await tx.fetchall("SELECT status FROM alarms WHERE device = 'pile-2'")
        assert [r["status"] for r in rows] == ["cleared"]
        assert central.metric("lockerhub_charging_faults_total", site=SITE, pile="pile-2") == 1


async def test_a_heartbeat_keeps_a_pile_seen_and_clears_its_silence_alarm(
    central: Harness,
) -> None:
    """The lifecycle sweeper raises cabinet_offline for any device silent too long: a pile's
    heartbeats must count as heard from, or a healthy pile is reported offline for good."""
    async with central.pile("pile-3") as cp:
        async with central.store.transaction() as tx:  # as the sweeper does for a silent pile
            await tx.execute("UPDATE devices SET last_seen_ms = 1 WHERE id = 'pile-3'")
            await AlarmService(central.store, SystemClock(), central.metrics).raise_(
                tx, site=SITE, device="pile-3", kind="cabinet_offline", detail="silent"
            )
        await cp.heartbeat()
        async with central.store.read() as tx:
            seen = await tx.fetchone("SELECT last_seen_ms FROM devices WHERE id = 'pile-3'")
            rows = await tx.fetchall("SELECT status FROM alarms WHERE device = 'pile-3'")
        assert seen is not None
        assert seen["last_seen_ms"] > 1
        assert [r["status"] for r in rows] == ["cleared"]


async def test_a_busy_pile_without_heartbeats_is_still_heard_from(tmp_path: Path) -> None:
    """OCPP 1.6's HeartbeatInterval is an interval of inactivity: a pile busy with other calls
    may send no Heartbeat. Any call counts, written at most once per half interval."""
    clock = ManualClock()
    async with central_system(tmp_path, clock=clock) as central, central.pile("pile-4") as cp:
        interval_ms = central.system.heartbeat_interval_s * 1000
        clock.advance(interval_ms)  # the pile's calls since its boot are long ago
        async with central.store.transaction() as tx:
            await AlarmService(central.store, clock, central.metrics).raise_(
                tx, site=SITE, device="pile-4", kind="cabinet_offline", detail="silent"
            )
        await cp.status(1, "Available")  # no Heartbeat
        async with central.store.read() as tx:
            seen = await tx.fetchone("SELECT last_seen_ms FROM devices WHERE id = 'pile-4'")
            rows = await tx.fetchall("SELECT status FROM alarms WHERE device = 'pile-4'")
        assert seen is not None
        assert seen["last_seen_ms"] == clock.now_ms()
        assert [r["status"] for r in rows] == ["cleared"]
        heard = clock.now_ms()
        clock.advance(interval_ms // 2 - 1)
        await cp.status(1, "Preparing")  # within half an interval: no second write
        async with central.store.read() as tx:
            again = await tx.fetchone("SELECT last_seen_ms FROM devices WHERE id = 'pile-4'")
        assert again is not None
        assert again["last_seen_ms"] == heard
        clock.advance(1)
        await cp.status(1, "Charging")
        async with central.store.read() as tx:
            later = await tx.fetchone("SELECT last_seen_ms FROM devices WHERE id = 'pile-4'")
        assert later is not None
        assert later["last_seen_ms"] == clock.now_ms()


async def test_rpc_errors_are_clear(central: Harness) -> None:
    async with fleet_stub(central.system) as fleet:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await fleet.RemoteStartCharging(
                fleet_pb2.RemoteStartChargingRequest(pile_id="nope", connector_id=1, id_tag="T")
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await fleet.RemoteStartCharging(
                fleet_pb2.RemoteStartChargingRequest(pile_id="bad/id", connector_id=1, id_tag="T")
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        async with central.pile("pile-3"):
            for request in (
                fleet_pb2.RemoteStartChargingRequest(pile_id="pile-3", connector_id=0, id_tag="T"),
                fleet_pb2.RemoteStartChargingRequest(pile_id="pile-3", connector_id=1, id_tag=""),
                fleet_pb2.RemoteStartChargingRequest(
                    pile_id="pile-3", connector_id=1, id_tag="X" * 21
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await fleet.RemoteStartCharging(request)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await fleet.RemoteStopCharging(
                    fleet_pb2.RemoteStopChargingRequest(pile_id="pile-3", transaction_id=999)
                )
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        # Known but disconnected.
        await eventually(lambda: not central.system.piles()[0].online)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await fleet.RemoteStartCharging(
                fleet_pb2.RemoteStartChargingRequest(pile_id="pile-3", connector_id=1, id_tag="T")
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    async with fleet_stub(None) as fleet:
        empty = await fleet.ListChargingPiles(fleet_pb2.ListChargingPilesRequest())
        assert not empty.piles
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await fleet.RemoteStopCharging(
                fleet_pb2.RemoteStopChargingRequest(pile_id="p", transaction_id=1)
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("path", "protocols", "status"),
    [
        ("/ocpp/unknown-site/p1", ["ocpp1.6"], 404),
        ("/ocpp/hubsite/bad%20id", ["ocpp1.6"], 404),
        ("/other/hubsite/p1", ["ocpp1.6"], 404),
        ("/ocpp/hubsite/p1/extra", ["ocpp1.6"], 404),
        ("/ocpp/hubsite/p1", ["ocpp2.0.1"], 400),
        ("/ocpp/hubsite/p1", [], 400),
    ],
)
async def test_hostile_connections_are_refused(
    central: Harness, path: str, protocols: list[str], status: int
) -> None:
    url = f"ws://127.0.0.1:{central.system.port}{path}"
    with pytest.raises(InvalidStatus) as err:
        async with connect(url, subprotocols=[Subprotocol(p) for p in protocols] or None):
            pass
    assert err.value.response.status_code == status
    assert central.system.piles() == []


async def test_hostile_frames_get_call_errors_and_nothing_breaks(central: Harness) -> None:
    async with central.connect("pile-h") as ws:
        assert await call(ws, BOOT) == [3, "boot", ANY]
        frames: list[Any] = [
            "not json",
            json.dumps([2, "1", "BootNotification", {"chargePointVendor": 5}]),
            json.dumps([2, "2", "NoSuchAction", {}]),
            json.dumps(
                [
                    2,
                    "3",
                    "StatusNotification",
                    {"connectorId": 99, "errorCode": "NoError", "status": "Available"},
                ]
            ),
            json.dumps(
                [
                    2,
                    "4",
                    "MeterValues",
                    {
                        "connectorId": 1,
                        "meterValue": [
                            {
                                "timestamp": "2026-01-01T00:00:00Z",
                                "sampledValue": [{"value": "NaN"}],
                            }
                        ],
                    },
                ]
            ),
            json.dumps(
                [
                    2,
                    "5",
                    "StopTransaction",
                    {"meterStop": 5, "timestamp": "2026-01-01T00:00:00Z", "transactionId": 4242},
                ]
            ),
        ]
        answers = []
        for frame in frames:
            await ws.send(frame)
            if frame != "not json":
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        kinds = [a[0] for a in answers]
        # Bad schema, unknown action, out-of-range connector: CallError (4); the rest answered.
        assert kinds[:3] == [4, 4, 4], answers
        assert kinds[3:] == [3, 3], answers
        # Oversized frame: the connection is closed (max_message_bytes), nothing stored.
    async with central.connect("pile-h") as ws:
        await ws.send("[" + "1," * 40_000 + "1]")
        with pytest.raises(Exception):  # noqa: B017, PT011 - the close reason varies
            await asyncio.wait_for(ws.recv(), 10)
    text = generate_latest(central.metrics.registry).decode()
    # No series names the hostile frames' transaction id. Only names and labels are checked: a
    # sample's value (a `_created` timestamp) may contain those digits by chance.
    # No series names the hostile frames' transaction id, and no sample is it. A sample's value
    # is compared as a number: a `_created` timestamp may contain those digits by chance.
    samples = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
    assert samples
    assert not [name for name, _ in samples if "4242" in name]
    assert not [name for name, value in samples if float(value) == 4242]
    # The central system still serves a well-behaved pile.
    async with central.pile("pile-ok") as cp:
        assert cp.registration == "Accepted"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"port": 70000}, "ocpp.port"),
        ({"path_prefix": "a/b"}, "ocpp.path_prefix"),
        ({"heartbeat_interval_s": 1}, "ocpp.heartbeat_interval_s"),
        ({"response_timeout_s": 0}, "ocpp.response_timeout_s"),
        ({"max_piles": 0}, "ocpp.max_piles"),
        ({"max_message_bytes": 10}, "ocpp.max_message_bytes"),
        ({"sessions_path": ""}, "ocpp.sessions_path"),
        ({"host": ""}, "ocpp.host"),
        ({"enabled": "yes"}, "ocpp.enabled"),
        ({"security_profile": 0}, "ocpp.security_profile"),
        ({"enabled": True}, "ocpp.credentials_path"),
        ({"security_profile": 2, "tls_key": "k.pem"}, "ocpp.tls_cert"),
        ({"authorized_id_tags": ["X" * 21]}, "ocpp.authorized_id_tags"),
        ({"blocked_id_tags": [""]}, "ocpp.authorized_id_tags"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_ocpp_settings_name_the_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        HubSettings.from_mapping({"ocpp": values})


async def test_port_in_use_is_a_config_error(central: Harness, tmp_path: Path) -> None:
    settings = OcppSettings(
        enabled=True,
        port=central.system.port,
        sessions_path=tmp_path / "other.db",
        credentials_path=central.system.settings.credentials_path,
    )
    system = CentralSystem(
        settings,
        sites=[SITE],
        store=central.store,
        alarms=AlarmService(central.store, SystemClock(), central.metrics),
        metrics=HubMetrics(CollectorRegistry()),
        clock=SystemClock(),
    )
    with pytest.raises(ConfigError, match=r"ocpp\.port"):
        await system.__aenter__()


async def test_a_pile_that_never_answers_is_unavailable(tmp_path: Path) -> None:
    async with (
        central_system(tmp_path, response_timeout_s=0.5) as central,
        central.connect("mute") as ws,
        fleet_stub(central.system) as fleet,
    ):
        assert (await call(ws, BOOT))[0] == 3  # booted, then silent
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await fleet.RemoteStartCharging(
                fleet_pb2.RemoteStartChargingRequest(pile_id="mute", connector_id=1, id_tag="T")
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_id_tags_stay_out_of_logs_and_metrics(
    central: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with central.pile("pile-9", meter_interval_s=0.1) as cp:
        await cp.start_charging(1, "SECRETTAG9")
        await cp.stop_charging(1)
    assert "SECRETTAG9" not in caplog.text
    assert "SECRETTAG9" not in generate_latest(central.metrics.registry).decode()
    sessions = await central.system.sessions.sessions("pile-9")
    assert len(sessions) == 1
    assert b"SECRETTAG9" not in (central.system.settings.sessions_path).read_bytes()
