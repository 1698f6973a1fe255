"""Input that used to get through: huge counters, hostile alarm text, non-ASCII alarm ids and a
too-long note reported under the wrong field."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from hub.ingest.events import MAX_SEQ_JUMP
from lockerhub.codec import MAX_COUNTER, encode
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2, fleet_pb2
from ops.render import ALARM_HEADERS, alarm_rows, table
from tests.hub.cabinet import status
from tests.hub.conftest import HubHarness, eventually
from tests.hub.test_flow import online
from tests.hub.test_lifecycle import commands_until

DOOR = device_pb2.DoorChanged(compartment_id="A01", open=False, commanded=True)
HOSTILE = "jammed\x1b[2J\x1b]0;owned\x07\nALARM 1 CLEARED by admin\r\u202e"


async def test_huge_seq_is_dropped_as_invalid_and_gap_detection_survives(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await cab.event(door_changed=DOOR)  # seq 1
        for seq in (2**63 - 1, 2**64 - 1, MAX_COUNTER, 2 + MAX_SEQ_JUMP + 1):
            before, errors = hub.dropped("invalid"), hub.dropped("error")
            event = cab.make_event(door_changed=DOOR)
            event.seq = seq
            await cab.send_event(event)
            await eventually(lambda b=before: asyncio.sleep(0, hub.dropped("invalid") >= b + 1))
            assert hub.dropped("error") == errors  # a drop, not a bug traceback
        rows = await hub.sql("SELECT last_seq FROM devices WHERE id = 'CAB-1'")
        assert rows == [(1,)]
        # Gap detection still works for this device.
        cab.seq = 3
        await cab.event(door_changed=DOOR)  # seq 4: 2-3 missing
        resend = await commands_until(cab, "resend_events")
        assert (resend.resend_events.from_seq, resend.resend_events.to_seq) == (2, 3)


async def test_huge_boot_count_is_dropped_as_invalid(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        before, errors = hub.dropped("invalid"), hub.dropped("error")
        huge = status(device_pb2.DeviceStatus.STATE_OFFLINE, 2**63)
        await cab.publish(Kind.STATUS, encode(huge), retain=True)
        await eventually(lambda: asyncio.sleep(0, hub.dropped("invalid") >= before + 1))
        assert hub.dropped("error") == errors
        rows = await hub.sql("SELECT online, boot_count FROM devices WHERE id = 'CAB-1'")
        assert rows == [(1, 1)]


async def test_infinite_telemetry_is_dropped(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        before = hub.dropped("invalid")
        sample = device_pb2.Telemetry(ts_ms=status(1, 1).ts_ms, energy_wh=float("inf"))
        await cab.publish(Kind.TELEMETRY, encode(sample))
        await eventually(lambda: asyncio.sleep(0, hub.dropped("invalid") >= before + 1))


async def test_alarm_detail_reaches_operators_without_terminal_control(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await cab.event(
            alarm=device_pb2.AlarmRaised(
                kind=common_pb2.ALARM_KIND_DOOR_JAMMED,
                compartment_id="C01",
                detail=HOSTILE,
                active=True,
            )
        )

        async def stored() -> list[fleet_pb2.Alarm]:
            resp = await hub.fleet.ListAlarms(fleet_pb2.ListAlarmsRequest(site=hub.site))
            return [a for a in resp.alarms if a.kind == common_pb2.ALARM_KIND_DOOR_JAMMED]

        (alarm,) = await eventually(stored)
        assert alarm.detail.startswith("jammed")
        assert not any(c in alarm.detail for c in "\x1b\x07\n\r\u202e")

    # And at display: whatever an older hub stored is shown escaped, on one line.
    raw = fleet_pb2.Alarm(alarm_id="7", site="s", device_id="CAB-1", detail=HOSTILE)
    shown = table(ALARM_HEADERS, alarm_rows([raw]))
    assert len(shown.splitlines()) == 3
    assert "\x1b" not in shown
    assert "\u202e" not in shown
    assert "\\x1b[2J" in shown


@pytest.mark.parametrize("alarm_id", ["\u0661\u0662", "\u00b2", "\uff11", "1" * 19])
async def test_alarm_id_takes_ascii_digits_only(hub: HubHarness, alarm_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.fleet.AcknowledgeAlarm(fleet_pb2.AlarmActionRequest(alarm_id=alarm_id))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("alarm_id:")


@pytest.mark.parametrize("rpc", ["AcknowledgeAlarm", "ClearAlarm"])
async def test_too_long_note_is_reported_as_note(hub: HubHarness, rpc: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(hub.fleet, rpc)(fleet_pb2.AlarmActionRequest(alarm_id="1", note="n" * 201))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("note:")


@pytest.mark.parametrize(
    "text",
    ["line\nforged: cleared by admin", "\x1b[2Jwiped", "ok\u202etxt.exe", "a\u200db", "\x00"],
)
async def test_audit_texts_refuse_control_and_invisible_characters(
    hub: HubHarness, text: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.fleet.AcknowledgeAlarm(fleet_pb2.AlarmActionRequest(alarm_id="1", note=text))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("note:")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.fleet.OpenCompartment(
            fleet_pb2.OpenCompartmentRequest(cabinet_id="CAB-1", compartment_id="A01", reason=text)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("reason:")


def test_audit_texts_take_any_script_and_full_width_spaces() -> None:
    from hub.api.validate import plain_text, reason

    assert plain_text("收件人要求\u3000重新开门 (Tür klemmt)")
    assert reason("  门被卡住  ", required=True) == "门被卡住"
