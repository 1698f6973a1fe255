"""``lockerhub ops``: the operators' gRPC client, with readable tables (or ``--json``)."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
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
    ops.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="file holding the API bearer token (or set LOCKERHUB_TOKEN)",
    )
    ops.add_argument(
        "--tls-ca", type=Path, default=None, help="PEM CA certificate: talk TLS to the hub"
    )
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

    p = sub.add_parser("cancel", help="cancel a parcel before deposit (frees its compartment)")
    p.add_argument("parcel_id")
    p.add_argument("--reason", default="")
    p.set_defaults(func=_wrap(_cancel_call))

    p = sub.add_parser("withdraw", help="a courier takes back an expired parcel (opens the door)")
    p.add_argument("parcel_id")
    p.add_argument("--courier", default="")
    p.set_defaults(func=_wrap(_withdraw_call))

    p = sub.add_parser("sites", help="list sites with cabinets and free compartments")
    p.set_defaults(func=_wrap(_sites_call))

    for name, enabled in (("disable", False), ("enable", True)):
        p = sub.add_parser(name, help=f"{name} a compartment (audited)")
        p.add_argument("cabinet_id")
        p.add_argument("compartment_id")
        p.add_argument("--reason", default="", required=not enabled)
        p.set_defaults(func=_wrap(_enable_call), enabled=enabled)

    p = sub.add_parser("alarms", help="list alarms (open ones unless --all)")
    p.add_argument("--site", default="")
    p.add_argument("--all", action="store_true", help="include cleared alarms")
    p.set_defaults(func=_wrap(_alarms_call))

    for name in ("ack", "clear"):
        p = sub.add_parser(name, help=f"{'acknowledge' if name == 'ack' else 'clear'} an alarm")
        p.add_argument("alarm_id")
        p.add_argument("--note", default="")
        p.set_defaults(func=_wrap(_alarm_action_call), action=name)

    p = sub.add_parser("watch", help="follow live parcel and alarm events (Ctrl-C stops)")
    p.add_argument("--site", default="")
    p.add_argument("--cursor", default="", help="resume after this cursor (printed per event)")
    p.add_argument("--count", type=int, default=0, help="stop after this many events")
    p.set_defaults(func=_watch)


Handler = Callable[[argparse.Namespace, grpc.Channel], tuple[Message, Callable[[], None]]]


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str) -> None:
        self._md = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._md]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


def _token(args: argparse.Namespace) -> str:
    if getattr(args, "token_file", None) is not None:
        try:
            return str(args.token_file.read_text().strip())
        except OSError as exc:
            raise ValueError(f"--token-file: {exc}") from exc
    return os.environ.get("LOCKERHUB_TOKEN", "").strip()


def channel_for(args: argparse.Namespace) -> grpc.Channel:
    """A channel to the hub: TLS with ``--tls-ca``, with the bearer token when there is one."""
    if getattr(args, "tls_ca", None) is not None:
        try:
            ca = args.tls_ca.read_bytes()
        except OSError as exc:
            raise ValueError(f"--tls-ca: {exc}") from exc
        channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(ca))
    else:
        channel = grpc.insecure_channel(args.target)
    token = _token(args)
    return grpc.intercept_channel(channel, _BearerToken(token)) if token else channel


def _error(exc: grpc.RpcError) -> int:
    code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
    details = exc.details() if hasattr(exc, "details") else str(exc)
    print(f"error: {code}: {details}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace, handler: Handler) -> int:
    """Run one command; gRPC errors become ``error: <status>: <details>`` and exit 1."""
    try:
        channel = channel_for(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with channel:
        try:
            message, show = handler(args, channel)
        except grpc.RpcError as exc:
            return _error(exc)
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


def _cancel_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    p = stub.CancelParcel(
        dispatch_pb2.CancelParcelRequest(parcel_id=args.parcel_id, reason=args.reason),
        timeout=_TIMEOUT_S,
    )
    return p, lambda: print(table(_PARCEL_HEADERS, _parcel_rows([p])))


def _withdraw_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    p = stub.WithdrawParcel(
        dispatch_pb2.WithdrawParcelRequest(parcel_id=args.parcel_id, courier_id=args.courier),
        timeout=_TIMEOUT_S,
    )
    return p, lambda: print(table(_PARCEL_HEADERS, _parcel_rows([p])))


def _sites_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.ListSites(fleet_pb2.ListSitesRequest(), timeout=_TIMEOUT_S)
    rows = [
        (s.site_id, s.name, s.cabinets, s.compartments_free, s.compartments_total) for s in r.sites
    ]
    return r, lambda: print(table(("SITE", "NAME", "CABINETS", "FREE", "TOTAL"), rows))


def _enable_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    c = stub.SetCompartmentEnabled(
        fleet_pb2.SetCompartmentEnabledRequest(
            cabinet_id=args.cabinet_id,
            compartment_id=args.compartment_id,
            enabled=args.enabled,
            reason=args.reason,
        ),
        timeout=_TIMEOUT_S,
    )
    row = (c.spec.compartment_id, _enum(common_pb2.CompartmentState, c.state, "COMPARTMENT_STATE_"))
    return c, lambda: print(table(("COMPARTMENT", "STATE"), [row]))


_ALARM_HEADERS = ("ALARM", "KIND", "SITE", "DEVICE", "COMPARTMENT", "STATUS", "RAISED_MS", "DETAIL")


def _alarm_rows(alarms: Sequence[fleet_pb2.Alarm]) -> list[tuple[Any, ...]]:
    return [
        (
            a.alarm_id,
            _enum(common_pb2.AlarmKind, a.kind, "ALARM_KIND_"),
            a.site,
            a.device_id,
            a.compartment_id,
            a.status + (f" ({a.acknowledged_by})" if a.acknowledged_by else ""),
            a.raised_ms,
            a.detail,
        )
        for a in alarms
    ]


def _alarms_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.ListAlarms(
        fleet_pb2.ListAlarmsRequest(site=args.site, include_cleared=args.all), timeout=_TIMEOUT_S
    )
    return r, lambda: print(table(_ALARM_HEADERS, _alarm_rows(r.alarms)))


def _alarm_action_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    request = fleet_pb2.AlarmActionRequest(alarm_id=args.alarm_id, note=args.note)
    call = stub.AcknowledgeAlarm if args.action == "ack" else stub.ClearAlarm
    a = call(request, timeout=_TIMEOUT_S)
    return a, lambda: print(table(_ALARM_HEADERS, _alarm_rows([a])))


def event_line(e: dispatch_pb2.LiveEvent) -> str:
    """One live event as a fixed-width line: cursor, time, what, state, actor/where."""
    when = _dt.datetime.fromtimestamp(e.ts_ms / 1000, tz=_dt.UTC).strftime("%H:%M:%S")
    if e.WhichOneof("body") == "parcel":
        t = e.parcel.transition
        what = f"parcel {e.parcel.parcel_id}"
        state = _enum(common_pb2.ParcelState, t.state, "PARCEL_STATE_")
        extra = f"{t.actor} @ {t.location}"
    else:
        a = e.alarm
        what = f"alarm {a.alarm_id} {_enum(common_pb2.AlarmKind, a.kind, 'ALARM_KIND_')}"
        state = a.status
        extra = "/".join(x for x in (a.site, a.device_id, a.compartment_id) if x)
    return f"{e.cursor:>8}  {when}  {what:<36}  {state:<12}  {extra}"


def _watch(args: argparse.Namespace) -> int:
    """Print live events as they come; the cursor column lets a later watch resume."""
    try:
        channel = channel_for(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seen = 0
    with channel:
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        call = stub.WatchEvents(dispatch_pb2.WatchEventsRequest(cursor=args.cursor, site=args.site))
        if not args.json:
            print(
                f"{'CURSOR':>8}  {'UTC':<8}  {'WHAT':<36}  {'STATE':<12}  WHO / WHERE", flush=True
            )
        try:
            for event in call:
                if args.json:
                    print(json_format.MessageToJson(event, indent=None), flush=True)
                else:
                    print(event_line(event), flush=True)
                seen += 1
                if args.count and seen >= args.count:
                    call.cancel()
                    break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                return _error(exc)
        except KeyboardInterrupt:
            call.cancel()
    return 0


_announce = _wrap(_announce_call)
_parcel = _wrap(_parcel_call)
_parcels = _wrap(_parcels_call)
_cabinets = _wrap(_cabinets_call)
_cabinet = _wrap(_cabinet_call)
_open = _wrap(_open_call)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m ops.cli``) for when the root CLI is not at hand."""
    parser = argparse.ArgumentParser(prog="lockerhub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
