"""Sorting-line mode: plan from the desired state, sorted events, every exception path."""

from __future__ import annotations

import time
from pathlib import Path

from edge.agent import EdgeAgent
from firmware_sim.sorting_line import SimulatedSortingLine
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running
from tests.edge.test_offline import until
from tests.support.broker import BrokerHandle

R = device_pb2.ParcelRejected
LINE = {
    "device": {"kind": "sorting_line"},
    "sorter": {
        "chutes": ["CH01", "CH02", "CH03", "EX"],
        "confirm_timeout_s": 0.3,
        "max_recirculations": 2,
        "stall_after": 2,
    },
    "telemetry": {"interval_s": 0.2},
}


def _plan(version: int, rules: dict[str, str]) -> device_pb2.DesiredState:
    return device_pb2.DesiredState(
        version=version,
        ts_ms=int(time.time() * 1000),
        sort_plan=[device_pb2.SortRule(destination=d, chute_id=c) for d, c in rules.items()],
        exception_chute="EX",
    )


async def test_sorting_line_sorts_and_rejects(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id, LINE)
    line = SimulatedSortingLine(settings.sorter.chutes, loop_s=0.05, confirm_delay_s=0.02)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, line)) as agent:
        await hub.publish_desired(_plan(1, {"D1": "CH01", "D2": "CH02", "D7": "NOPE"}))
        await until(lambda: agent.desired_version == 1)
        birth = hub.of_status()[0]
        assert birth.kind == device_pb2.DEVICE_KIND_SORTING_LINE

        await line.induct("P1", "D1")
        (sorted_,) = await hub.wait_event("parcel_sorted")
        assert (sorted_.parcel_sorted.parcel_id, sorted_.parcel_sorted.chute_id) == ("P1", "CH01")

        await line.induct("P2", "D1", no_read=True)
        await line.induct("P3", "D9")  # no rule
        await line.induct("P8", "D7")  # its rule named an unknown chute: dropped -> no rule
        await line.inject_fault("no_confirm", "CH02")
        await line.induct("P4", "D2")  # never confirmed
        await line.set_chute_full("CH01", True)
        await line.induct("P5", "D1")  # recirculates twice, then the exception chute
        rejected = await hub.wait_event("parcel_rejected", count=5)
        reasons = {e.parcel_rejected.parcel_id: e.parcel_rejected.reason for e in rejected}
        assert reasons == {
            "": R.REASON_NO_READ,
            "P3": R.REASON_NO_RULE,
            "P8": R.REASON_NO_RULE,
            "P4": R.REASON_NO_CONFIRMATION,
            "P5": R.REASON_CHUTE_FULL,
        }
        assert all(e.parcel_rejected.chute_id == "EX" for e in rejected)
        assert line.landed["EX"].count("P5") == 1
        full = [
            e.alarm for e in hub.events("alarm") if e.alarm.kind == common_pb2.ALARM_KIND_CHUTE_FULL
        ]
        assert full
        assert full[0].active

        def counters() -> device_pb2.SorterCounters | None:
            for t in reversed(hub.of(Kind.TELEMETRY)):
                if t.sorter.rejected >= 5:
                    return t.sorter  # type: ignore[no-any-return]
            return None

        c = await hub.wait(counters)
        assert (c.inducted, c.sorted, c.recirculated, c.no_reads) == (6, 1, 2, 1)
        sample = hub.of(Kind.TELEMETRY)[-1]
        assert {ch.chute_id: ch.full for ch in sample.chutes}["CH01"] is True
        assert sample.energy_wh > 0

        # Drops into CH02 are never confirmed: two in a row stall the line, a good drop clears it.
        await line.induct("P9", "D2")
        stalled = await hub.wait(
            lambda: [
                e.alarm
                for e in hub.events("alarm")
                if e.alarm.kind == common_pb2.ALARM_KIND_SORTER_STALLED
            ]
        )
        assert stalled[0].active

        # A newer plan moves D1 to CH03.
        await hub.publish_desired(_plan(2, {"D1": "CH03"}))
        await until(lambda: agent.desired_version == 2)
        await line.induct("P6", "D1")
        await hub.wait_event("parcel_sorted", count=2)
        assert hub.events("parcel_sorted")[1].parcel_sorted.chute_id == "CH03"
        cleared = [
            e.alarm
            for e in hub.events("alarm")
            if e.alarm.kind == common_pb2.ALARM_KIND_SORTER_STALLED
        ]
        assert [a.active for a in cleared] == [True, False]
        await hub.publish_desired(None)


async def test_plan_version_reported_and_held_parcels_go_to_the_hold_chute(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    """Issue 13: the line reports each plan version it applied and the version behind every
    decision; a parcel on the held list is diverted to the hold chute, never to its own."""
    settings = edge_settings(tmp_path, mosquitto, device_id, LINE)
    line = SimulatedSortingLine(settings.sorter.chutes, loop_s=0.05, confirm_delay_s=0.02)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, line)) as agent:
        plan = _plan(1, {"D1": "CH01"})
        plan.sort_plan_version, plan.hold_chute = 4, "CH03"
        plan.held_parcels.append("P-HELD")
        await hub.publish_desired(plan)
        (applied,) = await hub.wait_event("sort_plan_applied")
        assert applied.sort_plan_applied.plan_version == 4
        await line.induct("P-OK", "D1")
        await line.induct("P-HELD", "D1")
        (sorted_,) = await hub.wait_event("parcel_sorted")
        assert (sorted_.parcel_sorted.chute_id, sorted_.parcel_sorted.plan_version) == ("CH01", 4)
        (rejected,) = await hub.wait_event("parcel_rejected")
        r = rejected.parcel_rejected
        assert (r.parcel_id, r.reason, r.chute_id, r.plan_version) == (
            "P-HELD",
            R.REASON_HELD,
            "CH03",
            4,
        )
        assert line.landed["CH03"] == ["P-HELD"]
        # A new plan without the hold: reported once, and the parcel sorts to its chute.
        plan2 = _plan(2, {"D1": "CH02"})
        plan2.sort_plan_version = 5
        await hub.publish_desired(plan2)
        await until(lambda: agent.desired_version == 2)
        applied = await hub.wait_event("sort_plan_applied", count=2)
        assert [e.sort_plan_applied.plan_version for e in applied] == [4, 5]
        await line.induct("P-HELD", "D1")
        done = await hub.wait_event("parcel_sorted", count=2)
        assert (done[-1].parcel_sorted.chute_id, done[-1].parcel_sorted.plan_version) == ("CH02", 5)
        await hub.publish_desired(None)
