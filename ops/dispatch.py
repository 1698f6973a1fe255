"""``lockerhub ops vehicles ...`` and ``lockerhub ops plan ...``: the registry and route plans."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from lockerhub.v1 import dispatch_pb2, dispatch_pb2_grpc, vehicles_pb2, vehicles_pb2_grpc
from ops.client import TIMEOUT_S
from ops.render import enum_name, table

Wrap = Callable[[Callable[[argparse.Namespace, grpc.Channel], tuple[Message, Any]]], Any]
CLASSES = ("e_bike", "electric_van", "box_vehicle", "combustion_van")
PLAN_TIMEOUT_S = 180.0


def _when(ms: int) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _hhmm(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%H:%M") if ms else "-"


def _class(value: int) -> str:
    return enum_name(vehicles_pb2.VehicleClass, value, "VEHICLE_CLASS_")


def _vehicle_rows(items: Any) -> list[tuple[Any, ...]]:
    return [
        (
            v.vehicle_id,
            v.plate,
            _class(v.vehicle_class),
            v.capacity_parcels,
            f"{v.battery_kwh:g}",
            ",".join(v.permit_zones) or "-",
            v.depot_site,
            v.driver.driver_id or "-",
            "yes" if v.driver.safety_trained else "no",
            _when(v.driver.insurance_expiry_ms),
            "retired" if v.retired else "active",
        )
        for v in items
    ]


VEHICLE_HEADERS = (
    "VEHICLE", "PLATE", "CLASS", "PARCELS", "KWH", "PERMITS", "DEPOT", "DRIVER", "TRAINED",
    "INSURED UNTIL", "STATE",
)  # fmt: skip


def _record(args: argparse.Namespace) -> vehicles_pb2.RegisteredVehicle:
    insured = 0
    if args.insured_until:
        try:
            day = dt.datetime.strptime(args.insured_until, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            raise ValueError(
                f"--insured-until {args.insured_until!r}: expected YYYY-MM-DD"
            ) from None
        insured = int(day.timestamp() * 1000)
    return vehicles_pb2.RegisteredVehicle(
        vehicle_id=args.vehicle_id,
        plate=args.plate,
        vehicle_class=vehicles_pb2.VehicleClass.Value(
            f"VEHICLE_CLASS_{args.vehicle_class.upper()}"
        ),
        capacity_parcels=args.parcels,
        capacity_volume_l=args.volume_l,
        battery_kwh=args.battery_kwh,
        consumption_kwh_per_km=args.kwh_per_km,
        permit_zones=[z for z in args.permits.split(",") if z],
        depot_site=args.depot,
        driver=vehicles_pb2.Driver(
            driver_id=args.driver, safety_trained=args.trained, insurance_expiry_ms=insured
        ),
        id_tag=args.id_tag,
    )


def register_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = vehicles_pb2_grpc.VehicleServiceStub(channel)
    request: Any
    if args.vehicles_command == "register":
        request = vehicles_pb2.RegisterVehicleRequest(vehicle=_record(args))
        v = stub.RegisterVehicle(request, timeout=TIMEOUT_S)
    else:
        request = vehicles_pb2.UpdateVehicleRequest(vehicle=_record(args))
        v = stub.UpdateVehicle(request, timeout=TIMEOUT_S)
    return v, lambda: print(table(VEHICLE_HEADERS, _vehicle_rows([v])))


def retire_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = vehicles_pb2_grpc.VehicleServiceStub(channel)
    v = stub.RetireVehicle(
        vehicles_pb2.RetireVehicleRequest(vehicle_id=args.vehicle_id, reason=args.reason),
        timeout=TIMEOUT_S,
    )
    return v, lambda: print(table(VEHICLE_HEADERS, _vehicle_rows([v])))


def list_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = vehicles_pb2_grpc.VehicleServiceStub(channel)
    vclass = vehicles_pb2.VEHICLE_CLASS_UNSPECIFIED
    if args.vehicle_class:
        vclass = vehicles_pb2.VehicleClass.Value(f"VEHICLE_CLASS_{args.vehicle_class.upper()}")
    r = stub.ListVehicles(
        vehicles_pb2.ListVehiclesRequest(
            vehicle_class=vclass, depot_site=args.depot, include_retired=args.all
        ),
        timeout=TIMEOUT_S,
    )
    return r, lambda: print(table(VEHICLE_HEADERS, _vehicle_rows(r.vehicles)))


def show_plan(plan: dispatch_pb2.PlanRoutesResponse) -> None:
    """A driver's sheet: each route stop by stop, then what the plan leaves undone."""
    print(f"plan {plan.plan_id or '-'}  made {_when(plan.created_ms)} UTC", end="")
    print(f"  replaces {plan.replaces_plan_id}" if plan.replaces_plan_id else "")
    for route in plan.routes:
        print(
            f"\n{route.vehicle_id} ({_class(route.vehicle_class)}, driver "
            f"{route.driver_id or '-'}): {route.distance_km:.1f} km, {route.energy_kwh:.2f} kWh, "
            f"charged {route.charged_kwh:.2f} kWh, {_hhmm(route.start_ms)}-{_hhmm(route.end_ms)}"
        )
        rows = [
            (
                _hhmm(s.arrival_ms),
                _hhmm(s.departure_ms),
                s.site,
                s.zone or "-",
                len(s.deliver_parcel_ids),
                len(s.collect_parcel_ids),
                s.container_count,
                f"{s.charging_pile_id} +{s.charge_kwh:.2f} kWh" if s.charging_pile_id else "",
            )
            for s in route.stops
        ]
        print(
            table(
                ("ARRIVE", "LEAVE", "SITE", "ZONE", "DROP", "COLLECT", "CONTAINERS", "CHARGE"),
                rows,
            )
        )
    if plan.unserved_stops:
        print("\nnot served:")
        print(table(("SITE", "PARCELS", "WHY"), [
            (u.site, len(u.parcel_ids), u.reason) for u in plan.unserved_stops
        ]))  # fmt: skip
    if plan.skipped_vehicles:
        print("\nvehicles not used:")
        print(table(("VEHICLE", "WHY"), [(v.vehicle_id, v.reason) for v in plan.skipped_vehicles]))


def plan_make_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    containers = []
    for item in args.containers:
        site, _, count = item.partition("=")
        if not count.isdigit():
            raise ValueError(f"--containers {item!r}: expected SITE=COUNT")
        containers.append(dispatch_pb2.SiteCount(site=site, count=int(count)))
    plan = stub.PlanRoutes(
        dispatch_pb2.PlanRoutesRequest(
            hub_site=args.hub_site,
            time_limit_s=args.seconds,
            empty_containers=containers,
            exclude_vehicle_ids=args.exclude,
        ),
        timeout=PLAN_TIMEOUT_S,
    )
    return plan, lambda: show_plan(plan)


def plan_show_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    plan = stub.GetRoutePlan(
        dispatch_pb2.GetRoutePlanRequest(plan_id=args.plan, vehicle_id=args.vehicle),
        timeout=TIMEOUT_S,
    )
    return plan, lambda: show_plan(plan)


def replan_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    plan = stub.ReplanRoutes(
        dispatch_pb2.ReplanRoutesRequest(
            plan_id=args.plan_id,
            exclude_vehicle_ids=args.exclude,
            reason=args.reason,
            time_limit_s=args.seconds,
        ),
        timeout=PLAN_TIMEOUT_S,
    )
    return plan, lambda: show_plan(plan)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Wrap) -> None:
    """Add ``ops vehicles ...`` and ``ops plan ...`` to the ops subcommands."""
    vehicles = sub.add_parser("vehicles", help="the vehicle and e-bike registry")
    vsub = vehicles.add_subparsers(dest="vehicles_command", required=True)
    p = vsub.add_parser("list", help="list registered vehicles")
    p.add_argument("--class", dest="vehicle_class", choices=CLASSES, default="")
    p.add_argument("--depot", default="")
    p.add_argument("--all", action="store_true", help="include retired vehicles")
    p.set_defaults(func=wrap(list_call))
    for name in ("register", "update"):
        p = vsub.add_parser(name, help=f"{name} a vehicle or e-bike (every field)")
        p.add_argument("vehicle_id")
        p.add_argument("--plate", required=True, help="licence plate or frame number")
        p.add_argument("--class", dest="vehicle_class", choices=CLASSES, required=True)
        p.add_argument("--parcels", type=int, required=True, help="capacity in parcels")
        p.add_argument("--volume-l", type=float, default=0.0)
        p.add_argument("--battery-kwh", type=float, default=0.0)
        p.add_argument("--kwh-per-km", type=float, default=0.0)
        p.add_argument("--permits", default="", help="zones, comma-separated")
        p.add_argument("--depot", required=True, help="the site it leaves from")
        p.add_argument("--driver", default="", help="the driver's or rider's staff id")
        p.add_argument("--trained", action="store_true", help="the driver has safety training")
        p.add_argument("--insured-until", default="", help="YYYY-MM-DD (UTC)")
        p.add_argument("--id-tag", default="", help="OCPP id tag for charging")
        p.set_defaults(func=wrap(register_call))
    p = vsub.add_parser("retire", help="retire a vehicle (audited)")
    p.add_argument("vehicle_id")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=wrap(retire_call))

    plan = sub.add_parser("plan", help="route plans: make, show (a driver's route), replan")
    psub = plan.add_subparsers(dest="plan_command", required=True)
    p = psub.add_parser("make", help="plan routes from registered vehicles")
    p.add_argument("--hub-site", required=True)
    p.add_argument("--seconds", type=int, default=0, help="search time (default: the hub's)")
    p.add_argument("--containers", action="append", default=[], help="SITE=COUNT (repeat)")
    p.add_argument("--exclude", action="append", default=[], help="vehicle to leave out")
    p.set_defaults(func=wrap(plan_make_call))
    p = psub.add_parser("show", help="show a stored plan (the newest by default)")
    p.add_argument("--plan", default="")
    p.add_argument("--vehicle", default="", help="only this vehicle's route")
    p.set_defaults(func=wrap(plan_show_call))
    p = psub.add_parser("replan", help="plan again without vehicles that dropped out")
    p.add_argument("plan_id")
    p.add_argument("--exclude", action="append", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--seconds", type=int, default=0)
    p.set_defaults(func=wrap(replan_call))
