"""Compartment allocation on plain data, so ``routing.allocate`` can replace it (same signature).

Rule (what locker operators use, near-optimal for acceptance): each parcel gets the smallest free
compartment at its destination site that it fits in (any of the 6 orientations), within the weight
limit and the right temperature zone. Bigger parcels choose first so small ones do not take the
only big compartment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class ParcelDemand:
    """One parcel to place. Dimensions in millimetres, weight in grams."""

    parcel_id: str
    site: str
    width_mm: int
    height_mm: int
    depth_mm: int
    weight_g: int
    zone: str


@dataclass(frozen=True, slots=True)
class FreeSlot:
    """One free compartment that may take a parcel."""

    cabinet_id: str
    compartment_id: str
    site: str
    width_mm: int
    height_mm: int
    depth_mm: int
    max_weight_g: int
    zone: str


# The signature any allocator implements: for each parcel, an index into ``slots`` or None.
# A string, so the alias costs nothing at import (it is only ever used in annotations).
Allocator: TypeAlias = "Callable[[Sequence[ParcelDemand], Sequence[FreeSlot]], list[int | None]]"


def fits(parcel: ParcelDemand, slot: FreeSlot) -> bool:
    """True when the parcel fits the slot in some axis-aligned orientation, weight and zone."""
    # Sorting both sides' dimensions covers all 6 orientations of a box inside a box.
    outer = sorted((parcel.width_mm, parcel.height_mm, parcel.depth_mm))
    inner = sorted((slot.width_mm, slot.height_mm, slot.depth_mm))
    return (
        all(o <= i for o, i in zip(outer, inner, strict=True))
        and parcel.weight_g <= slot.max_weight_g
        and parcel.zone == slot.zone
        and parcel.site == slot.site
    )


def allocate_smallest_fit(
    parcels: Sequence[ParcelDemand], slots: Sequence[FreeSlot]
) -> list[int | None]:
    """Assign each parcel the smallest fitting free slot at its site (each slot at most once).

    Returns:
        For each parcel (same order), the index of its slot in ``slots``, or None.
    """
    by_site: dict[str, list[int]] = {}
    for i in sorted(
        range(len(slots)),
        key=lambda i: (
            slots[i].width_mm * slots[i].height_mm * slots[i].depth_mm,
            slots[i].cabinet_id,
            slots[i].compartment_id,
        ),
    ):
        by_site.setdefault(slots[i].site, []).append(i)
    result: list[int | None] = [None] * len(parcels)
    order = sorted(
        range(len(parcels)),
        key=lambda p: -(parcels[p].width_mm * parcels[p].height_mm * parcels[p].depth_mm),
    )
    for p in order:
        candidates = by_site.get(parcels[p].site, [])
        for pos, s in enumerate(candidates):
            if fits(parcels[p], slots[s]):
                result[p] = s
                del candidates[pos]
                break
    return result


class RoutingAllocator:
    """The same signature, through ``routing.allocate`` (the numba slot allocator): smallest fit
    at the destination site, load spread across cabinets. The one adapter between the hub and the
    allocator; it runs off the event loop (the caller uses a worker thread)."""

    def __init__(self, sites: dict[str, tuple[float, float]], *, radius_m: float = 0.0) -> None:
        self._sites = dict(sites)
        self._radius_m = radius_m

    def __call__(
        self, parcels: Sequence[ParcelDemand], slots: Sequence[FreeSlot]
    ) -> list[int | None]:
        import numpy as np

        from routing import AllocationProblem, allocate
        from routing.allocation import ZONES

        if not parcels or not slots:
            return [None] * len(parcels)
        site_ids = tuple(sorted({s.site for s in slots} | {p.site for p in parcels}))
        index = {s: i for i, s in enumerate(site_ids)}
        zone = {z: i for i, z in enumerate(ZONES)}
        problem = AllocationProblem(
            radius_m=self._radius_m,
            site_ids=site_ids,
            site_lat=np.array([self._sites.get(s, (0.0, 0.0))[0] for s in site_ids]),
            site_lon=np.array([self._sites.get(s, (0.0, 0.0))[1] for s in site_ids]),
            comp_ids=tuple(f"{s.cabinet_id}/{s.compartment_id}" for s in slots),
            comp_site=np.array([index[s.site] for s in slots]),
            comp_dims=np.array([(s.width_mm, s.height_mm, s.depth_mm) for s in slots], float),
            comp_max_kg=np.array([s.max_weight_g / 1000 for s in slots]),
            comp_zone=np.array([zone.get(s.zone, 0) for s in slots]),
            comp_free=np.ones(len(slots), bool),
            comp_last_used=np.zeros(len(slots)),
            parcel_ids=tuple(p.parcel_id for p in parcels),
            parcel_dims=np.array([(p.width_mm, p.height_mm, p.depth_mm) for p in parcels], float),
            parcel_kg=np.array([p.weight_g / 1000 for p in parcels]),
            parcel_zone=np.array([zone.get(p.zone, 0) for p in parcels]),
            parcel_site=np.array([index[p.site] for p in parcels]),
        )
        assignments = allocate(problem).assignments
        return [int(a) if a >= 0 else None for a in assignments.tolist()]
