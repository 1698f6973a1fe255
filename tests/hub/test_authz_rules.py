"""Issue 18: every rule of the device-event authorization table (hub.ingest.authz), on plain data.

The hub-level counterpart (real devices through a broker) is tests/hub/test_authz.py; these tests
run in well under a second, so ``make mutate`` can run them for each mutant.
"""

from __future__ import annotations

import itertools

import pytest

from hub.errors import Unauthorized
from hub.ingest import authz
from hub.ingest.authz import Scope
from hub.models import Dims, ParcelRecord, ParcelState, Zone
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2

KINDS = (
    "cabinet",
    "sorting_line",
    "charging_pile",
    "screening_station",
    "unprovisioned",
    "unspecified",
    "",
)
BODIES = (
    *(f.name for f in device_pb2.DeviceEvent.DESCRIPTOR.oneofs_by_name["body"].fields),
    "",
)
# The whole table, written out by hand (docs/security.md): (kind, body) -> scope; the rest refused.
ALLOWED: dict[tuple[str, str], Scope] = {
    ("cabinet", "deposited"): Scope.OWN_COMPARTMENT,
    ("cabinet", "picked_up"): Scope.OWN_COMPARTMENT,
    ("cabinet", "pickup_code_rejected"): Scope.OWN,
    ("cabinet", "door_changed"): Scope.OWN,
    ("cabinet", "alarm"): Scope.OWN,
    ("sorting_line", "parcel_sorted"): Scope.SITE_PARCEL,
    ("sorting_line", "parcel_rejected"): Scope.OWN,
    ("sorting_line", "alarm"): Scope.OWN,
    ("sorting_line", "sort_plan_applied"): Scope.OWN,
    ("sorting_line", "container_moved"): Scope.OWN,
    ("screening_station", "parcel_screened"): Scope.SITE_PARCEL,
    ("screening_station", "alarm"): Scope.OWN,
    ("charging_pile", "alarm"): Scope.OWN,
}
PAIRS = list(itertools.product(KINDS, BODIES))
TOPIC = Topic("S1", "CAB", Kind.EVENT)


def test_constants_and_table() -> None:
    assert (
        authz.CABINET,
        authz.SORTING_LINE,
        authz.CHARGING_PILE,
        authz.SCREENING_STATION,
        authz.UNPROVISIONED,
    ) == ("cabinet", "sorting_line", "charging_pile", "screening_station", "unprovisioned")
    assert dict(authz.RULES) == ALLOWED
    assert set(ALLOWED) <= set(PAIRS)


@pytest.mark.parametrize(("kind", "body"), PAIRS, ids=[f"{k or '-'}:{b or '-'}" for k, b in PAIRS])
def test_every_kind_and_body(kind: str, body: str) -> None:
    expected = ALLOWED.get((kind, body))
    if expected is not None:
        assert authz.authorize(kind, body, TOPIC) is expected
        return
    with pytest.raises(Unauthorized) as err:
        authz.authorize(kind, body, TOPIC)
    assert str(err.value) == f"CAB ({kind}) may not send {body or 'an empty event'}"


def parcel_record(site: str, cabinet: str = "", compartment: str = "") -> ParcelRecord:
    """A parcel with only the fields authorization reads set."""
    return ParcelRecord(
        parcel_id="P",
        state=ParcelState.RESERVED,
        site=site,
        cabinet_id=cabinet,
        compartment_id=compartment,
        dims=Dims(1, 1, 1),
        weight_g=1,
        zone=Zone.AMBIENT,
        phone_masked="",
        electronic_waybill=False,
        reusable_container=False,
        pickup_deadline_ms=0,
    )


def test_own_compartment_accepts_the_senders_compartment() -> None:
    authz.check_parcel(Scope.OWN_COMPARTMENT, TOPIC, parcel_record("S1", "CAB", "A1"), "A1")
    # The parcel's site is not what this scope checks: the compartment is the sender's.
    authz.check_parcel(Scope.OWN_COMPARTMENT, TOPIC, parcel_record("S9", "CAB", "A1"), "A1")


@pytest.mark.parametrize(
    ("parcel", "compartment"),
    [
        (parcel_record("S1", "CAB", "A1"), "A2"),  # another compartment of the sender
        (parcel_record("S1", "X", "A1"), "A1"),  # the same compartment id on another cabinet
        (parcel_record("S1", "X", "A2"), "A1"),  # both differ
        (parcel_record("S1"), ""),  # a parcel without a reservation
        (parcel_record("S1", "CAB", "A1"), ""),  # no compartment named
    ],
)
def test_own_compartment_refuses_others(parcel: ParcelRecord, compartment: str) -> None:
    with pytest.raises(Unauthorized) as err:
        authz.check_parcel(Scope.OWN_COMPARTMENT, TOPIC, parcel, compartment)
    assert str(err.value) == "CAB named a parcel of a compartment of another cabinet"


@pytest.mark.parametrize(
    ("site", "sorting_hub"), [("S1", ""), ("S1", "S7"), ("S2", "S1"), ("S1", "S1")]
)
def test_site_parcel_accepts_the_site_and_its_sorting_hub(site: str, sorting_hub: str) -> None:
    authz.check_parcel(Scope.SITE_PARCEL, TOPIC, parcel_record(site), sorting_hub=sorting_hub)
    # Neither the cabinet nor the compartment of the parcel matters for this scope.
    authz.check_parcel(
        Scope.SITE_PARCEL, TOPIC, parcel_record(site, "X", "A9"), "A1", sorting_hub=sorting_hub
    )


@pytest.mark.parametrize(("site", "sorting_hub"), [("S2", ""), ("S2", "S3"), ("S2", "S2")])
def test_site_parcel_refuses_other_sites(site: str, sorting_hub: str) -> None:
    with pytest.raises(Unauthorized) as err:
        authz.check_parcel(Scope.SITE_PARCEL, TOPIC, parcel_record(site), sorting_hub=sorting_hub)
    assert str(err.value) == "CAB named a parcel of another site"


def test_own_scope_never_covers_a_parcel() -> None:
    for parcel in (parcel_record("S1", "CAB", "A1"), parcel_record("S1")):
        with pytest.raises(Unauthorized) as err:
            authz.check_parcel(Scope.OWN, TOPIC, parcel, "A1", sorting_hub="S1")
        assert str(err.value) == "CAB named a parcel of no parcel scope"
