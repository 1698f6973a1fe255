"""Issue 18: the rules of the hub's allocation adapter (hub.parcels.allocation), on plain data.

``fits`` and ``allocate_smallest_fit`` are compared with a brute-force reference (all 6
orientations tried one by one, every free slot scanned in preference order) on small random cases;
``RoutingAllocator`` is checked for what its conversion must keep: dimensions, grams to kilograms,
zones, sites and their coordinates, and the index it hands back.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.parcels.allocation import (
    FreeSlot,
    ParcelDemand,
    RoutingAllocator,
    allocate_smallest_fit,
    fits,
)


def parcel(
    w: int,
    h: int,
    d: int,
    *,
    g: int = 1000,
    zone: str = "ambient",
    site: str = "S1",
    pid: str = "p",
) -> ParcelDemand:
    return ParcelDemand(pid, site, w, h, d, g, zone)


def slot(
    w: int,
    h: int,
    d: int,
    *,
    max_g: int = 5000,
    zone: str = "ambient",
    site: str = "S1",
    cab: str = "CAB",
    cid: str = "c",
) -> FreeSlot:
    return FreeSlot(cab, cid, site, w, h, d, max_g, zone)


# --- the reference ----------------------------------------------------------------------------


def ref_fits(p: ParcelDemand, s: FreeSlot) -> bool:
    dims = (p.width_mm, p.height_mm, p.depth_mm)
    inner = (s.width_mm, s.height_mm, s.depth_mm)
    rotated = any(
        a <= x and b <= y and c <= z
        for (a, b, c) in itertools.permutations(dims)
        for (x, y, z) in [inner]
    )
    return rotated and p.weight_g <= s.max_weight_g and p.zone == s.zone and p.site == s.site


def ref_allocate(parcels: Sequence[ParcelDemand], slots: Sequence[FreeSlot]) -> list[int | None]:
    """Largest parcel first (ties: input order); each takes the free fitting slot of least
    volume (ties: cabinet id, then compartment id), scanning every slot."""

    def volume(x: ParcelDemand | FreeSlot) -> int:
        return x.width_mm * x.height_mm * x.depth_mm

    taken: set[int] = set()
    result: list[int | None] = [None] * len(parcels)
    for p in sorted(range(len(parcels)), key=lambda i: (-volume(parcels[i]), i)):
        best: int | None = None
        for s, sl in enumerate(slots):
            if s in taken or not ref_fits(parcels[p], sl):
                continue
            key = (volume(sl), sl.cabinet_id, sl.compartment_id)
            if best is None or key < (
                volume(slots[best]),
                slots[best].cabinet_id,
                slots[best].compartment_id,
            ):
                best = s
        if best is not None:
            taken.add(best)
            result[p] = best
    return result


# --- fits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", list(itertools.permutations((100, 200, 300))))
def test_fits_in_every_orientation(dims: tuple[int, int, int]) -> None:
    assert fits(parcel(*dims), slot(300, 100, 200))
    assert fits(parcel(*dims), slot(200, 300, 100))


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        ((100, 200, 300), True),  # exactly the slot: each side on its boundary
        ((101, 200, 300), False),
        ((100, 201, 300), False),
        ((100, 200, 301), False),
        ((99, 199, 299), True),
        ((50, 50, 301), False),  # one side too long however it is turned
        ((250, 250, 10), False),  # two sides above the middle one
    ],
)
def test_fits_on_each_side(dims: tuple[int, int, int], expected: bool) -> None:
    assert fits(parcel(*dims), slot(100, 200, 300)) is expected


def test_fits_weight_boundary() -> None:
    assert fits(parcel(10, 10, 10, g=5000), slot(10, 10, 10, max_g=5000))
    assert not fits(parcel(10, 10, 10, g=5001), slot(10, 10, 10, max_g=5000))


def test_fits_zone_and_site() -> None:
    assert fits(parcel(1, 1, 1, zone="chilled"), slot(1, 1, 1, zone="chilled"))
    assert not fits(parcel(1, 1, 1, zone="chilled"), slot(1, 1, 1, zone="ambient"))
    assert not fits(parcel(1, 1, 1, zone="ambient"), slot(1, 1, 1, zone="chilled"))
    assert not fits(parcel(1, 1, 1, site="S2"), slot(1, 1, 1, site="S1"))
    # Each rule alone refuses, whatever the others say.
    assert not fits(parcel(2, 1, 1, g=1), slot(1, 1, 1))
    assert not fits(parcel(1, 1, 1, g=2), slot(9, 9, 9, max_g=1))


# --- smallest fit --------------------------------------------------------------------------------


def test_smallest_fitting_slot_wins() -> None:
    slots = [slot(50, 50, 50, cid="big"), slot(10, 10, 10, cid="tiny"), slot(20, 20, 20, cid="mid")]
    assert allocate_smallest_fit([parcel(15, 15, 15)], slots) == [2]
    assert allocate_smallest_fit([parcel(5, 5, 5)], slots) == [1]
    assert allocate_smallest_fit([parcel(60, 5, 5)], slots) == [None]


def test_volume_orders_slots_not_one_side() -> None:
    # (10, 10, 90) is 9000 mm3, (20, 20, 20) is 8000 mm3: the cube is smaller.
    slots = [slot(10, 10, 90, cid="long"), slot(20, 20, 20, cid="cube")]
    assert allocate_smallest_fit([parcel(5, 5, 5)], slots) == [1]
    slots = [slot(20, 20, 20, cid="cube"), slot(10, 10, 70, cid="long")]
    assert allocate_smallest_fit([parcel(5, 5, 5)], slots) == [1]


def test_ties_by_cabinet_then_compartment() -> None:
    slots = [slot(10, 10, 10, cab="B", cid="a"), slot(10, 10, 10, cab="A", cid="z")]
    assert allocate_smallest_fit([parcel(1, 1, 1)], slots) == [1]
    slots = [slot(10, 10, 10, cab="A", cid="b"), slot(10, 10, 10, cab="A", cid="a")]
    assert allocate_smallest_fit([parcel(1, 1, 1)], slots) == [1]


def test_bigger_parcels_choose_first_and_slots_are_used_once() -> None:
    slots = [slot(10, 10, 10, cid="small"), slot(30, 30, 30, cid="big")]
    # The small parcel comes first in the input, the big one still gets the big slot.
    assert allocate_smallest_fit([parcel(5, 5, 5), parcel(25, 25, 25)], slots) == [0, 1]
    # Two parcels, one slot: the bigger gets it, the other nothing.
    assert allocate_smallest_fit([parcel(5, 5, 5), parcel(6, 6, 6)], [slot(9, 9, 9)]) == [None, 0]
    # Equal parcels: input order.
    assert allocate_smallest_fit([parcel(5, 5, 5), parcel(5, 5, 5)], [slot(9, 9, 9)]) == [0, None]
    assert allocate_smallest_fit([parcel(5, 5, 5)] * 3, [slot(9, 9, 9)] * 2) == [0, 1, None]


def test_site_and_zone_choose_among_slots() -> None:
    slots = [
        slot(10, 10, 10, site="S2", cid="other-site"),
        slot(10, 10, 10, zone="chilled", cid="chilled"),
        slot(90, 90, 90, cid="ok"),
    ]
    assert allocate_smallest_fit([parcel(5, 5, 5)], slots) == [2]
    assert allocate_smallest_fit([parcel(5, 5, 5, site="S2")], slots) == [0]
    assert allocate_smallest_fit([parcel(5, 5, 5, zone="chilled")], slots) == [1]
    assert allocate_smallest_fit([parcel(5, 5, 5, site="S3")], slots) == [None]
    assert allocate_smallest_fit([], slots) == []
    assert allocate_smallest_fit([parcel(1, 1, 1)], []) == [None]


_dim = st.integers(1, 4)
_parcels = st.lists(
    st.builds(
        ParcelDemand,
        st.just("p"),
        st.sampled_from(["S1", "S2"]),
        _dim,
        _dim,
        _dim,
        st.integers(1, 3),
        st.sampled_from(["ambient", "chilled"]),
    ),
    max_size=6,
).map(lambda ps: [dataclasses.replace(p, parcel_id=f"p{i}") for i, p in enumerate(ps)])
_slots = st.lists(
    st.builds(
        FreeSlot,
        st.sampled_from(["A", "B"]),
        st.just(""),
        st.sampled_from(["S1", "S2"]),
        _dim,
        _dim,
        _dim,
        st.integers(1, 3),
        st.sampled_from(["ambient", "chilled"]),
    ),
    max_size=6,
).map(lambda ss: [dataclasses.replace(s, compartment_id=f"c{i % 3}{i}") for i, s in enumerate(ss)])


@settings(max_examples=300, derandomize=True, database=None)
@given(_parcels, _slots)
def test_matches_the_brute_force_reference(
    parcels: list[ParcelDemand], slots: list[FreeSlot]
) -> None:
    for p in parcels:
        for s in slots:
            assert fits(p, s) is ref_fits(p, s)
    assert allocate_smallest_fit(parcels, slots) == ref_allocate(parcels, slots)


# --- the routing adapter -------------------------------------------------------------------------

ROUTE = RoutingAllocator({"S1": (60.0, 10.0), "S2": (60.0, 10.02)})


def test_routing_empty_inputs() -> None:
    assert ROUTE([], [slot(1, 1, 1)]) == []
    assert ROUTE([parcel(1, 1, 1), parcel(1, 1, 1)], []) == [None, None]


def test_routing_keeps_dimensions_and_rotation() -> None:
    assert ROUTE([parcel(300, 100, 200)], [slot(100, 200, 300)]) == [0]
    assert ROUTE([parcel(301, 100, 200)], [slot(100, 200, 300)]) == [None]
    slots = [slot(50, 50, 50, cid="big"), slot(10, 10, 10, cid="tiny"), slot(20, 20, 20, cid="m")]
    assert ROUTE([parcel(15, 15, 15)], slots) == [2]


def test_routing_weight_in_kilograms() -> None:
    assert ROUTE([parcel(1, 1, 1, g=5000)], [slot(1, 1, 1, max_g=5000)]) == [0]
    assert ROUTE([parcel(1, 1, 1, g=5001)], [slot(1, 1, 1, max_g=5000)]) == [None]
    assert ROUTE([parcel(1, 1, 1, g=4999)], [slot(1, 1, 1, max_g=5000)]) == [0]


def test_routing_zones() -> None:
    chilled = slot(1, 1, 1, zone="chilled", cid="c")
    ambient = slot(1, 1, 1, zone="ambient", cid="a")
    assert ROUTE([parcel(1, 1, 1, zone="chilled")], [ambient]) == [None]
    assert ROUTE([parcel(1, 1, 1, zone="chilled")], [ambient, chilled]) == [1]
    assert ROUTE([parcel(1, 1, 1, zone="ambient")], [chilled, ambient]) == [1]


def test_routing_one_compartment_per_parcel() -> None:
    got = ROUTE([parcel(1, 1, 1, pid="a"), parcel(1, 1, 1, pid="b")], [slot(2, 2, 2)] * 1)
    assert sorted(got, key=str) == [0, None]
    got = ROUTE([parcel(1, 1, 1, pid=x) for x in "abc"], [slot(2, 2, 2, cid=x) for x in "xy"])
    assert sorted(got, key=str) == [0, 1, None]


def test_routing_sites_and_radius() -> None:
    """S1 and S2 are 0.02 degrees of longitude apart at 60 N: about 1.1 km (2.2 km if latitude
    and longitude were swapped)."""
    other_site = [slot(1, 1, 1, site="S2")]
    assert ROUTE([parcel(1, 1, 1, site="S1")], other_site) == [None]
    near = RoutingAllocator({"S1": (60.0, 10.0), "S2": (60.0, 10.02)}, radius_m=1500.0)
    assert near([parcel(1, 1, 1, site="S1")], other_site) == [0]
    # The destination's own compartment is still preferred to a neighbour's.
    both = [*other_site, slot(1, 1, 1, site="S1", cid="own")]
    assert near([parcel(1, 1, 1, site="S1")], both) == [1]
    far = RoutingAllocator({"S1": (60.0, 10.0), "S2": (60.0, 10.02)}, radius_m=1000.0)
    assert far([parcel(1, 1, 1, site="S1")], other_site) == [None]
    # A site without coordinates sits at (0, 0), far from both...
    unknown = RoutingAllocator({"S1": (60.0, 10.0)}, radius_m=1500.0)
    assert unknown([parcel(1, 1, 1, site="S1")], other_site) == [None]
    # ... and exactly at (0, 0): next to a site there, 111 km from (1, 0) or (0, 1).
    at_origin = RoutingAllocator({"S1": (0.0, 0.0)}, radius_m=1500.0)
    assert at_origin([parcel(1, 1, 1, site="S1")], other_site) == [0]


def test_routing_default_radius_is_zero() -> None:
    """Without a radius only the destination's own compartments count, even one 0.5 m away."""
    sites = {"S1": (60.0, 10.0), "S2": (60.0, 10.000009)}  # about 0.5 m apart
    other_site = [slot(1, 1, 1, site="S2")]
    assert RoutingAllocator(sites)([parcel(1, 1, 1, site="S1")], other_site) == [None]
    assert RoutingAllocator(sites, radius_m=1.0)([parcel(1, 1, 1, site="S1")], other_site) == [0]


@settings(max_examples=40, derandomize=True, database=None)
@given(_parcels, _slots)
def test_routing_places_only_what_fits(parcels: list[ParcelDemand], slots: list[FreeSlot]) -> None:
    got = ROUTE(parcels, slots)
    assert len(got) == len(parcels)
    placed = [s for s in got if s is not None]
    assert len(placed) == len(set(placed))
    for p, s in zip(parcels, got, strict=True):
        if s is not None:
            assert ref_fits(p, slots[s])
    # Where the smallest-fit rule places every parcel, the routing allocator does too.
    if None not in ref_allocate(parcels, slots):
        assert None not in got
