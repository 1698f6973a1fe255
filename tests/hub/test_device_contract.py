"""The hub side of the device contract extension: retained desired state, sequence gaps,
outbox-full alarms, interrupted commands, enabling and disabling compartments."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from lockerhub.codec import encode
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, fleet_pb2
from tests.hub.cabinet import status
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.desired_watch import DesiredWatch
from tests.hub.test_flow import announcement, online
from tests.hub.test_lifecycle import commands_until


async def desired_where(
    watch: DesiredWatch, check: Callable[[device_pb2.DesiredState], bool]
) -> device_pb2.DesiredState:
    async def probe() -> device_pb2.DesiredState | None:
        latest = watch.latest
        return latest if latest is not None and check(latest) else None

    result: device_pb2.DesiredState = await eventually(probe, timeout=10)
    return result


async def test_desired_state_follows_reservations_codes_and_disabled(hub: HubHarness) -> None:
    async with (
        hub.cabinet("CAB-1") as cab,
        DesiredWatch(hub.broker, hub.site, "CAB-1") as watch,
    ):
        await cab.birth()
        await online(hub, "CAB-1")
        first = await desired_where(watch, lambda s: s.version >= 1)
        assert not first.reservations

        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement(f"P-{i}", hub.site) for i in range(2)]
            )
        )
        assert all(o.accepted for o in resp.outcomes)
        state = await desired_where(watch, lambda s: len(s.reservations) == 2)
        assert state.version > first.version
        assert {r.parcel_id for r in state.reservations} == {"P-0", "P-1"}
        assert all(r.expires_ms > 0 for r in state.reservations)

        await cab.event(
            deposited=device_pb2.Deposited(
                parcel_id="P-0", compartment_id=resp.outcomes[0].compartment_id, courier_id="c"
            )
        )
        state = await desired_where(watch, lambda s: len(s.pickup_codes) == 1)
        (code,) = state.pickup_codes
        assert code.parcel_id == "P-0"
        assert code.code_hash.startswith("pbkdf2_sha256$")
        assert code.deadline_ms > 0
        assert [r.parcel_id for r in state.reservations] == ["P-1"]

        compartment = await hub.fleet.SetCompartmentEnabled(
            fleet_pb2.SetCompartmentEnabledRequest(
                cabinet_id="CAB-1", compartment_id="A01", enabled=False, reason="door sticks"
            )
        )
        assert compartment.state == common_pb2.COMPARTMENT_STATE_DISABLED
        command = await commands_until(cab, "set_compartment_enabled")
        assert not command.set_compartment_enabled.enabled
        state = await desired_where(watch, lambda s: list(s.disabled_compartments) == ["A01"])
        versions = [s.version for s in watch.states]
        assert versions == sorted(versions)

        await hub.fleet.SetCompartmentEnabled(
            fleet_pb2.SetCompartmentEnabledRequest(
                cabinet_id="CAB-1", compartment_id="A01", enabled=True
            )
        )
        await desired_where(watch, lambda s: not s.disabled_compartments)


async def test_set_compartment_enabled_refusals(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-1", hub.site)])
        )
        held = resp.outcomes[0].compartment_id
        bad, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
        cab1 = {"cabinet_id": "CAB-1", "reason": "x"}
        cases: list[tuple[dict[str, Any], grpc.StatusCode, str]] = [
            ({**cab1, "compartment_id": held}, grpc.StatusCode.FAILED_PRECONDITION, "withdraw"),
            ({"cabinet_id": "CAB-1", "compartment_id": "A01"}, bad, "reason"),
            ({**cab1, "compartment_id": "ZZ"}, missing, "ZZ"),
            ({**cab1, "cabinet_id": "NOPE", "compartment_id": "A01"}, missing, "NOPE"),
            ({**cab1, "cabinet_id": "../x", "compartment_id": "A01"}, bad, "cabinet_id"),
            ({**cab1, "compartment_id": "A01", "reason": "r" * 1000}, bad, "reason"),
        ]
        for fields, code, text in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await hub.fleet.SetCompartmentEnabled(
                    fleet_pb2.SetCompartmentEnabledRequest(enabled=False, **fields)
                )
            assert err.value.code() == code, fields
            assert text in (err.value.details() or ""), fields
        assert await hub.sql("SELECT COUNT(*) FROM compartments WHERE state = 'disabled'") == [(0,)]


async def test_desired_version_survives_a_restart(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    settings = settings_for(tmp_path, mosquitto, site)
    async with running_hub(settings, tmp_path, mosquitto) as hub:  # noqa: SIM117 - hub first
        async with hub.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(hub, "CAB-1")
            await hub.dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-1", hub.site)])
            )

            async def published() -> int:
                rows = await hub.sql(
                    "SELECT published_version, version FROM desired_state WHERE device = 'CAB-1'"
                )
                return int(rows[0][0]) if rows and rows[0][0] == rows[0][1] > 1 else 0

            before = await eventually(published)
    async with running_hub(settings, tmp_path, mosquitto) as hub:  # noqa: SIM117 - hub first
        async with hub.cabinet("CAB-1") as cab, DesiredWatch(mosquitto, site, "CAB-1") as watch:
            await cab.birth()
            await online(hub, "CAB-1")
            # The retained state is still there, and the next change gets a higher version.
            await desired_where(watch, lambda s: s.version == before)
            await hub.dispatch.CancelParcel(dispatch_pb2.CancelParcelRequest(parcel_id="P-1"))
            state = await desired_where(watch, lambda s: not s.reservations)
            assert state.version > before


async def test_sequence_gap_asks_for_a_resend_once(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        door = device_pb2.DoorChanged(compartment_id="A01", open=False, commanded=True)
        await cab.event(door_changed=door)  # seq 1
        cab.seq = 4
        await cab.event(door_changed=door)  # seq 5: 2-4 missing
        resend = await commands_until(cab, "resend_events")
        assert (resend.resend_events.from_seq, resend.resend_events.to_seq) == (2, 4)
        cab.seq = 6
        await cab.event(door_changed=door)  # seq 7: only 6 is new
        resend = await commands_until(cab, "resend_events")
        assert (resend.resend_events.from_seq, resend.resend_events.to_seq) == (6, 6)
        # The device resends 2-4 (and a duplicate of 5): applied once each, no new request.
        for seq in (2, 3, 4, 5, 6):
            event = cab.make_event(door_changed=door)
            event.seq = seq
            await cab.send_event(event)

        async def all_applied() -> bool:
            rows = await hub.sql("SELECT COUNT(*) FROM device_events WHERE device = 'CAB-1'")
            return rows == [(7,)]

        await eventually(all_applied)
        # A new gap after them: its request is the very next command, so none came in between.
        cab.seq = 8
        await cab.event(door_changed=door)  # seq 9: 8 missing
        resend = await cab.next_command()
        assert (resend.resend_events.from_seq, resend.resend_events.to_seq) == (8, 8)
        assert cab.commands.empty()


async def test_outbox_full_alarm_and_interrupted_command(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        full = status(device_pb2.DeviceStatus.STATE_ONLINE, cab.boot_count)
        full.outbox_full = True
        await cab.publish(Kind.STATUS, encode(full), retain=True)

        async def alarms(kind: int) -> list[fleet_pb2.Alarm]:
            resp = await hub.fleet.ListAlarms(fleet_pb2.ListAlarmsRequest(site=hub.site))
            return [a for a in resp.alarms if a.kind == kind]

        (alarm,) = await eventually(lambda: alarms(common_pb2.ALARM_KIND_OUTBOX_FULL))
        assert alarm.device_id == "CAB-1"
        assert alarm.status == "raised"
        await cab.birth()  # outbox drained: the alarm clears by itself

        async def cleared() -> bool:
            return not await alarms(common_pb2.ALARM_KIND_OUTBOX_FULL)

        await eventually(cleared)

        async def open_a01() -> fleet_pb2.OpenCompartmentResponse:
            return await hub.fleet.OpenCompartment(
                fleet_pb2.OpenCompartmentRequest(
                    cabinet_id="CAB-1", compartment_id="A01", reason="check"
                )
            )

        task = asyncio.create_task(open_a01())
        command = await commands_until(cab, "open_compartment")
        await cab.result(
            command.command_id, common_pb2.COMMAND_OUTCOME_INTERRUPTED, detail="rebooted"
        )
        answer = await task
        assert answer.outcome == common_pb2.COMMAND_OUTCOME_INTERRUPTED
        rows = await hub.sql(
            "SELECT state, outcome FROM commands WHERE id = ?", (command.command_id,)
        )
        assert rows == [("failed", "interrupted")]
