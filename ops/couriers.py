"""``lockerhub ops carrier …`` and ``lockerhub ops courier …``: carriers, quotas, couriers, their
records and the bad-conduct list. A courier's keypad code is read from a file or stdin, never
from the command line (where ``ps`` and shell history would keep it)."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from lockerhub.v1 import carriers_pb2, carriers_pb2_grpc
from ops.client import TIMEOUT_S
from ops.render import enum_name, safe, table

Wrap = Callable[[Any], Callable[[argparse.Namespace], int]]
COURIER_HEADERS = ("COURIER", "CARRIER", "NAME", "PHONE", "STATUS", "CODE", "BAD_CONDUCT")
_STATUS = {
    "active": carriers_pb2.COURIER_STATUS_ACTIVE,
    "suspended": carriers_pb2.COURIER_STATUS_SUSPENDED,
    "barred": carriers_pb2.COURIER_STATUS_BARRED,
}


def _utc(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.UTC).strftime("%Y-%m-%d %H:%M") if ms else ""


def courier_rows(couriers: Any) -> list[tuple[Any, ...]]:
    return [
        (
            c.courier_id,
            c.carrier_id,
            c.name,
            c.phone_masked,
            enum_name(carriers_pb2.CourierStatus, c.status, "COURIER_STATUS_"),
            "yes" if c.has_code else "no",
            "yes" if c.on_bad_conduct_list else "",
        )
        for c in couriers
    ]


def _record(r: carriers_pb2.CourierRecord) -> Callable[[], None]:
    def show() -> None:
        print(table(COURIER_HEADERS, courier_rows([r.courier])))
        print(
            f"\nscore {r.score}/100  deposits {r.deposits}  withdrawals {r.withdrawals}"
            + (f"  bad-conduct list: {safe(r.bad_conduct_reason)}" if r.bad_conduct_reason else "")
        )
        rows = [(_utc(e.ts_ms), e.kind, e.parcel_id, e.actor, e.detail) for e in r.entries]
        if rows:
            print()
            print(table(("UTC", "KIND", "PARCEL", "BY", "DETAIL"), rows))

    return show


def _couriers(channel: grpc.Channel) -> carriers_pb2_grpc.CourierServiceStub:
    return carriers_pb2_grpc.CourierServiceStub(channel)


def show_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    r = _couriers(channel).GetCourierRecord(
        carriers_pb2.GetCourierRequest(courier_id=args.courier_id), timeout=TIMEOUT_S
    )
    return r, _record(r)


def list_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    r = _couriers(channel).ListCouriers(
        carriers_pb2.ListCouriersRequest(carrier_id=args.carrier), timeout=TIMEOUT_S
    )
    return r, lambda: print(table(COURIER_HEADERS, courier_rows(r.couriers)))


def register_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    c = _couriers(channel).RegisterCourier(
        carriers_pb2.RegisterCourierRequest(
            courier_id=args.courier_id, carrier_id=args.carrier, name=args.name, phone=args.phone
        ),
        timeout=TIMEOUT_S,
    )
    return c, lambda: print(table(COURIER_HEADERS, courier_rows([c])))


def status_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    c = _couriers(channel).SetCourierStatus(
        carriers_pb2.SetCourierStatusRequest(
            courier_id=args.courier_id, status=_STATUS[args.status], reason=args.reason
        ),
        timeout=TIMEOUT_S,
    )
    return c, lambda: print(table(COURIER_HEADERS, courier_rows([c])))


def set_code_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    source = sys.stdin if args.code_file == "-" else open(args.code_file)  # noqa: SIM115
    with source:
        code = source.readline(64).strip()
    c = _couriers(channel).SetCourierCode(
        carriers_pb2.SetCourierCodeRequest(courier_id=args.courier_id, code=code),
        timeout=TIMEOUT_S,
    )
    return c, lambda: print(table(COURIER_HEADERS, courier_rows([c])))


def token_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    """The token is the courier's credential until it expires: printed for the courier's app."""
    r = _couriers(channel).IssueCourierToken(
        carriers_pb2.IssueCourierTokenRequest(courier_id=args.courier_id, ttl_seconds=args.ttl_s),
        timeout=TIMEOUT_S,
    )
    return r, lambda: print(f"{r.token}\nexpires {_utc(r.expires_ms)} UTC")


def complain_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    r = _couriers(channel).FileComplaint(
        carriers_pb2.FileComplaintRequest(
            courier_id=args.courier_id, parcel_id=args.parcel, detail=args.detail
        ),
        timeout=TIMEOUT_S,
    )
    return r, _record(r)


def bar_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = _couriers(channel)
    call = stub.AddToBadConductList if args.bar else stub.RemoveFromBadConductList
    r = call(
        carriers_pb2.BadConductRequest(courier_id=args.courier_id, reason=args.reason),
        timeout=TIMEOUT_S,
    )
    return r, _record(r)


def barred_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    r = _couriers(channel).ListBadConduct(carriers_pb2.ListBadConductRequest(), timeout=TIMEOUT_S)
    rows = [(e.courier_id, e.carrier_id, _utc(e.since_ms), e.actor, e.reason) for e in r.entries]
    return r, lambda: print(table(("COURIER", "CARRIER", "SINCE", "BY", "REASON"), rows))


def carriers_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = carriers_pb2_grpc.CarrierServiceStub(channel)
    if args.register:
        c = stub.RegisterCarrier(
            carriers_pb2.RegisterCarrierRequest(carrier_id=args.register, name=args.name),
            timeout=TIMEOUT_S,
        )
        r: Any = carriers_pb2.ListCarriersResponse(carriers=[c])
    else:
        r = stub.ListCarriers(carriers_pb2.ListCarriersRequest(), timeout=TIMEOUT_S)
    rows = [(c.carrier_id, c.name, _utc(c.created_ms)) for c in r.carriers]
    return r, lambda: print(table(("CARRIER", "NAME", "SINCE"), rows))


def quota_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = carriers_pb2_grpc.CarrierServiceStub(channel)
    if args.set:
        q = stub.SetCarrierQuota(
            carriers_pb2.SetCarrierQuotaRequest(
                quota=carriers_pb2.CarrierQuota(
                    carrier_id=args.carrier,
                    cabinet_id=args.cabinet,
                    max_compartments=args.max,
                    reserved_compartments=[c for c in args.reserve.split(",") if c],
                )
            ),
            timeout=TIMEOUT_S,
        )
        r: Any = carriers_pb2.ListCarrierQuotasResponse(quotas=[q])
    else:
        r = stub.ListCarrierQuotas(
            carriers_pb2.ListCarrierQuotasRequest(carrier_id=args.carrier, cabinet_id=args.cabinet),
            timeout=TIMEOUT_S,
        )
    rows = [
        (q.carrier_id, q.cabinet_id, q.max_compartments or "", ",".join(q.reserved_compartments))
        for q in r.quotas
    ]
    return r, lambda: print(table(("CARRIER", "CABINET", "MAX", "RESERVED"), rows))


def register(sub: Any, wrap: Wrap) -> None:
    """Add ``carriers``, ``quota`` and ``courier …`` to ``lockerhub ops``."""
    p = sub.add_parser("carriers", help="list carriers (or --register ID --name NAME)")
    p.add_argument("--register", default="")
    p.add_argument("--name", default="")
    p.set_defaults(func=wrap(carriers_call))

    p = sub.add_parser("quota", help="list per-carrier quotas (or --set one)")
    p.add_argument("--carrier", default="")
    p.add_argument("--cabinet", default="")
    p.add_argument("--set", action="store_true", help="replace CARRIER's quota on CABINET")
    p.add_argument("--max", type=int, default=0, help="max compartments (0 = no cap)")
    p.add_argument("--reserve", default="", help="compartments held for the carrier, A01,A02")
    p.set_defaults(func=wrap(quota_call))

    courier = sub.add_parser("courier", help="couriers, their conduct and the bad-conduct list")
    cs = courier.add_subparsers(dest="courier_command", required=True)
    p = cs.add_parser("show", help="a courier's record: conduct entries and score")
    p.add_argument("courier_id")
    p.set_defaults(func=wrap(show_call))
    p = cs.add_parser("list", help="couriers (a carrier's token sees its own only)")
    p.add_argument("--carrier", default="")
    p.set_defaults(func=wrap(list_call))
    p = cs.add_parser("register", help="register a courier of a carrier")
    p.add_argument("courier_id")
    p.add_argument("--carrier", default="")
    p.add_argument("--name", required=True)
    p.add_argument("--phone", required=True)
    p.set_defaults(func=wrap(register_call))
    p = cs.add_parser("status", help="set active, suspended or barred (audited)")
    p.add_argument("courier_id")
    p.add_argument("status", choices=sorted(_STATUS))
    p.add_argument("--reason", required=True)
    p.set_defaults(func=wrap(status_call))
    p = cs.add_parser("set-code", help="set the keypad code (first line of --code-file, - = stdin)")
    p.add_argument("courier_id")
    p.add_argument("--code-file", default="-")
    p.set_defaults(func=wrap(set_code_call))
    p = cs.add_parser("token", help="issue a signed app token (QR) for the courier")
    p.add_argument("courier_id")
    p.add_argument("--ttl-s", type=int, default=0)
    p.set_defaults(func=wrap(token_call))
    p = cs.add_parser("complain", help="file a complaint against a courier")
    p.add_argument("courier_id")
    p.add_argument("--detail", required=True)
    p.add_argument("--parcel", default="")
    p.set_defaults(func=wrap(complain_call))
    for name, bar in (("bar", True), ("unbar", False)):
        p = cs.add_parser(name, help=f"{'add to' if bar else 'remove from'} the bad-conduct list")
        p.add_argument("courier_id")
        p.add_argument("--reason", required=True)
        p.set_defaults(func=wrap(bar_call), bar=bar)
    p = cs.add_parser("barred", help="the bad-conduct list")
    p.set_defaults(func=wrap(barred_call))
