"""The whole parcel lifecycle with a controllable clock: reminder, expiry, withdrawal, return,
reservation holds, cancellation; illegal steps refused with clear status codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from lockerhub.clock import ManualClock
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for, tick
from tests.hub.test_flow import announcement, online, parcel_state

LINE = device_pb2.DEVICE_KIND_SORTING_LINE

HOUR_MS = 3_600_000
S = common_pb2


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hub(
    tmp_path: Path, mosquitto: Any, site: str, clock: ManualClock, store_target: Path | str
) -> AsyncIterator[HubHarness]:
    settings = settings_for(
        tmp_path,
        mosquitto,
        site,
        storage={"url": store_target} if isinstance(store_target, str) else {},
        lifecycle={"sweep_interval_s": 0.05, "reminder_before_h": 12},
        reservation={"hold_h": 24},
        # Long enough that advancing the manual clock does not expire the commands under test.
        commands={"default_ttl_s": 3, "max_ttl_s": 300},
    )
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as h:
        yield h


async def commands_until(cab: Any, body: str) -> device_pb2.Command:
    """The next command of kind ``body`` (earlier ones, already checked elsewhere, skipped)."""
    while True:
        command = await cab.next_command(timeout=10)
        if command.WhichOneof("body") == body:
            return command  # type: ignore[no-any-return]


async def reach(hub: HubHarness, parcel_id: str, state: int) -> None:
    async def check() -> bool:
        return await parcel_state(hub, parcel_id) == state

    await eventually(check, timeout=10)


async def deposit(hub: HubHarness, cab: Any, parcel_id: str) -> str:
    resp = await hub.dispatch.AnnounceParcels(
        dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement(parcel_id, hub.site)])
    )
    compartment = resp.outcomes[0].compartment_id
    await cab.event(
        deposited=device_pb2.Deposited(
            parcel_id=parcel_id, compartment_id=compartment, courier_id="c1"
        )
    )
    await reach(hub, parcel_id, S.PARCEL_STATE_DEPOSITED)
    return str(compartment)


async def test_reminder_expiry_withdraw_return(hub: HubHarness, clock: ManualClock) -> None:
    async with hub.cabinet("CAB-1") as cab, hub.cabinet("SORT-1", kind=LINE) as line:
        await cab.birth()
        await line.birth(layout=())
        await online(hub, "CAB-1")
        await online(hub, "SORT-1")
        compartment = await deposit(hub, cab, "P-1")
        parcel = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-1"))
        assert parcel.pickup_deadline_ms == clock.now_ms() + 48 * HOUR_MS

        # 36 h + 1 ms later the deadline is < 12 h away: one reminder, no code in it.
        clock.advance(36 * HOUR_MS + 1)

        async def reminders() -> list[dict[str, Any]]:
            return [n for n in hub.notifications() if n.get("kind") == "reminder"]

        (reminder,) = await eventually(reminders)
        assert reminder["parcel_id"] == "P-1"
        assert reminder["code"] == ""
        assert reminder["phone_masked"] == "138****1234"
        assert await parcel_state(hub, "P-1") == S.PARCEL_STATE_DEPOSITED

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hub.dispatch.WithdrawParcel(dispatch_pb2.WithdrawParcelRequest(parcel_id="P-1"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "cannot go from deposited to withdrawn" in (err.value.details() or "")

        clock.advance(12 * HOUR_MS)
        await reach(hub, "P-1", S.PARCEL_STATE_EXPIRED)
        assert await hub.sql("SELECT COUNT(*) FROM pickup_codes") == [(0,)]
        transitions = await hub.sql("SELECT COUNT(*) FROM parcel_transitions")
        for _ in range(3):  # further sweeps (each one ran: the loop slept again) change nothing
            await tick(clock, 50)
        assert len(await reminders()) == 1
        assert await hub.sql("SELECT COUNT(*) FROM parcel_transitions") == transitions

        parcel = await hub.dispatch.WithdrawParcel(
            dispatch_pb2.WithdrawParcelRequest(parcel_id="P-1", courier_id="c9")
        )
        assert parcel.state == S.PARCEL_STATE_WITHDRAWN
        assert parcel.history[-1].actor == "courier:c9"
        opened = await commands_until(cab, "open_compartment")
        assert opened.open_compartment.compartment_id == compartment
        assert "withdraw" in opened.open_compartment.reason
        rows = await hub.sql(
            "SELECT state, parcel_id FROM compartments WHERE device = 'CAB-1' AND id = ?",
            (compartment,),
        )
        assert rows == [("free", None)]

        # Back at the sorting hub, the line sorts it towards the sender: RETURNED.
        await line.event(
            parcel_sorted=device_pb2.ParcelSorted(parcel_id="P-1", destination="X", chute_id="R1")
        )
        await reach(hub, "P-1", S.PARCEL_STATE_RETURNED)
        parcel = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-1"))
        assert [t.state for t in parcel.history] == [
            S.PARCEL_STATE_ANNOUNCED,
            S.PARCEL_STATE_RESERVED,
            S.PARCEL_STATE_DEPOSITED,
            S.PARCEL_STATE_EXPIRED,
            S.PARCEL_STATE_WITHDRAWN,
            S.PARCEL_STATE_RETURNED,
        ]
        assert parcel.history[3].actor == "hub"


async def test_sorted_and_rejected_on_a_sorting_line(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab, hub.cabinet("SORT-1", kind=LINE) as line:
        await cab.birth()
        await line.birth(layout=())
        await online(hub, "CAB-1")
        await online(hub, "SORT-1")
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-S", hub.site)])
        )
        await line.event(
            parcel_sorted=device_pb2.ParcelSorted(
                parcel_id="P-S", destination=hub.site, chute_id="C1"
            )
        )
        await reach(hub, "P-S", S.PARCEL_STATE_SORTED)
        await line.event(
            parcel_rejected=device_pb2.ParcelRejected(
                reason=device_pb2.ParcelRejected.REASON_NO_READ, chute_id="EX"
            )
        )

        def rejected() -> float:
            return hub.app.metrics.events_applied.labels("parcel_rejected")._value.get()  # type: ignore[no-any-return]

        await eventually(lambda: asyncio.sleep(0, rejected() == 1))
        # A sorted parcel still holds its compartment: the courier deposits it.
        (cmp,) = await hub.sql("SELECT compartment FROM parcels WHERE id = 'P-S'")
        await cab.event(
            deposited=device_pb2.Deposited(parcel_id="P-S", compartment_id=cmp[0], courier_id="c")
        )
        await reach(hub, "P-S", S.PARCEL_STATE_DEPOSITED)
        # Sorting a parcel that is already in a locker is refused (counted, dropped).
        before = hub.dropped("mismatch")
        await line.event(
            parcel_sorted=device_pb2.ParcelSorted(parcel_id="P-S", destination="X", chute_id="C")
        )
        await eventually(lambda: asyncio.sleep(0, hub.dropped("mismatch") == before + 1))


async def test_reservation_hold_expires_then_parcel_is_announced_again(
    hub: HubHarness, clock: ManualClock
) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-H", hub.site)])
        )
        compartment = resp.outcomes[0].compartment_id
        clock.advance(24 * HOUR_MS + 1)
        await reach(hub, "P-H", S.PARCEL_STATE_ANNOUNCED)
        cancel = await commands_until(cab, "cancel_reservation")
        assert cancel.cancel_reservation.parcel_id == "P-H"
        parcel = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-H"))
        assert parcel.cabinet_id == ""
        assert parcel.history[-1].actor == "hub"
        rows = await hub.sql(
            "SELECT state FROM compartments WHERE device = 'CAB-1' AND id = ?", (compartment,)
        )
        assert rows == [("free",)]

        # Announcing it again allocates a new reservation (not refused as a duplicate), in the
        # same batch as a new parcel: the known one's rows are written first.
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement("P-N", hub.site), announcement("P-H", hub.site)]
            )
        )
        assert [o.accepted for o in resp.outcomes] == [True, True]
        again = resp.outcomes[1]
        assert await parcel_state(hub, "P-H") == S.PARCEL_STATE_RESERVED
        parcel = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-H"))
        assert (parcel.cabinet_id, parcel.compartment_id) == ("CAB-1", again.compartment_id)
        location = f"{hub.site}/CAB-1/{again.compartment_id}"
        assert [(h.state, h.actor, h.location) for h in parcel.history[-2:]] == [
            (S.PARCEL_STATE_ANNOUNCED, "hub", f"{hub.site}/CAB-1/{compartment}"),
            (S.PARCEL_STATE_RESERVED, "hub", location),
        ]
        rows = await hub.sql(
            "SELECT state, parcel_id FROM compartments WHERE device = 'CAB-1' AND id = ?",
            (again.compartment_id,),
        )
        assert rows == [("reserved", "P-H")]
        journal = await hub.sql(
            "SELECT ref, state, location FROM live_events WHERE kind = 'parcel' ORDER BY id"
        )
        assert journal[-3:] == [
            ("P-H", "reserved", location),
            ("P-N", "announced", hub.site),
            ("P-N", "reserved", f"{hub.site}/CAB-1/{resp.outcomes[0].compartment_id}"),
        ]
        expires = await hub.sql("SELECT reservation_expires_ms FROM parcels WHERE id = 'P-H'")
        assert expires == [(clock.now_ms() + 24 * HOUR_MS,)]
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-H", hub.site)])
        )
        assert resp.outcomes[0].reason == "duplicate id"


async def test_cancel_before_deposit_only(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement("P-C", hub.site), announcement("P-D", hub.site)]
            )
        )
        compartment = resp.outcomes[0].compartment_id
        parcel = await hub.dispatch.CancelParcel(
            dispatch_pb2.CancelParcelRequest(parcel_id="P-C", reason="sender withdrew")
        )
        assert parcel.state == S.PARCEL_STATE_CANCELLED
        assert parcel.history[-1].actor == "operator"
        cancel = await commands_until(cab, "cancel_reservation")
        assert cancel.cancel_reservation.compartment_id == compartment
        rows = await hub.sql(
            "SELECT state FROM compartments WHERE device = 'CAB-1' AND id = ?", (compartment,)
        )
        assert rows == [("free",)]

        for parcel_id, code in (
            ("P-C", grpc.StatusCode.FAILED_PRECONDITION),  # already cancelled
            ("NOPE", grpc.StatusCode.NOT_FOUND),
            ("bad/id", grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await hub.dispatch.CancelParcel(
                    dispatch_pb2.CancelParcelRequest(parcel_id=parcel_id)
                )
            assert err.value.code() == code

        await cab.event(
            deposited=device_pb2.Deposited(
                parcel_id="P-D", compartment_id=resp.outcomes[1].compartment_id, courier_id="c"
            )
        )
        await reach(hub, "P-D", S.PARCEL_STATE_DEPOSITED)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hub.dispatch.CancelParcel(dispatch_pb2.CancelParcelRequest(parcel_id="P-D"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hub.dispatch.CancelParcel(
                dispatch_pb2.CancelParcelRequest(parcel_id="P-D", reason="x" * 500)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
