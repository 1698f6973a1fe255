"""Compartment layouts: the operator's (provisioned) against what a birth reports.

A birth may only confirm the provisioned layout: nothing it adds is ever stored, and only the
compartments it reports exactly as provisioned may be allocated (docs/hub.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.models import Zone, size_name
from hub.settings.inventory import DeviceInventorySettings
from hub.store.repo.inventory import Slot
from lockerhub.layout import parse_layout
from lockerhub.v1 import common_pb2

# How many compartment ids an alarm detail names at most (the rest are counted).
_NAMED = 5


def provisioned_slots(entry: DeviceInventorySettings) -> list[Slot]:
    """The compartments of a ``[[devices]]`` entry (none for sorting lines and charging piles)."""
    if entry.layout:
        return [
            Slot(
                c.compartment_id,
                str(c.size),
                c.width_mm,
                c.height_mm,
                c.depth_mm,
                c.max_weight_g,
                str(Zone.CHILLED if c.chilled else Zone.AMBIENT),
            )
            for c in parse_layout(entry.layout)
        ]
    return [
        Slot(c.id, c.size, c.width_mm, c.height_mm, c.depth_mm, c.max_weight_g, c.zone)
        for c in entry.compartments
    ]


def reported_slots(specs: Iterable[common_pb2.CompartmentSpec]) -> dict[str, Slot]:
    """What a birth says (an unknown zone number counts as a difference, not an error)."""
    found: dict[str, Slot] = {}
    for c in specs:
        try:
            zone = str(Zone.from_proto(c.zone))
        except (ValueError, KeyError):
            zone = "unknown"
        found[c.compartment_id] = Slot(
            c.compartment_id,
            size_name(c.size),
            c.inner.width_mm,
            c.inner.height_mm,
            c.inner.depth_mm,
            c.max_weight_g,
            zone,
        )
    return found


@dataclass(frozen=True, slots=True)
class LayoutCheck:
    """The provisioned compartments a birth confirmed, and what differed ("" = nothing)."""

    confirmed: frozenset[str]
    problem: str


def compare(
    *,
    provisioned: bool,
    kind: str,
    claimed_kind: str,
    expected: dict[str, Slot],
    reported: dict[str, Slot],
) -> LayoutCheck:
    """Compare a birth with the provisioned device; the problem text names no parcel or person."""
    if not provisioned:
        return LayoutCheck(
            frozenset(),
            f"not provisioned by the operator ({len(reported)} reported compartments ignored)",
        )
    confirmed = frozenset(i for i, slot in expected.items() if reported.get(i) == slot)
    problems = []
    if claimed_kind != kind:
        problems.append(f"says it is a {claimed_kind}, provisioned as a {kind}")
    for label, ids in (
        ("unprovisioned", sorted(set(reported) - set(expected))),
        ("missing", sorted(set(expected) - set(reported))),
        ("different", sorted(i for i in set(expected) & set(reported) if i not in confirmed)),
    ):
        if ids:
            named = ", ".join(ids[:_NAMED]) + (
                f" +{len(ids) - _NAMED}" if len(ids) > _NAMED else ""
            )
            problems.append(f"{len(ids)} {label} ({named})")
    return LayoutCheck(confirmed, "; ".join(problems))
