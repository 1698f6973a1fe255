"""Couriers at the hub over real gRPC and a real broker: registry with masked phones, deposits and
withdrawals naming their courier, conduct records from events, the score, the bad-conduct list
(audited) reaching the cabinet's desired state, and hostile input."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.couriers import conduct
from lockerhub.clock import ManualClock
from lockerhub.v1 import carriers_pb2, carriers_pb2_grpc, common_pb2, device_pb2, dispatch_pb2
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.desired_watch import DesiredWatch
from tests.hub.test_flow import announcement, online
from tests.hub.test_lifecycle import HOUR_MS, S, commands_until, reach

PHONE = "13912345678"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hub(
    tmp_path: Path, mosquitto: Any, site: str, clock: ManualClock
) -> AsyncIterator[HubHarness]:
    settings = settings_for(
        tmp_path,
        mosquitto,
        site,
        lifecycle={"sweep_interval_s": 0.05, "reminder_before_h": 12},
        reservation={"hold_h": 24},
        commands={"default_ttl_s": 3, "max_ttl_s": 300},
        couriers={"code_iterations": 1000},
    )
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as h:
        yield h


def stubs(hub: HubHarness) -> tuple[Any, Any]:
    return (
        carriers_pb2_grpc.CarrierServiceStub(hub.channel),
        carriers_pb2_grpc.CourierServiceStub(hub.channel),
    )


async def setup(hub: HubHarness) -> None:
    c, k = stubs(hub)
    for carrier in ("CA", "CB"):
        await c.RegisterCarrier(
            carriers_pb2.RegisterCarrierRequest(carrier_id=carrier, name=carrier)
        )
    for courier, carrier in (("K1", "CA"), ("K2", "CB")):
        await k.RegisterCourier(
            carriers_pb2.RegisterCourierRequest(
                courier_id=courier, carrier_id=carrier, name=f"Courier {courier}", phone=PHONE
            )
        )


async def test_history_names_couriers_and_conduct_builds_up(
    hub: HubHarness, clock: ManualClock
) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await setup(hub)
        _, k = stubs(hub)
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[
                    announcement("P-1", hub.site, carrier_id="CA"),
                    announcement("P-2", hub.site, carrier_id="CA"),
                ]
            )
        )
        comp1, comp2 = (o.compartment_id for o in resp.outcomes)
        # A deposit into the wrong compartment is refused, and counts against the courier.
        await cab.event(
            deposited=device_pb2.Deposited(parcel_id="P-2", compartment_id=comp1, courier_id="K1")
        )
        await cab.event(
            deposited=device_pb2.Deposited(parcel_id="P-1", compartment_id=comp1, courier_id="K1")
        )
        await reach(hub, "P-1", S.PARCEL_STATE_DEPOSITED)
        parcel = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-1"))
        assert parcel.history[-1].courier_id == "K1"
        assert parcel.history[-1].actor == "device:CAB-1"
        # A forced door shortly after K1's deposit counts against K1.
        await cab.event(
            alarm=device_pb2.AlarmRaised(
                kind=common_pb2.ALARM_KIND_DOOR_FORCED,
                compartment_id=comp1,
                detail="opened uncommanded",
                active=True,
            )
        )

        async def forced_seen() -> bool:
            rows = await hub.sql("SELECT COUNT(*) FROM courier_conduct WHERE kind = 'forced_open'")
            return rows == [(1,)]

        await eventually(forced_seen)  # applied before the clock jumps past the window
        # Expiry: left past the deadline; then withdrawn by an active courier of the carrier.
        clock.advance(48 * HOUR_MS + 1)
        await reach(hub, "P-1", S.PARCEL_STATE_EXPIRED)
        for courier, why in (("", "courier_id"), ("K2", "not an active courier"), ("K9", "not")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await hub.dispatch.WithdrawParcel(
                    dispatch_pb2.WithdrawParcelRequest(parcel_id="P-1", courier_id=courier)
                )
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert why in (err.value.details() or "")
        parcel = await hub.dispatch.WithdrawParcel(
            dispatch_pb2.WithdrawParcelRequest(parcel_id="P-1", courier_id="K1")
        )
        assert parcel.history[-1].courier_id == "K1"
        await commands_until(cab, "open_compartment")
        # Every deposit and withdrawal in the history names its courier.
        for t in parcel.history:
            if t.state in (S.PARCEL_STATE_DEPOSITED, S.PARCEL_STATE_WITHDRAWN):
                assert t.courier_id == "K1", t
        record = await k.FileComplaint(
            carriers_pb2.FileComplaintRequest(courier_id="K1", parcel_id="P-1", detail="rude")
        )
        kinds = sorted(e.kind for e in record.entries)
        assert kinds == sorted(
            ["wrong_compartment", "forced_open", "left_past_deadline", "complaint"]
        ), kinds
        assert record.score == conduct.score(
            {"wrong_compartment": 1, "forced_open": 1, "left_past_deadline": 1, "complaint": 1}
        )
        assert record.score == 100 - 10 - 20 - 2 - 15
        assert (record.deposits, record.withdrawals) == (1, 1)
        assert record.courier.phone_masked == "139****5678"
        assert PHONE not in str(record)
        assert PHONE not in str(await hub.sql("SELECT * FROM couriers"))
        del comp2


async def test_late_deposit_is_recorded(hub: HubHarness, clock: ManualClock) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await setup(hub)
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement("P-1", hub.site, carrier_id="CA")]
            )
        )
        comp = resp.outcomes[0].compartment_id
        # The cabinet deposited (offline) just before the hold ran out; it reports late.
        await hub.sql("SELECT 1")
        async with hub.app.store.transaction() as tx:
            await tx.execute(
                "UPDATE parcels SET reservation_expires_ms = ? WHERE id = 'P-1'",
                (clock.now_ms() - 1000,),
            )
        await cab.event(
            deposited=device_pb2.Deposited(parcel_id="P-1", compartment_id=comp, courier_id="K1")
        )
        await reach(hub, "P-1", S.PARCEL_STATE_DEPOSITED)
        _, k = stubs(hub)
        record = await k.GetCourierRecord(carriers_pb2.GetCourierRequest(courier_id="K1"))
        assert [e.kind for e in record.entries] == ["late_deposit"]
        assert record.score == 95


async def test_bad_conduct_list_reaches_the_cabinet(hub: HubHarness) -> None:
    async with (
        hub.cabinet("CAB-1") as cab,
        DesiredWatch(hub.broker, hub.site, "CAB-1") as watch,
    ):
        await cab.birth()
        await online(hub, "CAB-1")
        await setup(hub)
        _, k = stubs(hub)
        await k.SetCourierCode(carriers_pb2.SetCourierCodeRequest(courier_id="K1", code="24681357"))

        def latest() -> device_pb2.DesiredState | None:
            return watch.states[-1] if watch.states else None

        async def has(check: Any) -> Any:
            state = latest()
            return state if state is not None and check(state) else None

        # The code comes in a later version than the registrations: wait for the one with it.
        state = await eventually(
            lambda: has(
                lambda s: (
                    len(s.couriers) == 2
                    and any(c.courier_id == "K1" and c.code_hash for c in s.couriers)
                )
            )
        )
        k1 = next(c for c in state.couriers if c.courier_id == "K1")
        assert k1.carrier_id == "CA"
        assert k1.code_iterations == 1000
        assert len(k1.code_hash) == 32
        assert len(k1.code_salt) == 16
        assert b"24681357" not in state.SerializeToString()
        assert len(state.courier_token_key) == 32
        record = await k.AddToBadConductList(
            carriers_pb2.BadConductRequest(courier_id="K1", reason="three complaints in a week")
        )
        assert record.bad_conduct_reason == "three complaints in a week"
        state = await eventually(
            lambda: has(lambda s: "K1" in s.barred_couriers and len(s.couriers) == 1)
        )
        listed = await k.ListBadConduct(carriers_pb2.ListBadConductRequest())
        assert [(e.courier_id, e.carrier_id, e.actor) for e in listed.entries] == [
            ("K1", "CA", "operator")
        ]
        # A barred courier gets no app token; suspension also takes a courier off the list.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await k.IssueCourierToken(carriers_pb2.IssueCourierTokenRequest(courier_id="K1"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        await k.SetCourierStatus(
            carriers_pb2.SetCourierStatusRequest(
                courier_id="K2", status=carriers_pb2.COURIER_STATUS_SUSPENDED, reason="leave"
            )
        )
        await eventually(lambda: has(lambda s: len(s.couriers) == 0))
        await k.RemoveFromBadConductList(
            carriers_pb2.BadConductRequest(courier_id="K1", reason="appeal upheld")
        )
        await eventually(lambda: has(lambda s: [c.courier_id for c in s.couriers] == ["K1"]))
        audit = await hub.sql("SELECT courier, action, reason FROM courier_audit ORDER BY id")
        assert audit == [
            ("K1", "code", ""),
            ("K1", "bad_conduct:add", "three complaints in a week"),
            ("K2", "status:suspended", "leave"),
            ("K1", "bad_conduct:remove", "appeal upheld"),
        ]
        del cab


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (dict(courier_id="", carrier_id="CA", name="x", phone=PHONE), "INVALID_ARGUMENT"),
        (dict(courier_id="K/1", carrier_id="CA", name="x", phone=PHONE), "INVALID_ARGUMENT"),
        (dict(courier_id="K5", carrier_id="CA", name="x", phone="12"), "INVALID_ARGUMENT"),
        (dict(courier_id="K5", carrier_id="CA", name="x", phone="9" * 5000), "INVALID_ARGUMENT"),
        (dict(courier_id="K5", carrier_id="CA", name="", phone=PHONE), "INVALID_ARGUMENT"),
        (dict(courier_id="K5", carrier_id="CA", name="n" * 500, phone=PHONE), "INVALID_ARGUMENT"),
        (dict(courier_id="K5", carrier_id="CA", name="a\x00b", phone=PHONE), "INVALID_ARGUMENT"),
        (dict(courier_id="K5", carrier_id="NOPE", name="x", phone=PHONE), "NOT_FOUND"),
        (dict(courier_id="K1", carrier_id="CA", name="x", phone=PHONE), "ALREADY_EXISTS"),
    ],
)
async def test_hostile_courier_registrations(
    hub: HubHarness, request_: dict[str, str], code: str
) -> None:
    await setup(hub)
    _, k = stubs(hub)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await k.RegisterCourier(carriers_pb2.RegisterCourierRequest(**request_))
    assert err.value.code().name == code
    assert await hub.sql("SELECT COUNT(*) FROM couriers") == [(2,)]


@pytest.mark.parametrize("code", ["", "12345", "1" * 13, "12345a", "١٢٣٤٥٦", "x" * 5000])
async def test_bad_courier_codes(hub: HubHarness, code: str) -> None:
    await setup(hub)
    _, k = stubs(hub)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await k.SetCourierCode(carriers_pb2.SetCourierCodeRequest(courier_id="K1", code=code))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await hub.sql("SELECT code_hash FROM couriers WHERE id = 'K1'") == [("",)]


async def test_token_key_file_is_private_and_checked(hub: HubHarness, tmp_path: Path) -> None:
    from hub.couriers.keys import load_or_create
    from hub.errors import ConfigError

    path = tmp_path / "courier-token.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create(path)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(ConfigError, match="not a PEM"):
        load_or_create(bad)
