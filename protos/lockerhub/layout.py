"""Compartment layouts in the compact form an operator writes: ``S:6,M:4,L:2`` (``M:2:chilled``).

The expansion is the edge agent's (``[[driver.compartments]]``): compartments ``C01``, ``C02``,
... in the order written (three digits from 100 compartments on), each size class with the default
profile (domain notes: S 80, M 190, L 410 mm high, 380 wide, 640 deep; 25 kg). A hub provisioned
with the same layout string as the cabinet's driver therefore expects exactly what the cabinet's
birth reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lockerhub.driver import CompartmentSpec, SizeClass

# (width, height, depth) in mm, as the edge's DEFAULT_PROFILE.
DEFAULT_PROFILE: Mapping[SizeClass, tuple[int, int, int]] = {
    SizeClass.S: (380, 80, 640),
    SizeClass.M: (380, 190, 640),
    SizeClass.L: (380, 410, 640),
}
DEFAULT_MAX_WEIGHT_G = 25_000
MAX_COMPARTMENTS = 500


@dataclass(frozen=True, slots=True)
class Group:
    """``count`` compartments of one size class (and zone)."""

    size: SizeClass
    count: int
    chilled: bool = False


def parse(spec: str) -> tuple[Group, ...]:
    """Parse ``SIZE:COUNT[:chilled]`` groups separated by commas.

    Raises:
        ValueError: a malformed group, a size without a default profile, a count out of range,
            or more than MAX_COMPARTMENTS in all (the message names the group).
    """
    groups: list[Group] = []
    for part in (p.strip() for p in spec.split(",")):
        fields = part.split(":")
        if len(fields) not in (2, 3) or (len(fields) == 3 and fields[2] != "chilled"):
            raise ValueError(f"layout group {part[:20]!r}: expected SIZE:COUNT[:chilled]")
        size_text, count_text = fields[0].strip().upper(), fields[1].strip()
        if size_text not in SizeClass.__members__ or SizeClass(size_text) not in DEFAULT_PROFILE:
            raise ValueError(
                f"layout group {part[:20]!r}: size must be one of "
                f"{', '.join(str(s) for s in DEFAULT_PROFILE)}"
            )
        if not count_text.isdigit() or not 1 <= int(count_text) <= MAX_COMPARTMENTS:
            raise ValueError(f"layout group {part[:20]!r}: count must be 1-{MAX_COMPARTMENTS}")
        groups.append(Group(SizeClass(size_text), int(count_text), len(fields) == 3))
    if sum(g.count for g in groups) > MAX_COMPARTMENTS:
        raise ValueError(f"layout: at most {MAX_COMPARTMENTS} compartments in all")
    return tuple(groups)


def expand(groups: tuple[Group, ...]) -> tuple[CompartmentSpec, ...]:
    """The compartments of ``groups``, numbered like the edge agent numbers them."""
    width = 2 if sum(g.count for g in groups) < 100 else 3
    specs: list[CompartmentSpec] = []
    for group in groups:
        w, h, d = DEFAULT_PROFILE[group.size]
        for _ in range(group.count):
            specs.append(
                CompartmentSpec(
                    compartment_id=f"C{len(specs) + 1:0{width}d}",
                    size=group.size,
                    width_mm=w,
                    height_mm=h,
                    depth_mm=d,
                    max_weight_g=DEFAULT_MAX_WEIGHT_G,
                    chilled=group.chilled,
                )
            )
    return tuple(specs)


def parse_layout(spec: str) -> tuple[CompartmentSpec, ...]:
    """``expand(parse(spec))``. Raises ValueError (see :func:`parse`)."""
    return expand(parse(spec))
