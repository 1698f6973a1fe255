"""One handler per ``lockerhub ops`` command: make the call, return the reply and its table."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from ops.client import TIMEOUT_S
from ops.render import (
    ALARM_HEADERS,
    CABINET_HEADERS,
    PARCEL_HEADERS,
    alarm_rows,
    cabinet_rows,
    enum_name,
    parcel_rows,
    table,
)

Handler = Callable[[argparse.Namespace, grpc.Channel], tuple[Message, Callable[[], None]]]


def _size(text: str) -> common_pb2.Dimensions:
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text.strip().lower())
    if m is None:
        raise ValueError(f"--size {text!r}: expected WxHxD in millimetres, e.g. 300x200x100")
    w, h, d = (int(g) for g in m.groups())
    return common_pb2.Dimensions(width_mm=w, height_mm=h, depth_mm=d)


def announce_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
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
                locker_consent={
                    "given": dispatch_pb2.LOCKER_CONSENT_GIVEN,
                    "refused": dispatch_pb2.LOCKER_CONSENT_REFUSED,
                }.get(
                    getattr(args, "consent", None) or "", dispatch_pb2.LOCKER_CONSENT_UNSPECIFIED
                ),
            )
        ]
    )
    response = stub.AnnounceParcels(request, timeout=TIMEOUT_S)
    rows = [
        (o.parcel_id, "yes" if o.accepted else "no", o.cabinet_id, o.compartment_id, o.reason)
        for o in response.outcomes
    ]
    return response, lambda: print(
        table(("PARCEL", "ACCEPTED", "CABINET", "COMPARTMENT", "REASON"), rows)
    )


def parcel_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    p = stub.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id=args.parcel_id), timeout=TIMEOUT_S)

    def show() -> None:
        print(table(PARCEL_HEADERS, parcel_rows([p])))
        print()
        history = [
            (
                enum_name(common_pb2.ParcelState, t.state, "PARCEL_STATE_"),
                t.ts_ms,
                t.actor,
                t.location,
            )
            for t in p.history
        ]
        print(table(("STATE", "TS_MS", "ACTOR", "LOCATION"), history))

    return p, show


def parcels_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
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
            timeout=TIMEOUT_S,
        )
        out.parcels.extend(page.parcels)
        token = page.next_page_token
        if not token:
            break
    return out, lambda: print(table(PARCEL_HEADERS, parcel_rows(out.parcels)))


def cabinets_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.ListCabinets(fleet_pb2.ListCabinetsRequest(site=args.site), timeout=TIMEOUT_S)
    return r, lambda: print(table(CABINET_HEADERS, cabinet_rows(r.cabinets)))


def cabinet_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    c = stub.GetCabinet(fleet_pb2.GetCabinetRequest(cabinet_id=args.cabinet_id), timeout=TIMEOUT_S)

    def show() -> None:
        print(table(CABINET_HEADERS, cabinet_rows([c])))
        print()
        rows = [
            (
                x.spec.compartment_id,
                enum_name(common_pb2.SizeClass, x.spec.size, "SIZE_CLASS_"),
                f"{x.spec.inner.width_mm}x{x.spec.inner.height_mm}x{x.spec.inner.depth_mm}",
                enum_name(common_pb2.TemperatureZone, x.spec.zone, "TEMPERATURE_ZONE_"),
                enum_name(common_pb2.CompartmentState, x.state, "COMPARTMENT_STATE_"),
                "open" if x.door_open else "closed",
                x.parcel_id,
            )
            for x in c.compartments
        ]
        print(table(("COMPARTMENT", "SIZE", "INNER_MM", "ZONE", "STATE", "DOOR", "PARCEL"), rows))

    return c, show


def open_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.OpenCompartment(
        fleet_pb2.OpenCompartmentRequest(
            cabinet_id=args.cabinet_id,
            compartment_id=args.compartment_id,
            reason=args.reason,
            ttl_seconds=args.ttl_s,
        ),
        timeout=TIMEOUT_S + max(args.ttl_s, 0),
    )
    row = (
        r.command_id,
        enum_name(common_pb2.CommandOutcome, r.outcome, "COMMAND_OUTCOME_"),
        "yes" if r.relay_fired else "no",
        r.detail,
    )
    return r, lambda: print(table(("COMMAND", "OUTCOME", "RELAY_FIRED", "DETAIL"), [row]))


def cancel_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    p = stub.CancelParcel(
        dispatch_pb2.CancelParcelRequest(parcel_id=args.parcel_id, reason=args.reason),
        timeout=TIMEOUT_S,
    )
    return p, lambda: print(table(PARCEL_HEADERS, parcel_rows([p])))


def withdraw_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    p = stub.WithdrawParcel(
        dispatch_pb2.WithdrawParcelRequest(parcel_id=args.parcel_id, courier_id=args.courier),
        timeout=TIMEOUT_S,
    )
    return p, lambda: print(table(PARCEL_HEADERS, parcel_rows([p])))


def reissue_code_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    """The recipient gets the new code from the hub's notifier; it is never printed here."""
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    p = stub.ReissuePickupCode(
        dispatch_pb2.ReissuePickupCodeRequest(parcel_id=args.parcel_id, reason=args.reason),
        timeout=TIMEOUT_S,
    )
    return p, lambda: print(table(PARCEL_HEADERS, parcel_rows([p])))


def sites_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.ListSites(fleet_pb2.ListSitesRequest(), timeout=TIMEOUT_S)
    rows = [
        (s.site_id, s.name, s.cabinets, s.compartments_free, s.compartments_total) for s in r.sites
    ]
    return r, lambda: print(table(("SITE", "NAME", "CABINETS", "FREE", "TOTAL"), rows))


def enable_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    c = stub.SetCompartmentEnabled(
        fleet_pb2.SetCompartmentEnabledRequest(
            cabinet_id=args.cabinet_id,
            compartment_id=args.compartment_id,
            enabled=args.enabled,
            reason=args.reason,
        ),
        timeout=TIMEOUT_S,
    )
    row = (
        c.spec.compartment_id,
        enum_name(common_pb2.CompartmentState, c.state, "COMPARTMENT_STATE_"),
    )
    return c, lambda: print(table(("COMPARTMENT", "STATE"), [row]))


def alarms_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    r = stub.ListAlarms(
        fleet_pb2.ListAlarmsRequest(site=args.site, include_cleared=args.all), timeout=TIMEOUT_S
    )
    return r, lambda: print(table(ALARM_HEADERS, alarm_rows(r.alarms)))


def alarm_action_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    stub = fleet_pb2_grpc.FleetServiceStub(channel)
    request = fleet_pb2.AlarmActionRequest(alarm_id=args.alarm_id, note=args.note)
    call = stub.AcknowledgeAlarm if args.action == "ack" else stub.ClearAlarm
    a = call(request, timeout=TIMEOUT_S)
    return a, lambda: print(table(ALARM_HEADERS, alarm_rows([a])))
