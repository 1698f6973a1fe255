"""``lockerhub ops sortplan | release | screening | container``: the sorting hub's calls."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from lockerhub.v1 import sorting_pb2, sorting_pb2_grpc
from ops.client import TIMEOUT_S
from ops.commands import Handler
from ops.render import table

Wrap = Callable[[Handler], Callable[[argparse.Namespace], int]]


def _rule(text: str) -> sorting_pb2.SortPlanRule:
    destination, sep, chute = text.partition("=")
    if not sep or not destination or not chute:
        raise argparse.ArgumentTypeError(f"{text!r}: expected DESTINATION=CHUTE")
    return sorting_pb2.SortPlanRule(destination=destination, chute_id=chute)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Wrap) -> None:
    p = sub.add_parser("sortplan", help="show or set a sorting line's sort plan")
    actions = p.add_subparsers(dest="sortplan_command", required=True)
    q = actions.add_parser("show", help="the line's current plan and the version it applied")
    q.add_argument("line_id")
    q.set_defaults(func=wrap(show_plan_call))
    q = actions.add_parser("set", help="send a new plan version to the line (desired state)")
    q.add_argument("line_id")
    q.add_argument("--rule", type=_rule, action="append", default=[], help="DESTINATION=CHUTE")
    q.add_argument("--exception-chute", default="")
    q.add_argument("--hold-chute", default="", help="where parcels held at screening go")
    q.set_defaults(func=wrap(set_plan_call))

    p = sub.add_parser("release", help="lift a screening hold (audited with your reason)")
    p.add_argument("parcel_id")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=wrap(release_call))
    p = sub.add_parser("screening", help="a parcel's screening result")
    p.add_argument("parcel_id")
    p.set_defaults(func=wrap(screening_call))

    p = sub.add_parser("container", help="show a reusable container, or record its movement")
    actions = p.add_subparsers(dest="container_command", required=True)
    q = actions.add_parser("show")
    q.add_argument("container_id")
    q.set_defaults(func=wrap(container_call))
    q = actions.add_parser("record", help="the driver app's report of a movement")
    q.add_argument("container_id")
    q.add_argument("action", choices=("filled", "loaded", "unloaded", "emptied", "returned"))
    q.add_argument("--type", choices=("bag", "box", "cage"), default="bag")
    q.add_argument("--site", required=True)
    q.add_argument("--vehicle", default="")
    q.add_argument("--chute", default="")
    q.add_argument("--parcel", action="append", default=[])
    q.set_defaults(func=wrap(record_call))


def _plan_out(p: sorting_pb2.SortPlan) -> tuple[Message, Any]:
    def show() -> None:
        print(
            f"line {p.line_id}: plan v{p.version} (applied v{p.applied_version}), "
            f"exception chute {p.exception_chute or '-'}, hold chute {p.hold_chute or '-'}, "
            f"by {p.actor}"
        )
        print(table(("DESTINATION", "CHUTE"), [(r.destination, r.chute_id) for r in p.rules]))

    return p, show


def show_plan_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = sorting_pb2_grpc.SortingServiceStub(channel)
    return _plan_out(
        stub.GetSortPlan(sorting_pb2.GetSortPlanRequest(line_id=args.line_id), timeout=TIMEOUT_S)
    )


def set_plan_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = sorting_pb2_grpc.SortingServiceStub(channel)
    request = sorting_pb2.SetSortPlanRequest(
        line_id=args.line_id,
        rules=args.rule,
        exception_chute=args.exception_chute,
        hold_chute=args.hold_chute,
    )
    return _plan_out(stub.SetSortPlan(request, timeout=TIMEOUT_S))


def _screening_out(s: sorting_pb2.Screening) -> tuple[Message, Any]:
    row = (s.parcel_id, s.status, s.reason, s.station_id, s.released_by, s.release_reason)
    headers = ("PARCEL", "STATUS", "REASON", "STATION", "RELEASED_BY", "RELEASE_REASON")
    return s, lambda: print(table(headers, [row]))


def release_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = sorting_pb2_grpc.SortingServiceStub(channel)
    request = sorting_pb2.ReleaseParcelRequest(parcel_id=args.parcel_id, reason=args.reason)
    return _screening_out(stub.ReleaseParcel(request, timeout=TIMEOUT_S))


def screening_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = sorting_pb2_grpc.SortingServiceStub(channel)
    request = sorting_pb2.GetScreeningRequest(parcel_id=args.parcel_id)
    return _screening_out(stub.GetScreening(request, timeout=TIMEOUT_S))


def _container_out(c: sorting_pb2.Container) -> tuple[Message, Any]:
    kind = sorting_pb2.ContainerType.Name(c.type).removeprefix("CONTAINER_TYPE_").lower()
    row = (c.container_id, kind, c.state, c.site or "-", c.vehicle_id or "-", c.cycles)
    headers = ("CONTAINER", "TYPE", "STATE", "SITE", "VEHICLE", "CYCLES")

    def show() -> None:
        print(table(headers, [row]))
        if c.parcel_ids:
            print("parcels: " + ", ".join(c.parcel_ids))

    return c, show


def container_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = sorting_pb2_grpc.SortingServiceStub(channel)
    request = sorting_pb2.GetContainerRequest(container_id=args.container_id)
    return _container_out(stub.GetContainer(request, timeout=TIMEOUT_S))


def record_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = sorting_pb2_grpc.SortingServiceStub(channel)
    move = sorting_pb2.ContainerMoved(
        container_id=args.container_id,
        type=sorting_pb2.ContainerType.Value(f"CONTAINER_TYPE_{args.type.upper()}"),
        action=sorting_pb2.ContainerAction.Value(f"CONTAINER_ACTION_{args.action.upper()}"),
        site=args.site,
        vehicle_id=args.vehicle,
        chute_id=args.chute,
        parcel_ids=args.parcel,
    )
    request = sorting_pb2.RecordContainerRequest(move=move)
    return _container_out(stub.RecordContainer(request, timeout=TIMEOUT_S))
