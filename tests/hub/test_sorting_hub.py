"""Issue 13 at the hub: sort plans in a line's desired state, sort exceptions, screening holds
refused at every later step until released, and hostile reports (real broker, real gRPC)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from hub.metrics.catalogue import HubMetrics
from hub.metrics.store_collector import StoreMetrics
from hub.settings import SiteSettings
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, sorting_pb2, sorting_pb2_grpc
from tests.hub.cabinet import FakeCabinet, inventory_entry
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.desired_watch import DesiredWatch
from tests.hub.test_flow import announcement, online, parcel_state

LINE_KIND = device_pb2.DEVICE_KIND_SORTING_LINE
STATION_KIND = device_pb2.DEVICE_KIND_SCREENING_STATION
# Twelve ambient M compartments: room for every parcel of a test.
BIG = tuple(
    (f"B{i:02d}", common_pb2.SIZE_CLASS_M, (190, 380, 640), common_pb2.TEMPERATURE_ZONE_AMBIENT)
    for i in range(12)
)
HOLD, CLEAR = sorting_pb2.ParcelScreened.RESULT_HOLD, sorting_pb2.ParcelScreened.RESULT_CLEAR


@dataclasses.dataclass
class Hub:
    h: HubHarness
    line: FakeCabinet
    station: FakeCabinet
    cab: FakeCabinet
    other: str  # a site this hub does not sort for

    @property
    def sorting(self) -> sorting_pb2_grpc.SortingServiceStub:
        return sorting_pb2_grpc.SortingServiceStub(self.h.channel)

    def counter(self, metric: Any, *labels: str) -> float:
        return float(metric.labels(*labels)._value.get())


@pytest.fixture
async def sortinghub(tmp_path: Path, mosquitto: Any) -> AsyncIterator[Hub]:
    tag = uuid.uuid4().hex[:6]
    here, other = f"H{tag}", f"X{tag}"
    settings = dataclasses.replace(
        settings_for(tmp_path, mosquitto, here),
        sites=(SiteSettings(id=here, lat=31.2, lon=121.4), SiteSettings(id=other)),
        devices=(
            inventory_entry(f"CA{tag}", here, layout=BIG),
            inventory_entry(f"CX{tag}", other, layout=BIG),
            inventory_entry(f"L{tag}", here, LINE_KIND),
            inventory_entry(f"S{tag}", here, STATION_KIND),
        ),
    )
    async with running_hub(settings, tmp_path, mosquitto) as h:
        line = FakeCabinet(mosquitto, here, f"L{tag}", kind=LINE_KIND)
        station = FakeCabinet(mosquitto, here, f"S{tag}", kind=STATION_KIND)
        cab = FakeCabinet(mosquitto, here, f"CA{tag}")
        cabx = FakeCabinet(mosquitto, other, f"CX{tag}")
        async with line, station, cab, cabx:
            for device in (line, station):
                await device.birth(())
            await cab.birth(BIG)
            await cabx.birth(BIG)
            for device in (line, station, cab, cabx):
                await online(h, device.device)
            yield Hub(h, line, station, cab, other)


async def _plan(hub: Hub, **rules: str) -> sorting_pb2.SortPlan:
    return await hub.sorting.SetSortPlan(
        sorting_pb2.SetSortPlanRequest(
            line_id=hub.line.device,
            rules=[sorting_pb2.SortPlanRule(destination=d, chute_id=c) for d, c in rules.items()],
            exception_chute="EX",
            hold_chute="HOLD",
        )
    )


async def _announce(hub: Hub, *ids: str, site: str = "") -> list[dispatch_pb2.AnnounceOutcome]:
    resp = await hub.h.dispatch.AnnounceParcels(
        dispatch_pb2.AnnounceParcelsRequest(
            parcels=[announcement(p, site or hub.h.site) for p in ids]
        )
    )
    assert all(o.accepted for o in resp.outcomes), resp
    return list(resp.outcomes)


async def _applied(hub: Hub, before: float) -> None:
    """Wait until one more event (any body) was applied or dropped."""
    m = hub.h.app.metrics

    def total() -> float:
        applied = sum(
            s.value for s in m.events_applied.collect()[0].samples if s.name.endswith("_total")
        )
        dropped = sum(
            s.value for s in m.ingest_dropped.collect()[0].samples if s.name.endswith("_total")
        )
        return applied + dropped

    await eventually(lambda: asyncio.sleep(0, total() > before))


def _outcomes(hub: Hub) -> float:
    m = hub.h.app.metrics
    applied = sum(
        s.value for s in m.events_applied.collect()[0].samples if s.name.endswith("_total")
    )
    dropped = sum(
        s.value for s in m.ingest_dropped.collect()[0].samples if s.name.endswith("_total")
    )
    return applied + dropped


async def _send(hub: Hub, device: FakeCabinet, **body: Any) -> None:
    before = _outcomes(hub)
    await device.event(**body)
    await _applied(hub, before)


def _sorted(parcel_id: str, chute: str, version: int, destination: str) -> dict[str, Any]:
    return {
        "parcel_sorted": device_pb2.ParcelSorted(
            parcel_id=parcel_id, destination=destination, chute_id=chute, plan_version=version
        )
    }


async def test_plan_reaches_the_line_versioned_and_reports_are_checked(sortinghub: Hub) -> None:
    hub, site = sortinghub, sortinghub.h.site
    async with DesiredWatch(hub.h.broker, site, hub.line.device) as watch:
        v1 = await _plan(hub, **{site: "CH01"})
        assert (v1.version, v1.applied_version) == (1, 0)
        await eventually(
            lambda: asyncio.sleep(0, watch.latest and watch.latest.sort_plan_version == 1)
        )
        state = watch.latest
        assert state is not None
        assert [(r.destination, r.chute_id) for r in state.sort_plan] == [(site, "CH01")]
        assert (state.exception_chute, state.hold_chute) == ("EX", "HOLD")
        v2 = await _plan(hub, **{site: "CH02"})
        assert v2.version == 2
        await eventually(
            lambda: asyncio.sleep(0, watch.latest and watch.latest.sort_plan_version == 2)
        )

    # The line reports what it applied; a version never sent to it is refused.
    await _send(hub, hub.line, sort_plan_applied=sorting_pb2.SortPlanApplied(plan_version=2))
    got = await hub.sorting.GetSortPlan(sorting_pb2.GetSortPlanRequest(line_id=hub.line.device))
    assert (got.version, got.applied_version) == (2, 2)
    refused = hub.h.dropped("unknown_plan_version")
    await _send(hub, hub.line, sort_plan_applied=sorting_pb2.SortPlanApplied(plan_version=7))
    assert hub.h.dropped("unknown_plan_version") == refused + 1
    got = await hub.sorting.GetSortPlan(sorting_pb2.GetSortPlanRequest(line_id=hub.line.device))
    assert got.applied_version == 2

    # Sort decisions: right, against the old plan, to a wrong chute, with a version never sent.
    await _announce(hub, "P-OK", "P-OLD", "P-WRONG", "P-FORGED")
    sorting = hub.h.app.metrics.sorting
    await _send(hub, hub.line, **_sorted("P-OK", "CH02", 2, site))
    await _send(hub, hub.line, **_sorted("P-OLD", "CH02", 1, site))
    await _send(hub, hub.line, **_sorted("P-WRONG", "CH07", 2, site))
    await _send(hub, hub.line, **_sorted("P-FORGED", "CH02", 9, site))
    assert hub.counter(sorting.sort_exceptions, site, "stale_plan") == 1
    assert hub.counter(sorting.sort_exceptions, site, "wrong_chute") == 1
    assert hub.counter(sorting.sort_exceptions, site, "no_chute") == 0
    rows = await hub.h.sql(
        "SELECT parcel_id, reason, expected_chute FROM sort_exceptions ORDER BY id"
    )
    assert rows == [("P-OLD", "stale_plan", "CH02"), ("P-WRONG", "wrong_chute", "CH02")]
    for pid in ("P-OK", "P-OLD", "P-WRONG"):
        assert await parcel_state(hub.h, pid) == common_pb2.PARCEL_STATE_SORTED
    assert await parcel_state(hub.h, "P-FORGED") == common_pb2.PARCEL_STATE_RESERVED
    alarms = await hub.h.sql(
        "SELECT device FROM alarms WHERE kind = 'sort_exception' AND status = 'raised'"
    )
    assert alarms == [(hub.line.device,)]

    # Operator input is checked.
    for rules in ({"D": "CH1", "E": "EX"},):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _plan(hub, **rules)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.sorting.SetSortPlan(sorting_pb2.SetSortPlanRequest(line_id=hub.cab.device))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.sorting.SetSortPlan(
            sorting_pb2.SetSortPlanRequest(
                line_id=hub.line.device,
                rules=[sorting_pb2.SortPlanRule(destination="D", chute_id="C/#")],
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _holds(hub: Hub) -> tuple[float | None, float | None]:
    """The hub's holds gauges after a refresh tick (held now, overdue), checking that a zero
    overdue threshold makes every hold in force overdue."""
    await hub.h.app._refresh()  # the refresh tick, run now
    site, registry = hub.h.site, hub.h.app.metrics.registry
    held, overdue = (
        registry.get_sample_value(name, {"site": site})
        for name in ("lockerhub_screening_holds", "lockerhub_screening_holds_overdue")
    )
    at_once = HubMetrics(CollectorRegistry())
    async with hub.h.app.store.read() as tx:
        await StoreMetrics(at_once, hold_overdue_hours=0).refresh(tx)
    assert at_once.sorting.holds.snapshot.overdue.get(site, 0) == held
    return held, overdue


async def test_a_held_parcel_is_refused_everywhere_until_released(sortinghub: Hub) -> None:
    hub, site = sortinghub, sortinghub.h.site
    sorting = hub.h.app.metrics.sorting
    await _plan(hub, **{site: "CH01"})
    (held, _cleared) = await _announce(hub, "P-HELD", "P-CLEAR")
    feed = hub.h.dispatch.WatchEvents(dispatch_pb2.WatchEventsRequest(site=site))
    async with (
        DesiredWatch(hub.h.broker, site, hub.line.device) as line_watch,
        DesiredWatch(hub.h.broker, site, hub.cab.device) as cab_watch,
    ):
        await _send(
            hub,
            hub.station,
            parcel_screened=sorting_pb2.ParcelScreened(
                parcel_id="P-HELD", result=HOLD, reason="dense object"
            ),
        )
        await _send(
            hub,
            hub.station,
            parcel_screened=sorting_pb2.ParcelScreened(parcel_id="P-CLEAR", result=CLEAR),
        )
        assert hub.counter(sorting.screened, site, "hold") == 1
        assert hub.counter(sorting.screened, site, "clear") == 1
        assert hub.counter(sorting.held, site) == 1
        assert await _holds(hub) == (1.0, 0.0)  # held now, not overdue (2 h)
        # The line gets the held list; the cabinet loses the held parcel's reservation.
        await eventually(
            lambda: asyncio.sleep(
                0,
                line_watch.latest is not None
                and list(line_watch.latest.held_parcels) == ["P-HELD"],
            )
        )
        await eventually(
            lambda: asyncio.sleep(
                0,
                cab_watch.latest is not None
                and [r.parcel_id for r in cab_watch.latest.reservations] == ["P-CLEAR"],
            )
        )
    # The hold is an alarm and a screening entry in WatchEvents.
    seen: list[dispatch_pb2.LiveEvent] = []
    async with asyncio.timeout(10):
        async for ev in feed:
            seen.append(ev)
            if {"screening", "alarm"} <= {e.WhichOneof("body") for e in seen}:
                break
    feed.cancel()
    screening_ev = next(e.screening for e in seen if e.HasField("screening"))
    assert (screening_ev.parcel_id, screening_ev.status) == ("P-HELD", "held")
    assert any(
        e.alarm.kind == common_pb2.ALARM_KIND_PARCEL_HELD for e in seen if e.HasField("alarm")
    )

    # Sort, deposit, container fill and routing are all refused for the held parcel.
    refused = hub.h.dropped("held")
    await _send(hub, hub.line, **_sorted("P-HELD", "CH01", 1, site))
    assert hub.h.dropped("held") == refused + 1
    await _send(
        hub,
        hub.cab,
        deposited=device_pb2.Deposited(parcel_id="P-HELD", compartment_id=held.compartment_id),
    )
    assert hub.h.dropped("held") == refused + 2
    assert await parcel_state(hub.h, "P-HELD") == common_pb2.PARCEL_STATE_RESERVED
    # A clear result from a station does not lift a hold; only an operator does.
    await _send(
        hub,
        hub.station,
        parcel_screened=sorting_pb2.ParcelScreened(parcel_id="P-HELD", result=CLEAR),
    )
    assert hub.counter(sorting.screening_refused, "mismatch") == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.sorting.ReleaseParcel(sorting_pb2.ReleaseParcelRequest(parcel_id="P-HELD"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # a reason is required
    await _send(hub, hub.line, **_sorted("P-CLEAR", "CH01", 1, site))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.h.dispatch.PlanRoutes(
            dispatch_pb2.PlanRoutesRequest(
                hub_site=site,
                vehicles=[dispatch_pb2.Vehicle(vehicle_id="V1", capacity_parcels=10)],
                parcel_ids=["P-HELD"],
                time_limit_s=1,
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "held" in (err.value.details() or "")

    released = await hub.sorting.ReleaseParcel(
        sorting_pb2.ReleaseParcelRequest(parcel_id="P-HELD", reason="inspected: umbrella")
    )
    assert (released.status, released.release_reason) == ("released", "inspected: umbrella")
    assert released.released_by == "operator"
    assert hub.counter(sorting.released, site) == 1
    assert await _holds(hub) == (0.0, 0.0)
    open_alarms = await hub.h.sql(
        "SELECT COUNT(*) FROM alarms WHERE kind = 'parcel_held' AND status = 'raised'"
    )
    assert open_alarms == [(0,)]
    await _send(hub, hub.line, **_sorted("P-HELD", "CH01", 1, site))
    assert await parcel_state(hub.h, "P-HELD") == common_pb2.PARCEL_STATE_SORTED
    with pytest.raises(grpc.aio.AioRpcError) as err:  # released twice: not held any more
        await hub.sorting.ReleaseParcel(
            sorting_pb2.ReleaseParcelRequest(parcel_id="P-HELD", reason="again")
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_hostile_screening_results(sortinghub: Hub) -> None:
    hub = sortinghub
    sorting = hub.h.app.metrics.sorting
    await _announce(hub, "P-HERE")
    await _announce(hub, "P-AWAY", site=hub.other)
    # Not a screening station: the authorization table refuses it.
    unauthorized = hub.h.dropped("unauthorized")
    for device in (hub.cab, hub.line):
        await _send(
            hub,
            device,
            parcel_screened=sorting_pb2.ParcelScreened(parcel_id="P-HERE", result=HOLD, reason="x"),
        )
    assert hub.h.dropped("unauthorized") == unauthorized + 2
    # Unknown parcel, and a parcel of a site this hub does not sort for.
    await _send(
        hub,
        hub.station,
        parcel_screened=sorting_pb2.ParcelScreened(parcel_id="P-NONE", result=HOLD, reason="x"),
    )
    await _send(
        hub,
        hub.station,
        parcel_screened=sorting_pb2.ParcelScreened(parcel_id="P-AWAY", result=HOLD, reason="x"),
    )
    assert hub.counter(sorting.screening_refused, "unknown_parcel") == 1
    assert hub.counter(sorting.screening_refused, "unauthorized") == 1
    assert await hub.h.sql("SELECT COUNT(*) FROM screenings") == [(0,)]
    # Malformed: a hold without a reason, an unknown result, an oversized reason.
    invalid = hub.h.dropped("invalid")
    for screened in (
        sorting_pb2.ParcelScreened(parcel_id="P-HERE", result=HOLD),
        sorting_pb2.ParcelScreened(parcel_id="P-HERE", result=7),  # type: ignore[arg-type]
        sorting_pb2.ParcelScreened(parcel_id="P-HERE", result=HOLD, reason="r" * 5000),
        sorting_pb2.ParcelScreened(parcel_id="P/+#", result=CLEAR),
    ):
        await _send(hub, hub.station, parcel_screened=screened)
    assert hub.h.dropped("invalid") == invalid + 4
    assert hub.counter(sorting.screened, hub.h.site, "hold") == 0


def _move(container: str, action: int, **kw: Any) -> sorting_pb2.ContainerMoved:
    return sorting_pb2.ContainerMoved(
        container_id=container, type=sorting_pb2.CONTAINER_TYPE_BAG, action=action, **kw
    )


A = sorting_pb2


async def test_container_cycle_and_two_places_at_once(sortinghub: Hub) -> None:
    hub, site = sortinghub, sortinghub.h.site
    sorting = hub.h.app.metrics.sorting
    await _plan(hub, **{site: "CH01"})
    await _announce(hub, "P-1", "P-2", "P-3")
    for pid in ("P-1", "P-2"):
        await _send(hub, hub.line, **_sorted(pid, "CH01", 1, site))

    async def record(move: sorting_pb2.ContainerMoved) -> sorting_pb2.Container:
        return await hub.sorting.RecordContainer(sorting_pb2.RecordContainerRequest(move=move))

    # The line fills a bag at its chute (a device event), the driver app does the rest.
    await _send(
        hub,
        hub.line,
        container_moved=_move(
            "BAG-1", A.CONTAINER_ACTION_FILLED, chute_id="CH01", parcel_ids=["P-1", "P-2"]
        ),
    )
    bag = await hub.sorting.GetContainer(sorting_pb2.GetContainerRequest(container_id="BAG-1"))
    assert (bag.state, bag.site, list(bag.parcel_ids)) == ("filled", site, ["P-1", "P-2"])
    bag = await record(_move("BAG-1", A.CONTAINER_ACTION_LOADED, vehicle_id="V1", site=site))
    assert (bag.state, bag.vehicle_id) == ("loaded", "V1")
    assert await parcel_state(hub.h, "P-1") == common_pb2.PARCEL_STATE_LOADED

    # Two places at once: while on V1 it cannot be filled at the hub, unloaded from V2, emptied.
    refused = hub.h.dropped("container_conflict")
    await _send(
        hub, hub.line, container_moved=_move("BAG-1", A.CONTAINER_ACTION_FILLED, chute_id="CH01")
    )
    assert hub.h.dropped("container_conflict") == refused + 1
    for move in (
        _move("BAG-1", A.CONTAINER_ACTION_UNLOADED, vehicle_id="V2", site=hub.other),
        _move("BAG-1", A.CONTAINER_ACTION_EMPTIED, site=hub.other),
        _move("BAG-1", A.CONTAINER_ACTION_FILLED, site=site, chute_id="CH01"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await record(move)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "on vehicle V1" in (err.value.details() or "")
    assert hub.counter(sorting.container_refused, "conflict") == 3

    # A line reports only FILLED and RETURNED, at its own site.
    mismatch = hub.h.dropped("mismatch")
    await _send(
        hub, hub.line, container_moved=_move("BAG-1", A.CONTAINER_ACTION_UNLOADED, vehicle_id="V1")
    )
    assert hub.h.dropped("mismatch") == mismatch + 1

    await record(_move("BAG-1", A.CONTAINER_ACTION_UNLOADED, vehicle_id="V1", site=hub.other))
    bag = await record(_move("BAG-1", A.CONTAINER_ACTION_EMPTIED, site=hub.other))
    assert (bag.state, bag.site, list(bag.parcel_ids)) == ("empty_at_site", hub.other, [])
    async with hub.h.app.store.read() as tx:
        from hub.store.repo.containers import empty_containers_by_site

        assert await empty_containers_by_site(tx) == {hub.other: [("BAG-1", "bag")]}
    await record(_move("BAG-1", A.CONTAINER_ACTION_LOADED, vehicle_id="V1", site=hub.other))
    await _send(hub, hub.line, container_moved=_move("BAG-1", A.CONTAINER_ACTION_RETURNED))
    bag = await hub.sorting.GetContainer(sorting_pb2.GetContainerRequest(container_id="BAG-1"))
    assert (bag.state, bag.site, bag.cycles) == ("at_hub", site, 1)

    # A parcel in no container, a parcel not sorted, another type under the same id.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await record(_move("BAG-2", A.CONTAINER_ACTION_FILLED, site=site, parcel_ids=["P-3"]))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await record(_move("BAG-2", A.CONTAINER_ACTION_FILLED, site=site, parcel_ids=["P-404"]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    box = _move("BAG-1", A.CONTAINER_ACTION_FILLED, site=site)
    box.type = sorting_pb2.CONTAINER_TYPE_BOX
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await record(box)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Malformed and oversized input.
    for bad in (
        _move("", A.CONTAINER_ACTION_FILLED, site=site),
        _move("B/1", A.CONTAINER_ACTION_FILLED, site=site),
        _move("BAG-3", 0, site=site),
        _move("BAG-3", A.CONTAINER_ACTION_FILLED),
        _move("BAG-3", A.CONTAINER_ACTION_FILLED, site=site, parcel_ids=["P-1", "P-1"]),
        _move(
            "BAG-3", A.CONTAINER_ACTION_FILLED, site=site, parcel_ids=[f"P{i}" for i in range(1001)]
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await record(bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad

    # The metrics snapshot: one bag, back at the hub, one cycle; share measured from fills.
    await hub.h.app._refresh()  # the refresh tick, run now
    snap = sorting.containers.snapshot
    assert snap.by_state == {("at_hub", site): 1}
    assert (snap.cycles, snap.lost) == (1, 0)
    assert snap.share[site] == (2, 2)


async def test_ops_sortplan_release_and_container(
    sortinghub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    from ops import cli as ops

    hub, site = sortinghub, sortinghub.h.site

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(ops.main, ["ops", "--target", hub.h.app.grpc_address, *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = await run(
        "sortplan", "set", hub.line.device, "--rule", f"{site}=CH01", "--rule", "ELSE=CH02",
        "--exception-chute", "EX", "--hold-chute", "HOLD",
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[0].startswith(f"line {hub.line.device}: plan v1 (applied v0)")
    code, out, _ = await run("sortplan", "show", hub.line.device)
    assert code == 0
    assert "CH02" in out
    code, _, err = await run("sortplan", "set", hub.line.device, "--rule", "A=C", "--rule", "A=D")
    assert code == 1
    assert "appears twice" in err
    with pytest.raises(SystemExit) as exit_:
        await run("sortplan", "set", hub.line.device, "--rule", "nonsense")
    assert exit_.value.code == 2
    assert "expected DESTINATION=CHUTE" in capsys.readouterr().err
    await _announce(hub, "P-OPS")
    await _send(
        hub,
        hub.station,
        parcel_screened=sorting_pb2.ParcelScreened(parcel_id="P-OPS", result=HOLD, reason="liquid"),
    )
    code, out, _ = await run("screening", "P-OPS")
    assert code == 0
    assert "held" in out
    assert "liquid" in out
    code, out, _ = await run("release", "P-OPS", "--reason", "inspected")
    assert code == 0
    assert "released" in out
    code, _, err = await run("release", "P-OPS", "--reason", "again")
    assert code == 1
    assert "FAILED_PRECONDITION" in err
    await _send(hub, hub.line, **_sorted("P-OPS", "CH01", 1, site))
    code, out, _ = await run("container", "record", "CAGE-9", "filled", "--type", "cage",
                             "--site", site, "--chute", "CH01", "--parcel", "P-OPS")  # fmt: skip
    assert code == 0
    assert "filled" in out
    assert "P-OPS" in out
    code, out, _ = await run("container", "show", "CAGE-9")
    assert code == 0
    assert out.splitlines()[2].split()[:3] == ["CAGE-9", "cage", "filled"]
