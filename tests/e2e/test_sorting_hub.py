"""Issue 13 end to end: a real hub (gRPC, MQTT) and mosquitto, a real `lockerhub edge` sorting-line
agent driving a real `lockerhub sim modbus-line` process over Modbus TCP, a screening station and
cabinets (MQTT device clients). Parcels announced, one held at screening; the plan reaches the
line; every cleared parcel lands in its planned chute and the line reports the plan version; the
held parcel is refused at every later step until released; containers go round and the hub's
counts match what the simulation did."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.settings import SiteSettings
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, sorting_pb2, sorting_pb2_grpc
from tests.hub.cabinet import FakeCabinet, inventory_entry
from tests.hub.conftest import eventually, running_hub, settings_for
from tests.hub.test_flow import announcement, online, parcel_state
from tests.hub.test_sorting_hub import BIG
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc

CHUTES = ["CH01", "CH02", "HOLD", "EX"]
A = sorting_pb2


async def test_sorting_hub_end_to_end(tmp_path: Path, mosquitto: BrokerHandle) -> None:
    tag = uuid.uuid4().hex[:6]
    hub_site, site_a, site_b = f"H{tag}", f"A{tag}", f"B{tag}"
    line_id, station_id, cab_a, cab_b = f"L{tag}", f"S{tag}", f"CA{tag}", f"CB{tag}"
    settings = dataclasses.replace(
        settings_for(tmp_path, mosquitto, hub_site),
        sites=(
            SiteSettings(id=hub_site, lat=31.20, lon=121.40),
            SiteSettings(id=site_a, lat=31.21, lon=121.41, sorting_hub=hub_site),
            SiteSettings(id=site_b, lat=31.19, lon=121.42, sorting_hub=hub_site),
        ),
        devices=(
            inventory_entry(line_id, hub_site, device_pb2.DEVICE_KIND_SORTING_LINE),
            inventory_entry(station_id, hub_site, device_pb2.DEVICE_KIND_SCREENING_STATION),
            inventory_entry(cab_a, site_a, layout=BIG),
            inventory_entry(cab_b, site_b, layout=BIG),
        ),
    )
    parcels = {f"P{i}-{tag}": site_a if i % 2 else site_b for i in range(1, 9)}
    held = f"P3-{tag}"
    async with running_hub(settings, tmp_path, mosquitto) as hub:
        sorting = sorting_pb2_grpc.SortingServiceStub(hub.channel)
        station = FakeCabinet(
            mosquitto, hub_site, station_id, kind=device_pb2.DEVICE_KIND_SCREENING_STATION
        )
        cabs = {
            site_a: FakeCabinet(mosquitto, site_a, cab_a),
            site_b: FakeCabinet(mosquitto, site_b, cab_b),
        }
        async with station, cabs[site_a], cabs[site_b]:
            await station.birth(())
            for cab in cabs.values():
                await cab.birth(BIG)
            for device in (station_id, cab_a, cab_b):
                await online(hub, device)
            outcome = {}
            for pid, site in parcels.items():
                resp = await hub.dispatch.AnnounceParcels(
                    dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement(pid, site)])
                )
                (o,) = resp.outcomes
                assert o.accepted, o
                outcome[pid] = o
            # Screening: one parcel held, the others clear.
            for pid in parcels:
                await station.event(
                    parcel_screened=A.ParcelScreened(
                        parcel_id=pid,
                        result=A.ParcelScreened.RESULT_HOLD
                        if pid == held
                        else A.ParcelScreened.RESULT_CLEAR,
                        reason="dense object" if pid == held else "",
                    )
                )
            metrics = hub.app.metrics.sorting

            async def screened() -> bool:
                return metrics.screened.labels(hub_site, "clear")._value.get() == 7

            await eventually(screened)
            assert metrics.held.labels(hub_site)._value.get() == 1

            # The plan, before the line starts: the agent gets it from its retained desired state.
            plan = await sorting.SetSortPlan(
                A.SetSortPlanRequest(
                    line_id=line_id,
                    rules=[
                        A.SortPlanRule(destination=site_a, chute_id="CH01"),
                        A.SortPlanRule(destination=site_b, chute_id="CH02"),
                    ],
                    exception_chute="EX",
                    hold_chute="HOLD",
                )
            )
            manifest = tmp_path / "manifest.jsonl"
            manifest.write_text(
                "".join(
                    json.dumps({"parcel_id": p, "destination": s}) + "\n"
                    for p, s in parcels.items()
                )
            )
            go, landed_file = tmp_path / "go", tmp_path / "landed.json"
            sim = Proc(
                ["sim", "modbus-line", "--port", "0", "--chutes", ",".join(CHUTES), "--manifest",
                 str(manifest), "--rate", "20", "--go-file", str(go), "--landed", str(landed_file)]
            )  # fmt: skip
            agent: Proc | None = None
            try:
                m = await asyncio.to_thread(sim.wait_for, r"modbus line on ([\d.]+):(\d+)")
                user, password = await asyncio.to_thread(mosquitto.credentials, line_id, hub_site)
                config = tmp_path / "line.toml"
                config.write_text(
                    f"""
[device]
id = "{line_id}"
site = "{hub_site}"
kind = "sorting_line"
[broker]
host = "{mosquitto.host}"
port = {mosquitto.port}
username = "{user}"
password = "{password}"
[storage]
path = "{tmp_path / "line.db"}"
[telemetry]
interval_s = 0.5
[driver]
kind = "modbus"
modbus_host = "{m.group(1)}"
modbus_port = {m.group(2)}
modbus_poll_s = 0.02
[sorter]
chutes = {json.dumps(CHUTES)}
"""
                )
                agent = Proc(["edge", "--config", str(config)])
                await asyncio.to_thread(agent.wait_for, r"modbus sorting line on")

                async def applied() -> bool:
                    got = await sorting.GetSortPlan(A.GetSortPlanRequest(line_id=line_id))
                    return got.applied_version == plan.version

                await eventually(applied, timeout=20)
                go.write_text("go")

                async def all_sorted() -> bool:
                    states = [await parcel_state(hub, p) for p in parcels if p != held]
                    return all(s == common_pb2.PARCEL_STATE_SORTED for s in states)

                await eventually(all_sorted, timeout=30)
                await asyncio.to_thread(sim.wait_for, r"inducted 8 parcels")
                transitions = await hub.sql(
                    "SELECT parcel_id, location FROM parcel_transitions WHERE state = 'sorted'"
                )
                assert await hub.sql("SELECT COUNT(*) FROM sort_exceptions") == [(0,)]
            finally:
                agent_rc = agent.terminate() if agent is not None else 0
                sim_rc = sim.terminate()
                assert agent is None or agent_rc == 0, agent.output()[-6000:]
                assert sim_rc == 0, sim.output()[-2000:]
            landed = json.loads(landed_file.read_text())
            planned = {site_a: "CH01", site_b: "CH02"}
            for pid, site in parcels.items():
                expected = "HOLD" if pid == held else planned[site]
                assert landed[expected].count(pid) == 1, (pid, landed)
            assert sum(len(v) for v in landed.values()) == len(parcels)
            assert {p: loc.rsplit("/", 1)[-1] for p, loc in transitions} == {
                p: planned[s] for p, s in parcels.items() if p != held
            }
            assert await parcel_state(hub, held) == common_pb2.PARCEL_STATE_RESERVED

            # The held parcel is refused at every later step.
            def refused() -> float:
                return float(hub.app.metrics.ingest_dropped.labels("held")._value.get())

            before = refused()
            await cabs[site_a].event(
                deposited=device_pb2.Deposited(
                    parcel_id=held, compartment_id=outcome[held].compartment_id
                )
            )
            await eventually(lambda: asyncio.sleep(0, refused() > before))
            fill = A.ContainerMoved(
                container_id=f"X-{tag}",
                type=A.CONTAINER_TYPE_BAG,
                action=A.CONTAINER_ACTION_FILLED,
                site=hub_site,
                parcel_ids=[held],
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await sorting.RecordContainer(A.RecordContainerRequest(move=fill))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await hub.dispatch.PlanRoutes(
                    dispatch_pb2.PlanRoutesRequest(
                        hub_site=hub_site,
                        vehicles=[dispatch_pb2.Vehicle(vehicle_id="V1", capacity_parcels=20)],
                        parcel_ids=[held],
                        time_limit_s=1,
                    )
                )
            assert "held" in (err.value.details() or "")

            # Containers: one bag per destination, filled at its chute, round trip to the site.
            trips = 0
            for site, chute in planned.items():
                bag = f"BAG-{site}"
                inside = [p for p, s in parcels.items() if s == site and p != held]

                async def move(action: int, where: str, bag: str = bag, **kw: Any) -> A.Container:
                    m = A.ContainerMoved(
                        container_id=bag, type=A.CONTAINER_TYPE_BAG, action=action, site=where, **kw
                    )
                    return await sorting.RecordContainer(A.RecordContainerRequest(move=m))

                await move(A.CONTAINER_ACTION_FILLED, hub_site, chute_id=chute, parcel_ids=inside)
                await move(A.CONTAINER_ACTION_LOADED, hub_site, vehicle_id="V1")
                await move(A.CONTAINER_ACTION_UNLOADED, site, vehicle_id="V1")
                for pid in inside:
                    assert await parcel_state(hub, pid) == common_pb2.PARCEL_STATE_LOADED
                    await cabs[site].event(
                        deposited=device_pb2.Deposited(
                            parcel_id=pid, compartment_id=outcome[pid].compartment_id
                        )
                    )
                await move(A.CONTAINER_ACTION_EMPTIED, site)
                await move(A.CONTAINER_ACTION_LOADED, site, vehicle_id="V1")
                back = await move(A.CONTAINER_ACTION_RETURNED, hub_site)
                assert (back.state, back.cycles) == ("at_hub", 1)
                trips += 1

            async def deposited() -> bool:
                states = [await parcel_state(hub, p) for p in parcels if p != held]
                return all(s == common_pb2.PARCEL_STATE_DEPOSITED for s in states)

            await eventually(deposited)
            await hub.app._refresh()  # the metrics tick, now
            snap = metrics.containers.snapshot
            assert snap.by_state == {("at_hub", hub_site): trips}
            assert (snap.cycles, snap.lost) == (trips, 0)
            assert snap.share == {site_a: (3, 3), site_b: (4, 4)}

            # Released: the parcel goes on (the cabinet's deposit is accepted now).
            await sorting.ReleaseParcel(A.ReleaseParcelRequest(parcel_id=held, reason="inspected"))
            await cabs[site_a].event(
                deposited=device_pb2.Deposited(
                    parcel_id=held, compartment_id=outcome[held].compartment_id
                )
            )

            async def held_deposited() -> bool:
                return await parcel_state(hub, held) == common_pb2.PARCEL_STATE_DEPOSITED

            await eventually(held_deposited)
