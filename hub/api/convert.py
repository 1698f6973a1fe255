"""Domain records -> API messages. Phones appear masked only."""

from __future__ import annotations

from hub.models import (
    AlarmRecord,
    CompartmentRecord,
    DeviceRecord,
    Dims,
    ParcelRecord,
    ParcelState,
    SiteRecord,
    alarm_kind_to_proto,
    size_to_proto,
)
from hub.store.repo.journal import JournalEntry
from lockerhub.v1 import common_pb2, dispatch_pb2, fleet_pb2


def dims(d: Dims) -> common_pb2.Dimensions:
    return common_pb2.Dimensions(width_mm=d.width_mm, height_mm=d.height_mm, depth_mm=d.depth_mm)


def parcel(p: ParcelRecord) -> dispatch_pb2.Parcel:
    return dispatch_pb2.Parcel(
        parcel_id=p.parcel_id,
        state=p.state.to_proto(),
        destination_site=p.site,
        cabinet_id=p.cabinet_id,
        compartment_id=p.compartment_id,
        recipient_phone_masked=p.phone_masked,
        dimensions=dims(p.dims),
        weight_g=p.weight_g,
        zone=p.zone.to_proto(),
        electronic_waybill=p.electronic_waybill,
        reusable_container=p.reusable_container,
        pickup_deadline_ms=p.pickup_deadline_ms,
        carrier_id=p.carrier_id,
        history=[
            dispatch_pb2.ParcelTransition(
                state=t.state.to_proto(),
                ts_ms=t.ts_ms,
                actor=t.actor,
                location=t.location,
                courier_id=t.courier,
            )
            for t in p.history
        ],
    )


def compartment(c: CompartmentRecord) -> fleet_pb2.Compartment:
    return fleet_pb2.Compartment(
        spec=common_pb2.CompartmentSpec(
            compartment_id=c.compartment_id,
            size=size_to_proto(c.size),
            inner=dims(c.inner),
            max_weight_g=c.max_weight_g,
            zone=c.zone.to_proto(),
        ),
        state=c.state.to_proto(),
        door_open=c.door_open,
        item_present=c.item_present,
        parcel_id=c.parcel_id,
    )


def cabinet(d: DeviceRecord, *, online: bool) -> fleet_pb2.Cabinet:
    return fleet_pb2.Cabinet(
        cabinet_id=d.device_id,
        site=d.site,
        online=online,
        boot_count=d.boot_count,
        last_seen_ms=d.last_seen_ms,
        energy_wh=d.energy_wh,
        power_w=d.power_w,
        compartments=[compartment(c) for c in d.compartments],
    )


def site(s: SiteRecord) -> fleet_pb2.Site:
    return fleet_pb2.Site(
        site_id=s.site_id,
        name=s.name,
        lat=s.lat,
        lon=s.lon,
        cabinets=s.cabinets,
        compartments_free=s.compartments_free,
        compartments_total=s.compartments_total,
    )


def alarm(a: AlarmRecord) -> fleet_pb2.Alarm:
    return fleet_pb2.Alarm(
        alarm_id=str(a.alarm_id),
        kind=alarm_kind_to_proto(a.kind),
        site=a.site,
        device_id=a.device_id,
        compartment_id=a.compartment_id,
        detail=a.detail,
        raised_ms=a.raised_ms,
        status=a.status,
        acknowledged_by=a.acknowledged_by,
    )


def live_event(e: JournalEntry) -> dispatch_pb2.LiveEvent:
    event = dispatch_pb2.LiveEvent(cursor=str(e.cursor), ts_ms=e.ts_ms)
    if e.kind == "parcel":
        event.parcel.parcel_id = e.ref
        event.parcel.transition.CopyFrom(
            dispatch_pb2.ParcelTransition(
                state=ParcelState(e.state).to_proto(),
                ts_ms=e.ts_ms,
                actor=e.actor,
                location=e.location,
            )
        )
    elif e.kind == "screening":
        event.screening.CopyFrom(
            dispatch_pb2.ScreeningEvent(
                parcel_id=e.ref, status=e.state, actor=e.actor, station_id=e.device
            )
        )
    else:
        event.alarm.CopyFrom(
            dispatch_pb2.AlarmEvent(
                alarm_id=e.ref,
                kind=alarm_kind_to_proto(e.alarm_kind),
                site=e.site,
                device_id=e.device,
                compartment_id=e.compartment,
                status=e.state,
            )
        )
    return event
