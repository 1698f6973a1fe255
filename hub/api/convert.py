"""Domain records -> API messages. Phones appear masked only."""

from __future__ import annotations

from hub.models import CompartmentRecord, DeviceRecord, Dims, ParcelRecord, size_to_proto
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
        history=[
            dispatch_pb2.ParcelTransition(
                state=t.state.to_proto(), ts_ms=t.ts_ms, actor=t.actor, location=t.location
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
