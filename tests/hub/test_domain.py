"""Pure parts: lifecycle rules, allocation, phone masking, metric label bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import IllegalTransition
from hub.models import ParcelState
from hub.parcels.allocation import FreeSlot, ParcelDemand, allocate_smallest_fit, fits
from hub.parcels.lifecycle import ALLOWED, TERMINAL, check_transition
from hub.parcels.phones import mask_phone, normalize_phone
from lockerhub.v1 import common_pb2


def test_every_proto_state_is_in_the_machine() -> None:
    names = {
        n.removeprefix("PARCEL_STATE_") for n in common_pb2.ParcelState.DESCRIPTOR.values_by_name
    }
    assert {s.name for s in ParcelState} == names - {"UNSPECIFIED"}
    assert set(ALLOWED) == set(ParcelState)
    assert {ParcelState.PICKED_UP, ParcelState.RETURNED, ParcelState.CANCELLED} == TERMINAL


def test_transitions() -> None:
    check_transition("p", ParcelState.RESERVED, ParcelState.DEPOSITED)
    check_transition("p", ParcelState.DEPOSITED, ParcelState.EXPIRED)
    with pytest.raises(IllegalTransition, match="cannot go from reserved to picked_up"):
        check_transition("p", ParcelState.RESERVED, ParcelState.PICKED_UP)
    with pytest.raises(IllegalTransition, match="final state"):
        check_transition("p", ParcelState.PICKED_UP, ParcelState.DEPOSITED)


def slot(
    cid: str, w: int, h: int, d: int, *, zone: str = "ambient", site: str = "s", max_g: int = 25_000
) -> FreeSlot:
    return FreeSlot("cab", cid, site, w, h, d, max_g, zone)


def parcel(
    pid: str, w: int, h: int, d: int, *, g: int = 1000, zone: str = "ambient", site: str = "s"
) -> ParcelDemand:
    return ParcelDemand(pid, site, w, h, d, g, zone)


def test_smallest_fit_in_any_orientation() -> None:
    slots = [slot("L", 410, 380, 640), slot("S", 80, 380, 640), slot("M", 190, 380, 640)]
    # 600x70x300 only fits S when turned on its side.
    assert allocate_smallest_fit([parcel("p", 600, 70, 300)], slots) == [1]
    assert allocate_smallest_fit([parcel("p", 200, 200, 200)], slots) == [0]
    assert allocate_smallest_fit([parcel("p", 500, 500, 500)], slots) == [None]
    assert allocate_smallest_fit([parcel("p", 10, 10, 10, g=30_000)], slots) == [None]
    assert allocate_smallest_fit([parcel("p", 10, 10, 10, zone="chilled")], slots) == [None]
    assert allocate_smallest_fit([parcel("p", 10, 10, 10, site="t")], slots) == [None]


def test_big_parcels_choose_first() -> None:
    slots = [slot("S", 80, 380, 640), slot("L", 410, 380, 640)]
    assert allocate_smallest_fit([parcel("a", 50, 50, 50), parcel("b", 300, 300, 300)], slots) == [
        0,
        1,
    ]


dims = st.integers(min_value=1, max_value=700)


@given(
    st.lists(st.tuples(dims, dims, dims), max_size=15),
    st.lists(st.tuples(dims, dims, dims), max_size=15),
)
def test_allocation_is_feasible_and_exclusive(
    ps: list[tuple[int, int, int]], ss: list[tuple[int, int, int]]
) -> None:
    parcels = [parcel(f"p{i}", *d) for i, d in enumerate(ps)]
    slots = [slot(f"c{i}", *d) for i, d in enumerate(ss)]
    result = allocate_smallest_fit(parcels, slots)
    used = [r for r in result if r is not None]
    assert len(used) == len(set(used))
    for p, r in zip(parcels, result, strict=True):
        if r is not None:
            assert fits(p, slots[r])


def test_phones() -> None:
    assert normalize_phone("138 1234-1234") == "13812341234"
    assert normalize_phone("+8613812341234") == "+8613812341234"
    assert normalize_phone("abc") is None
    assert mask_phone("13812341234") == "138****1234"
    assert "1234123" not in mask_phone("+8613812341234")
