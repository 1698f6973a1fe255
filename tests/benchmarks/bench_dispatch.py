"""PlanRoutes from the hub's own data against the routing library on the same problems.

Run: ``python tests/benchmarks/bench_dispatch.py`` (``--seconds 1 10 60``, ``--stops 1000``).
A generated district: ``--stops`` locker sites around a sorting hub, four access zones with
windows (and class exemptions), 1-4 sorted parcels per site, an expired parcel at every tenth,
empty containers at every seventh, ``--vehicles`` registered vehicles of three classes
(electric vans, e-bikes, combustion vans) with random permits, ``--piles`` free charging piles.

For each budget: the hub's ``DispatchPlanner.plan`` (read the store, build one problem per
profile, solve in the worker process, check, store the plan) wall time, distance and served
stops; then the baseline, ``routing.plan_routes`` called directly on the very problems the hub
built, with the same time share each, in this process. Printed: the hub's wall time over the
baseline's (its overhead as a ratio) and distance over the baseline's (quality, same problems).
The budget of 1 s is the "first plan" figure: SISR's construction plus a second of search.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hub.models import Dims, ParcelRecord, ParcelState, Zone  # noqa: E402
from hub.ocpp import ConnectorState, PileState  # noqa: E402
from hub.planning.plans import DispatchPlanner, PlanRequest  # noqa: E402
from hub.planning.routes import RoutePlanner  # noqa: E402
from hub.settings import HubSettings, SiteSettings, ZoneExemption, ZoneSettings  # noqa: E402
from hub.store import Store  # noqa: E402
from hub.store.repo import devices as devices_repo  # noqa: E402
from hub.store.repo import parcels as parcels_repo  # noqa: E402
from hub.vehicles import Vehicle, VehicleClass, VehicleRegistry  # noqa: E402
from lockerhub.clock import SystemClock  # noqa: E402
from routing import PlanParams, check_plan, plan_routes  # noqa: E402
from routing.planner import warm_up_planner  # noqa: E402

START_MS = 1_906_700_400_000  # 2030-06-03 07:00 UTC
ZONES = (
    ZoneSettings(
        id="z1",
        window="10:00-16:00",
        exemptions=(ZoneExemption(vehicle_class="electric_van", window="00:00-24:00"),),
    ),
    ZoneSettings(
        id="z2",
        window="07:00-11:00",
        exemptions=(ZoneExemption(vehicle_class="e_bike", window="00:00-24:00"),),
    ),
    ZoneSettings(id="z3", window="00:00-24:00"),
    ZoneSettings(id="z4", window="13:00-20:00"),
)


def _warm(_: None) -> float:
    return warm_up_planner()


def district(stops: int, piles: int, rng: random.Random) -> HubSettings:
    sites = [SiteSettings(id="HUB", lat=31.2, lon=121.4, kind="sorting_hub")]
    for i in range(stops):
        zone = rng.choice(["", "", "z1", "z2", "z3", "z4"])
        hours = rng.choice(["07:00-22:00", "00:00-24:00", "08:00-20:00"])
        sites.append(
            SiteSettings(
                id=f"S{i:04d}",
                lat=31.2 + rng.uniform(-0.1, 0.1),
                lon=121.4 + rng.uniform(-0.1, 0.1),
                sorting_hub="HUB",
                zone=zone,
                hours=hours,
                kind="housing_estate",
                ebike_charging_hours="00:00-24:00" if i < piles // 2 else "",
            )
        )
    return HubSettings(sites=tuple(sites), zones=ZONES)


async def populate(store: Store, settings: HubSettings, rng: random.Random) -> None:
    async with store.transaction() as tx:
        await devices_repo.upsert_sites(tx, settings.sites)
        n = 0
        for i, site in enumerate(settings.sites[1:]):
            for _ in range(rng.randint(1, 4)):
                n += 1
                await parcels_repo.insert_parcel(tx, _parcel(f"P{n}", site.id, ParcelState.SORTED),
                                                 phone="13800000000", reservation_expires_ms=0,
                                                 now_ms=START_MS)  # fmt: skip
            if i % 10 == 0:
                n += 1
                rec = _parcel(f"R{n}", site.id, ParcelState.EXPIRED, cabinet="CAB")
                await parcels_repo.insert_parcel(
                    tx, rec, phone="13800000000", reservation_expires_ms=0, now_ms=START_MS
                )


def _parcel(pid: str, site: str, state: ParcelState, cabinet: str = "") -> ParcelRecord:
    return ParcelRecord(
        parcel_id=pid,
        state=state,
        site=site,
        cabinet_id=cabinet,
        compartment_id="A01" if cabinet else "",
        dims=Dims(300, 200, 100),
        weight_g=1000,
        zone=Zone.AMBIENT,
        phone_masked="138****0000",
        electronic_waybill=True,
        reusable_container=False,
        pickup_deadline_ms=0,
    )


async def fleet(registry: VehicleRegistry, count: int, rng: random.Random) -> None:
    zones = [z.id for z in ZONES]
    for i in range(count):
        kind = i % 5
        permits = tuple(sorted(rng.sample(zones, rng.randint(1, 4))))
        common: dict[str, Any] = {
            "vehicle_id": f"V{i:03d}",
            "plate": f"PL{i:05d}",
            "permit_zones": permits,
            "depot_site": "HUB",
            "driver_id": f"D{i}",
            "safety_trained": True,
            "insurance_expiry_ms": START_MS + 10**11,
        }
        if kind in (0, 1):
            v = Vehicle(vehicle_class=VehicleClass.ELECTRIC_VAN, capacity_parcels=120,
                        battery_kwh=8.0, consumption_kwh_per_km=0.2, **common)  # fmt: skip
        elif kind in (2, 3):
            v = Vehicle(vehicle_class=VehicleClass.E_BIKE, capacity_parcels=25,
                        battery_kwh=0.8, consumption_kwh_per_km=0.02, **common)  # fmt: skip
        else:
            v = Vehicle(vehicle_class=VehicleClass.COMBUSTION_VAN, capacity_parcels=150, **common)
        await registry.register(v)


def pile_states(settings: HubSettings, count: int) -> list[PileState]:
    out = []
    for i, site in enumerate(settings.sites[1 : count + 1]):
        p = PileState(pile_id=f"PILE{i:02d}", site=site.id, online=True)
        p.connectors[1] = ConnectorState(status="Available")
        out.append(p)
    return out


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    settings = district(args.stops, args.piles, rng)
    piles = pile_states(settings, args.piles)
    with tempfile.TemporaryDirectory() as tmp:
        async with Store(Path(tmp) / "hub.db") as store, RoutePlanner(store) as planner:
            await populate(store, settings, rng)
            clock = SystemClock()
            await fleet(VehicleRegistry(store, clock, [z.id for z in ZONES]), args.vehicles, rng)
            dispatcher = DispatchPlanner(store, clock, settings, planner, piles=lambda: piles)
            solve_s: list[float] = []
            run = planner.run

            async def timed_run(fn: Any, arg: Any) -> Any:  # the worker's share of the wall time
                t = time.perf_counter()
                try:
                    return await run(fn, arg)
                finally:
                    solve_s.append(time.perf_counter() - t)

            planner.run = timed_run  # type: ignore[method-assign]
            warm = await planner.run(_warm, None)
            warm_here = warm_up_planner()
            print(f"# dispatch: {args.stops} stops, {args.vehicles} vehicles (3 classes), "
                  f"{args.piles} piles, 4 zones; JIT warm-up {warm:.1f} s worker, "
                  f"{warm_here:.1f} s here (excluded)")  # fmt: skip
            # Kernels specialise per problem kind (electric, pickups): compile them on both sides.
            first = await dispatcher.plan(
                PlanRequest(hub_site="HUB", start_ms=START_MS, time_limit_s=1, containers={}),
                actor="bench",
            )
            solved = dispatcher.solution(first.plan_id)
            assert solved is not None
            for sub in solved[1].subproblems:
                plan_routes(sub.problem, params=PlanParams(time_limit=1, max_iterations=10))
            print(f"{'budget s':>8} {'hub s':>7} {'lib s':>7} {'hub/lib':>7} {'hub km':>9} "
                  f"{'lib km':>9} {'km ratio':>8} {'served':>6} {'lib served':>10} "
                  f"{'profiles':>8} {'worker s':>8}")  # fmt: skip
            for budget in args.seconds:
                t0 = time.perf_counter()
                reply = await dispatcher.plan(
                    PlanRequest(
                        hub_site="HUB",
                        start_ms=START_MS,
                        time_limit_s=budget,
                        containers={s.id: 2 for s in settings.sites[1::7]},
                    ),
                    actor="bench",
                )
                hub_s = time.perf_counter() - t0
                solved = dispatcher.solution(reply.plan_id)
                assert solved is not None
                _, out = solved
                lib_s = lib_km = 0.0
                lib_served: set[str] = set()  # a stop retried by a later profile counts once
                for sub in out.subproblems:
                    share = sub.time_limit_s
                    t1 = time.perf_counter()
                    plan = plan_routes(sub.problem, params=PlanParams(time_limit=share, seed=0))
                    lib_s += time.perf_counter() - t1
                    assert check_plan(sub.problem, plan, allow_unserved=True) == []
                    lib_km += plan.distance
                    missed = set(plan.unserved)
                    labels = sub.problem.labels
                    lib_served |= {str(labels[c]) for c in sub.problem.customers if c not in missed}
                served = sum(1 for r in reply.routes for s in r.stops if not s.charging_pile_id)
                print(f"{budget:>8g} {hub_s:>7.2f} {lib_s:>7.2f} {hub_s / lib_s:>7.2f} "
                      f"{reply.total_distance_km:>9.1f} {lib_km:>9.1f} "
                      f"{reply.total_distance_km / max(lib_km, 1e-9):>8.3f} {served:>6} "
                      f"{len(lib_served):>10} {len(out.subproblems):>8} "
                      f"{solve_s[-1]:>8.2f}")  # fmt: skip
            reasons = sorted({u.reason.split(" (")[0] for u in reply.unserved_stops})
            print(f"# unserved by the hub at the last budget: {len(reply.unserved_stops)} "
                  f"(reasons: {reasons[:4]})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    ap.add_argument("--stops", type=int, default=1000)
    ap.add_argument("--vehicles", type=int, default=50)
    ap.add_argument("--piles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    asyncio.run(run(ap.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
