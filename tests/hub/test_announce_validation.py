"""AnnounceParcels request validation: the batch limit and each malformed field, named."""

from __future__ import annotations

import pytest

from hub.api import validate
from hub.errors import InvalidArgument
from hub.models import Dims, Zone
from lockerhub.v1 import common_pb2, dispatch_pb2


def _parcel(i: int, **fields: object) -> dispatch_pb2.ParcelAnnouncement:
    values: dict[str, object] = {
        "parcel_id": f"P{i:06d}",
        "destination_site": "S1",
        "dimensions": common_pb2.Dimensions(width_mm=300, height_mm=150, depth_mm=100),
        "weight_g": 1000,
        "recipient_phone": "138 1234-1234",
    }
    values.update(fields)
    return dispatch_pb2.ParcelAnnouncement(**values)  # type: ignore[arg-type]


def test_a_full_batch_is_accepted_and_one_more_parcel_is_refused() -> None:
    full = [_parcel(i) for i in range(validate.MAX_BATCH)]
    items = validate.announcements(dispatch_pb2.AnnounceParcelsRequest(parcels=full))
    assert len(items) == validate.MAX_BATCH
    first = items[0]
    assert (first.parcel_id, first.site, first.dims, first.weight_g) == (
        "P000000",
        "S1",
        Dims(300, 150, 100),
        1000,
    )
    assert (first.phone, first.zone, first.locker_consent) == (
        "13812341234",
        Zone.AMBIENT,
        "unspecified",
    )
    over = dispatch_pb2.AnnounceParcelsRequest(parcels=[*full, _parcel(validate.MAX_BATCH)])
    with pytest.raises(InvalidArgument, match=f"parcels: at most {validate.MAX_BATCH} parcels"):
        validate.announcements(over)
    with pytest.raises(InvalidArgument, match="parcels: at least one parcel is required"):
        validate.announcements(dispatch_pb2.AnnounceParcelsRequest())


def test_every_malformed_field_is_named_and_nothing_is_returned() -> None:
    request = dispatch_pb2.AnnounceParcelsRequest(
        parcels=[
            _parcel(0),
            _parcel(0, destination_site="bad site"),
            _parcel(2, dimensions=common_pb2.Dimensions(width_mm=0, height_mm=1, depth_mm=3001)),
            _parcel(3, weight_g=0, zone=99, locker_consent=7, recipient_phone="12"),
            _parcel(4, carrier_id="-x"),
        ]
    )
    with pytest.raises(InvalidArgument) as raised:
        validate.announcements(request)
    message = str(raised.value)
    assert message.startswith(
        "parcels[1].parcel_id: duplicates parcels[0]; parcels[1].destination_site: must be 1-64"
    )
    for expected in (
        "parcels[2].dimensions.width_mm: must be 1-3000",
        "parcels[2].dimensions.depth_mm: must be 1-3000",
        "parcels[3].weight_g: must be 1-100000",
        "parcels[3].zone: unknown temperature zone",
        "parcels[3].locker_consent: unknown locker consent value",
        "parcels[3].recipient_phone: must be 6-15 digits",
    ):
        assert expected in message
    assert "height_mm" not in message
    assert message.endswith(
        "parcels[4].carrier_id: must be 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit"
    )
    assert "12" not in message.replace("parcels[", "")  # the phone number is never echoed
