"""Compartment reservations with a time-to-live and an idempotency key (pure; clock injected)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from routing.errors import ProblemError, ReservationError

__all__ = ["Reservation", "ReservationBook"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """A compartment held for a parcel until ``expires_at`` (clock units, e.g. seconds)."""

    key: str
    parcel: str
    compartment: str
    created_at: float
    expires_at: float


class ReservationBook:
    """Live reservations and the least-recently-used clock of every compartment.

    No I/O and no global clock: ``clock`` is injected (``time.monotonic`` in the hub, a fake in
    tests).  Retrying ``reserve`` with the same key returns the same reservation, so a resent
    command never holds two compartments (the idempotency rule of the platform).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_key: dict[str, Reservation] = {}
        self._by_comp: dict[str, str] = {}
        self._last_used: dict[str, float] = {}

    def reserve(self, *, key: str, parcel: str, compartment: str, ttl: float) -> Reservation:
        """Hold ``compartment`` for ``parcel`` for ``ttl`` clock units.

        Raises:
            ProblemError: ``ttl`` is not positive or the key is empty.
            ReservationError: the key was used for another parcel/compartment, or the
                compartment is held under another key.
        """
        if not key:
            raise ProblemError("key", "must be a non-empty string")
        if not ttl > 0:
            raise ProblemError("ttl", "must be > 0")
        now = self._clock()
        self._expire(now)
        old = self._by_key.get(key)
        if old is not None:
            if old.parcel != parcel or old.compartment != compartment:
                raise ReservationError(f"idempotency key {key!r} already used for another request")
            return old
        holder = self._by_comp.get(compartment)
        if holder is not None:
            raise ReservationError(f"compartment {compartment!r} is already reserved")
        res = Reservation(
            key=key, parcel=parcel, compartment=compartment, created_at=now, expires_at=now + ttl
        )
        self._by_key[key] = res
        self._by_comp[compartment] = key
        self._last_used[compartment] = now
        return res

    def release(self, key: str) -> Reservation | None:
        """End a reservation (parcel deposited or order cancelled); unknown keys are ignored."""
        res = self._by_key.pop(key, None)
        if res is not None:
            self._by_comp.pop(res.compartment, None)
            self._last_used[res.compartment] = self._clock()
        return res

    def expire(self) -> list[Reservation]:
        """Drop reservations whose time-to-live has passed; returns them."""
        return self._expire(self._clock())

    def held(self) -> frozenset[str]:
        """Compartments currently held by a live reservation."""
        self._expire(self._clock())
        return frozenset(self._by_comp)

    def get(self, key: str) -> Reservation | None:
        """The live reservation under ``key``, if any."""
        self._expire(self._clock())
        return self._by_key.get(key)

    def last_used(self, compartments: Iterable[str]) -> npt.NDArray[np.float64]:
        """Last reservation/release time per compartment (0 if never): the LRU key."""
        return np.array([self._last_used.get(c, 0.0) for c in compartments], np.float64)

    def free_mask(self, compartments: Iterable[str]) -> npt.NDArray[np.bool_]:
        """``True`` for compartments not held by a live reservation."""
        held = self.held()
        return np.array([c not in held for c in compartments], np.bool_)

    def __len__(self) -> int:
        return len(self._by_key)

    def _expire(self, now: float) -> list[Reservation]:
        gone = [r for r in self._by_key.values() if r.expires_at <= now]
        for r in gone:
            del self._by_key[r.key]
            self._by_comp.pop(r.compartment, None)
        return gone
