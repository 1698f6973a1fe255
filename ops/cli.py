"""``lockerhub ops``: the operators' gRPC client, with readable tables (or ``--json``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format

from lockerhub.v1 import dispatch_pb2, dispatch_pb2_grpc
from ops import commands, compliance, couriers, sorting
from ops.client import DEFAULT_TARGET, channel_for, report_rpc_error
from ops.commands import Handler
from ops.render import event_line


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
    p.add_argument(
        "--consent",
        choices=("given", "refused"),
        default=None,
        help="the recipient's consent to locker delivery (default: unspecified)",
    )
    p.set_defaults(func=_wrap(commands.announce_call))

    p = sub.add_parser("parcel", help="show one parcel with its history")
    p.add_argument("parcel_id")
    p.set_defaults(func=_wrap(commands.parcel_call))

    p = sub.add_parser("parcels", help="list parcels")
    p.add_argument("--site", default="")
    p.add_argument("--state", default="", help="e.g. reserved, deposited, picked_up")
    p.set_defaults(func=_wrap(commands.parcels_call))

    p = sub.add_parser("cabinets", help="list cabinets")
    p.add_argument("--site", default="")
    p.set_defaults(func=_wrap(commands.cabinets_call))

    p = sub.add_parser("cabinet", help="show a cabinet with its compartments")
    p.add_argument("cabinet_id")
    p.set_defaults(func=_wrap(commands.cabinet_call))

    p = sub.add_parser("open", help="open a compartment remotely (audited)")
    p.add_argument("cabinet_id")
    p.add_argument("compartment_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--ttl-s", type=int, default=0)
    p.set_defaults(func=_wrap(commands.open_call))

    p = sub.add_parser("cancel", help="cancel a parcel before deposit (frees its compartment)")
    p.add_argument("parcel_id")
    p.add_argument("--reason", default="")
    p.set_defaults(func=_wrap(commands.cancel_call))

    p = sub.add_parser("withdraw", help="a courier takes back an expired parcel (opens the door)")
    p.add_argument("parcel_id")
    p.add_argument("--courier", default="")
    p.set_defaults(func=_wrap(commands.withdraw_call))

    sorting.register(sub, _wrap)

    p = sub.add_parser(
        "reissue-code", help="a new pickup code for a deposited parcel (the old one stops working)"
    )
    p.add_argument("parcel_id")
    p.add_argument("--reason", required=True, help="why (kept in the parcel's history)")
    p.set_defaults(func=_wrap(commands.reissue_code_call))

    p = sub.add_parser("sites", help="list sites with cabinets and free compartments")
    p.set_defaults(func=_wrap(commands.sites_call))

    for name, enabled in (("disable", False), ("enable", True)):
        p = sub.add_parser(name, help=f"{name} a compartment (audited)")
        p.add_argument("cabinet_id")
        p.add_argument("compartment_id")
        p.add_argument("--reason", default="", required=not enabled)
        p.set_defaults(func=_wrap(commands.enable_call), enabled=enabled)

    p = sub.add_parser("alarms", help="list alarms (open ones unless --all)")
    p.add_argument("--site", default="")
    p.add_argument("--all", action="store_true", help="include cleared alarms")
    p.set_defaults(func=_wrap(commands.alarms_call))

    for name in ("ack", "clear"):
        p = sub.add_parser(name, help=f"{'acknowledge' if name == 'ack' else 'clear'} an alarm")
        p.add_argument("alarm_id")
        p.add_argument("--note", default="")
        p.set_defaults(func=_wrap(commands.alarm_action_call), action=name)

    compliance.register(sub, _wrap)
    couriers.register(sub, _wrap)

    p = sub.add_parser("watch", help="follow live parcel and alarm events (Ctrl-C stops)")
    p.add_argument("--site", default="")
    p.add_argument("--cursor", default="", help="resume after this cursor (printed per event)")
    p.add_argument("--count", type=int, default=0, help="stop after this many events")
    p.set_defaults(func=_watch)


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
            return report_rpc_error(exc)
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
                return report_rpc_error(exc)
        except KeyboardInterrupt:
            call.cancel()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m ops.cli``) for when the root CLI is not at hand."""
    parser = argparse.ArgumentParser(prog="lockerhub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
