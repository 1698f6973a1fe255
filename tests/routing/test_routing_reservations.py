"""Reservations: time-to-live, idempotency keys, conflicts, least-recently-used clock."""

from __future__ import annotations

import pytest

from routing import ProblemError, ReservationBook, ReservationError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ttl_expiry_frees_the_compartment() -> None:
    clock = FakeClock()
    book = ReservationBook(clock)
    r = book.reserve(key="k1", parcel="p1", compartment="c1", ttl=30)
    assert r.expires_at == 130.0
    assert book.held() == {"c1"}
    clock.now = 129.9
    assert book.get("k1") == r
    clock.now = 130.0
    assert book.held() == frozenset()
    assert book.get("k1") is None
    book.reserve(key="k2", parcel="p2", compartment="c1", ttl=5)


def test_same_key_is_idempotent_and_conflicts_are_refused() -> None:
    clock = FakeClock()
    book = ReservationBook(clock)
    first = book.reserve(key="k", parcel="p", compartment="c", ttl=10)
    clock.now += 1
    assert book.reserve(key="k", parcel="p", compartment="c", ttl=10) is first
    assert len(book) == 1
    with pytest.raises(ReservationError):
        book.reserve(key="k", parcel="p", compartment="other", ttl=10)
    with pytest.raises(ReservationError):
        book.reserve(key="k2", parcel="p2", compartment="c", ttl=10)
    with pytest.raises(ProblemError):
        book.reserve(key="k3", parcel="p3", compartment="d", ttl=0)


def test_release_updates_lru_and_free_mask() -> None:
    clock = FakeClock()
    book = ReservationBook(clock)
    book.reserve(key="a", parcel="p", compartment="c1", ttl=10)
    clock.now = 105.0
    assert book.release("a") is not None
    assert book.release("a") is None
    assert book.last_used(["c1", "c2"]).tolist() == [105.0, 0.0]
    book.reserve(key="b", parcel="q", compartment="c2", ttl=10)
    assert book.free_mask(["c1", "c2"]).tolist() == [True, False]
    clock.now = 200.0
    assert [r.key for r in book.expire()] == ["b"]
