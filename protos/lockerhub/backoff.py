"""The one reconnect/restart backoff: jittered exponential, used by hub, edge and supervisors."""

from __future__ import annotations

import random


class Backoff:
    """``min(cap, base * 2**attempt)`` scaled by a random factor in [0.5, 1.0].

    Half the delay is guaranteed, so a fleet that lost its broker together does not come back in
    one burst at zero delay, and the other half is spread at random ("equal jitter").

    Args:
        base_s: the first delay's ceiling, seconds (> 0).
        cap_s: the largest delay, seconds (>= base_s).
        rng: the random source (tests pass a seeded one).
    """

    def __init__(self, base_s: float, cap_s: float, *, rng: random.Random | None = None) -> None:
        if not 0 < base_s <= cap_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got {base_s}, {cap_s}")
        self._base, self._cap = base_s, cap_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to ``cap_s``."""
        ceiling = min(self._cap, self._base * float(2 ** min(self.attempt, 62)))
        self.attempt += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        """Start again from ``base_s`` (after a success)."""
        self.attempt = 0
