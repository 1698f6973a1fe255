"""``lockerhub ops``: the operators' gRPC client, with readable tables (or ``--json``)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
_TIMEOUT_S = 30.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lockerhub ops <command>``."""
    ops = subparsers.add_parser("ops", help="operator commands against a running hub (gRPC)")
    ops.add_argument("--target", default=DEFAULT_TARGET, help="hub gRPC address HOST:PORT")
    ops.add_argument("--json", action="store_true", help="print JSON instead of tables")
    sub = ops.add_subparsers(dest="ops_command", required=True)

    p = sub.add_parser("announce", help="announce a parcel (allocates and reserves a compartment)")
    p.add_argument("--parcel", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--size", required=True, help="WxHxD in millimetres, e.g. 300x200x100")
    p.add_argument("--weight-g", type=int, required=True)
    p.add_argument("--phone", required=True)
    p.add_argument("--chilled", action="store_true")
    p.add_argument("--no-ewaybill", action="store_true")
    p.add_argument("--reusable", action="store_true")
    p.set_defaults(func=_announce)

    p = sub.add_parser("parcel", help="show one parcel with its history")
    p.add_argument("parcel_id")
    p.set_defaults(func=_parcel)

    p = sub.add_parser("parcels", help="list parcels")
    p.add_argument("--site", default="")
    p.add_argument("--state", default="", help="e.g. reserved, deposited, picked_up")
    p.set_defaults(func=_parcels)

    p = sub.add_parser("cabinets", help="list cabinets")
    p.add_argument("--site", default="")
    p.set_defaults(func=_cabinets)

    p = sub.add_parser("cabinet", help="show a cabinet with its compartments")
    p.add_argument("cabinet_id")
    p.set_defaults(func=_cabinet)

    p = sub.add_parser("open", help="open a compartment remotely (audited)")
    p.add_argument("cabinet_id")
    p.add_argument("compartment_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--ttl-s", type=int, default=0)
    p.set_defaults(func=_open)


Handler = Callable[[argparse.Namespace, grpc.Channel], tuple[Message, Callable[[], None]]]


def run(args: argparse.Namespace, handler: Handler) -> int:
    """Run one command; gRPC errors become ``error: <status>: <details>`` and exit 1."""
    with grpc.insecure_channel(args.target) as channel:
        try:
            message, show = handler(args, channel)
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            print(f"error: {code}: {details}", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json_format.MessageToJson(message, indent=2))
    else:
        show()
    return 0


def _wrap(handler: Handler) -> Callable[[argparse.Namespace], int]:
    return lambda args: run(args, handler)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _enum(wrapper: Any, value: int, prefix: str) -> str:
    try:
        return str(wrapper.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return str(value)


def _size(text: str) -> common_pb2.Dimensions:
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text.strip().lower())
    if m is None:
        raise ValueError(f"--size {text!r}: expected WxHxD in millimetres, e.g. 300x200x100")
    w, h, d = (int(g) for g in m.groups())
    return common_pb2.Dimensions(width_mm=w, height_mm=h, depth_mm=d)


def _announce_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    request = dispatch_pb2.AnnounceParcelsRequest(
        parcels=[
            dispatch_pb2.ParcelAnnouncement(
                parcel_id=args.parcel,
                destination_site=args.site,
                dimensions=_size(args.size),
                weight_g=args.weight_g,
                zone=common_pb2.TEMPERATURE_ZONE_CHILLED
                if args.chilled
                else common_pb2.TEMPERATURE_ZONE_AMBIENT,
                recipient_phone=args.phone,
                electronic_waybill=not args.no_ewaybill,
                reusable_container=args.reusable,
            )
        ]
    )
    response = stub.AnnounceParcels(request, timeout=_TIMEOUT_S)
    rows = [
        (o.parcel_id, "yes" if o.accepted else "no", o.cabinet_id, o.compartment_id, o.reason)
        for o in response.outcomes
    ]
    return response, lambda: print(
        table(("PARCEL", "ACCEPTED", "CABINET", "COMPARTMENT", "REASON"), rows)
    )


def _parcel_rows(parcels: Sequence[dispatch_pb2.Parcel]) -> list[tuple[Any, ...]]:
    return [
        (
            p.parcel_id,
            _enum(common_pb2.ParcelState, p.state, "PARCEL_STATE_"),
            p.destination_site,
            p.cabinet_id,
            p.compartment_id,
            p.recipient_phone_masked,
        )
        for p in parcels
    ]


_PARCEL_HEADERS = ("PARCEL", "STATE", "SITE", "CABINET", "COMPARTMENT", "PHONE")


def _parcel_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    p = stub.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id=args.parcel_id), timeout=_TIMEOUT_S)

    def show() -> None:
        print(table(_PARCEL_HEADERS, _parcel_rows([p])))
        print()
        history = [
            (_enum(common_pb2.ParcelState, t.state, "PARCEL_STATE_"), t.ts_ms, t.actor, t.location)
            for t in p.history
        ]
        print(table(("STATE", "TS_MS", "ACTOR", "LOCATION"), history))

    return p, show


def _parcels_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    state: Any = 0
    if args.state:
        try:
            state = common_pb2.ParcelState.Value(f"PARCEL_STATE_{args.state.upper()}")
        except ValueError:
            raise ValueError(f"--state {args.state!r} is not a parcel state") from None
    out = dispatch_pb2.ListParcelsResponse()
    token = ""
    while True:  # follow pages so the table is complete
        page = stub.ListParcels(
            dispatch_pb2.ListParcelsRequest(
                site=args.site, state=state, page_size=500, page_token=token
            ),
            timeout=_TIMEOUT_S,
        )
        out.parcels.extend(page.parcels)
        token = page.next_page_token
        if not token:
            break
    return out, lambda: print(table(_PARCEL_HEADERS, _parcel_rows(out.parcels)))


def _cabinet_rows(cabinets: Sequence[fleet_pb2.Cabinet]) -> list[tuple[Any, ...]]:
    return [
        (
            c.cabinet_id,
            c.site,
            "online" if c.online else "offline",
            c.boot_count,
            f"{c.energy_wh:.1f}",
            f"{c.power_w:.1f}",
        )
        for c in cabinets
    ]


_CABINET_HEADERS = ("CABINET", "SITE", "STATUS", "BOOT", "ENERGY_WH", "POWER_W")


def _cabinets_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.ListCabinets(fleet_pb2.ListCabinetsRequest(site=args.site), timeout=_TIMEOUT_S)
    return r, lambda: print(table(_CABINET_HEADERS, _cabinet_rows(r.cabinets)))


def _cabinet_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    c = stub.GetCabinet(fleet_pb2.GetCabinetRequest(cabinet_id=args.cabinet_id), timeout=_TIMEOUT_S)

    def show() -> None:
        print(table(_CABINET_HEADERS, _cabinet_rows([c])))
        print()
        rows = [
            (
                x.spec.compartment_id,
                _enum(common_pb2.SizeClass, x.spec.size, "SIZE_CLASS_"),
                f"{x.spec.inner.width_mm}x{x.spec.inner.height_mm}x{x.spec.inner.depth_mm}",
                _enum(common_pb2.TemperatureZone, x.spec.zone, "TEMPERATURE_ZONE_"),
                _enum(common_pb2.CompartmentState, x.state, "COMPARTMENT_STATE_"),
                "open" if x.door_open else "closed",
                x.parcel_id,
            )
            for x in c.compartments
        ]
        print(table(("COMPARTMENT", "SIZE", "INNER_MM", "ZONE", "STATE", "DOOR", "PARCEL"), rows))

    return c, show


def _open_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.OpenCompartment(
        fleet_pb2.OpenCompartmentRequest(
            cabinet_id=args.cabinet_id,
            compartment_id=args.compartment_id,
            reason=args.reason,
            ttl_seconds=args.ttl_s,
        ),
        timeout=_TIMEOUT_S + max(args.ttl_s, 0),
    )
    row = (
        r.command_id,
        _enum(common_pb2.CommandOutcome, r.outcome, "COMMAND_OUTCOME_"),
        "yes" if r.relay_fired else "no",
        r.detail,
    )
    return r, lambda: print(table(("COMMAND", "OUTCOME", "RELAY_FIRED", "DETAIL"), [row]))


_announce = _wrap(_announce_call)
_parcel = _wrap(_parcel_call)
_parcels = _wrap(_parcels_call)
_cabinets = _wrap(_cabinets_call)
_cabinet = _wrap(_cabinet_call)
_open = _wrap(_open_call)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m hub.ops``) for when the root CLI is not at hand."""
    parser = argparse.ArgumentParser(prog="lockerhub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
