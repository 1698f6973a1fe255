"""Courier conduct: the kinds of incident, their weights and the score (docs/hub.md, "Courier
conduct"). Pure functions; the records themselves live in ``courier_conduct``."""

from __future__ import annotations

from collections.abc import Mapping

# Points an incident costs; the score starts at 100 and is floored at 0.
WEIGHTS: dict[str, int] = {
    "late_deposit": 5,  # deposited after the reservation had expired
    "forced_open": 20,  # a door opened without a command or a code (alarm door_forced)
    "wrong_compartment": 10,  # the parcel went into another compartment than the one reserved
    "left_past_deadline": 2,  # an expired parcel the courier's carrier did not withdraw in time
    "complaint": 15,  # a complaint an operator filed
}
KINDS = tuple(WEIGHTS)
MAX_SCORE = 100


def score(counts: Mapping[str, int]) -> int:
    """100 minus the weighted incidents, floored at 0 (unknown kinds cost nothing)."""
    lost = sum(WEIGHTS.get(kind, 0) * max(0, n) for kind, n in counts.items())
    return max(0, MAX_SCORE - lost)
