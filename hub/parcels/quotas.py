"""Per-carrier compartment quotas around any allocator (pure functions on plain data).

A carrier may have, per cabinet, a cap (at most N compartments hold its parcels, counting those it
already occupies) and reserved compartments (held for it alone: no other carrier's parcel, nor a
city parcel, is placed there). :func:`allocate_with_quotas` wraps an allocator with the
:data:`hub.parcels.allocation.Allocator` signature without touching it (the numba kernel stays
pure): each carrier's parcels are placed in turn on the slots it may use; when a placement would
break a cap, the extra parcels are placed again with that cabinet closed to the carrier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.parcels.allocation import Allocator, FreeSlot, ParcelDemand


@dataclass(frozen=True, slots=True)
class QuotaRules:
    """``caps[(carrier, cabinet)]`` max compartments (absent = no cap); ``reserved[(cabinet,
    compartment)]`` its only carrier; ``used[(carrier, cabinet)]`` compartments already held."""

    caps: dict[tuple[str, str], int] = field(default_factory=dict)
    reserved: dict[tuple[str, str], str] = field(default_factory=dict)
    used: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.caps and not self.reserved


def _volume(p: ParcelDemand) -> int:
    return p.width_mm * p.height_mm * p.depth_mm


def allocate_with_quotas(
    allocator: Allocator,
    parcels: Sequence[ParcelDemand],
    carriers: Sequence[str],
    slots: Sequence[FreeSlot],
    rules: QuotaRules,
) -> list[int | None]:
    """For each parcel (same order), the index of its slot in ``slots`` or None.

    ``carriers[i]`` is parcel i's carrier ("" = the city operator's). Without rules this is one
    call of ``allocator``. Carriers are served in id order (the city's parcels first); within a
    carrier, bigger parcels keep their slot first when a cap cuts an allocation short.
    """
    if rules.empty:
        return allocator(parcels, slots)
    result: list[int | None] = [None] * len(parcels)
    taken: set[int] = set()
    groups: dict[str, list[int]] = {}
    for i, carrier in enumerate(carriers):
        groups.setdefault(carrier, []).append(i)
    for carrier in sorted(groups):
        left = {
            cab: cap - rules.used.get((c, cab), 0)
            for (c, cab), cap in rules.caps.items()
            if c == carrier
        }
        todo = sorted(groups[carrier], key=lambda i: -_volume(parcels[i]))
        while todo:
            usable = [
                s
                for s, slot in enumerate(slots)
                if s not in taken
                and rules.reserved.get((slot.cabinet_id, slot.compartment_id), carrier) == carrier
                and left.get(slot.cabinet_id, 1) > 0
            ]
            chosen = allocator([parcels[i] for i in todo], [slots[s] for s in usable])
            unplaced: list[int] = []
            capped = False
            for i, pick in zip(todo, chosen, strict=True):
                if pick is None:
                    unplaced.append(i)  # a slot a capped parcel leaves may fit it next round
                    continue
                s = usable[pick]
                cab = slots[s].cabinet_id
                if cab in left and left[cab] <= 0:
                    unplaced.append(i)  # over the cap: try again without that cabinet
                    capped = True
                    continue
                if cab in left:
                    left[cab] -= 1
                result[i] = s
                taken.add(s)
            if not capped:
                break
            todo = unplaced
    return result
