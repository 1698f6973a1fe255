"""PickupGuard: wrong codes counted per keypad and per chosen compartment, lockouts, their alarms,
counters that survive a restart. Time is the ``now_ms`` the tests pass in."""

from __future__ import annotations

import pytest

from edge.pickup import PickupGuard
from lockerhub.v1 import common_pb2, device_pb2

T0 = 1_800_000_000_000
LOCKOUT_MS = 60_000


def guard() -> PickupGuard:
    return PickupGuard(max_failures=3, lockout_ms=LOCKOUT_MS, max_lockout_ms=4 * LOCKOUT_MS)


def summary(events: list[device_pb2.DeviceEvent]) -> list[tuple[object, ...]]:
    """Each event as a tuple: ("rejected", failures, locked_out) or ("alarm", cid, detail)."""
    out: list[tuple[object, ...]] = []
    for e in events:
        body = e.WhichOneof("body")
        if body == "pickup_code_rejected":
            r = e.pickup_code_rejected
            out.append(("rejected", r.consecutive_failures, r.locked_out))
        else:
            assert body == "alarm"
            assert e.alarm.kind == common_pb2.ALARM_KIND_KEYPAD_LOCKOUT
            assert e.alarm.active
            out.append(("alarm", e.alarm.compartment_id, e.alarm.detail))
    return out


def test_keypad_locks_after_max_failures_and_says_so_once() -> None:
    g = guard()
    assert summary(g.failure(T0, None)) == [("rejected", 1, False)]
    assert summary(g.failure(T0, None)) == [("rejected", 2, False)]
    assert not g.locked(T0)
    assert g.consecutive_failures == 2
    assert summary(g.failure(T0 + 1, None)) == [
        ("rejected", 3, True),
        ("alarm", "", "keypad locked for 60 s after 3 wrong codes"),
    ]
    assert g.locked(T0 + 1)
    assert g.blocked(T0 + 1, None)
    assert g.blocked(T0 + 1, "A01"), "a keypad lockout blocks every compartment"
    # An entry during the lockout is rejected again, without a second alarm.
    assert summary(g.failure(T0 + 2, None)) == [("rejected", 3, True)]
    assert g.locked(T0 + LOCKOUT_MS)  # locked until the last millisecond ...
    assert not g.locked(T0 + 1 + LOCKOUT_MS)  # ... and not after
    assert g.consecutive_failures == 0
    # The next lockout is twice as long.
    for _ in range(2):
        g.failure(T0 + 2 * LOCKOUT_MS, None)
    assert summary(g.failure(T0 + 2 * LOCKOUT_MS, None))[1] == (
        "alarm",
        "",
        "keypad locked for 120 s after 3 wrong codes",
    )


def test_a_chosen_compartment_counts_on_its_own() -> None:
    g = guard()
    g.failure(T0, "A01")
    g.failure(T0, "A01")
    g.success("B02")  # a right code elsewhere resets the keypad, not A01's count
    assert g.consecutive_failures == 0
    assert summary(g.failure(T0, "A01")) == [
        ("rejected", 1, False),
        ("alarm", "A01", "compartment A01 locked for 60 s after 3 wrong codes"),
    ]
    assert g.locked(T0, "A01")
    assert not g.locked(T0)
    assert not g.locked(T0, "B02")
    assert g.blocked(T0, "A01")
    assert not g.blocked(T0, None)
    assert not g.blocked(T0, "B02")
    g.success("A01")
    assert not g.locked(T0, "A01")


def test_keypad_and_compartment_lock_together() -> None:
    g = guard()
    g.failure(T0, "A01")
    g.failure(T0, "A01")
    assert summary(g.failure(T0, "A01")) == [
        ("rejected", 3, True),
        ("alarm", "", "keypad locked for 60 s after 3 wrong codes"),
        ("alarm", "A01", "compartment A01 locked for 60 s after 3 wrong codes"),
    ]


def test_configure_applies_to_existing_and_new_counters() -> None:
    g = guard()
    g.failure(T0, "A01")
    g.configure(max_failures=2, lockout_ms=1_500)
    assert summary(g.failure(T0, "A01")) == [
        ("rejected", 2, True),
        ("alarm", "", "keypad locked for 1.5 s after 2 wrong codes"),
        ("alarm", "A01", "compartment A01 locked for 1.5 s after 2 wrong codes"),
    ]
    g.success("A01")
    g.configure(max_failures=1, lockout_ms=2_000)
    assert summary(g.failure(T0 + 10_000, "C03"))[2] == (
        "alarm",
        "C03",
        "compartment C03 locked for 2 s after 1 wrong codes",
    )


def test_counters_survive_a_restart_for_known_compartments() -> None:
    g = guard()
    g.failure(T0, "A01")
    g.success("X")
    for _ in range(3):
        g.failure(T0, "A01")
    g.failure(T0, "B02")
    blob = g.to_blob()

    again = guard()
    again.load_blob(blob, known={"A01", "B02"})
    assert again.locked(T0)
    assert again.locked(T0, "A01")
    assert not again.locked(T0, "B02")
    assert again.to_blob() == blob

    forgetful = guard()
    forgetful.load_blob(blob, known={"B02"})
    assert not forgetful.locked(T0 + 1, "A01"), "a removed compartment's counter is dropped"
    assert forgetful.locked(T0 + 1)


@pytest.mark.parametrize(
    "blob",
    [b"not json", b"[1, 2]", b'"x"', b'{"keypad": 5, "compartments": [1]}', b"{}"],
)
def test_malformed_blobs_leave_fresh_counters(blob: bytes) -> None:
    g = guard()
    g.load_blob(blob, known={"A01"})
    assert g.consecutive_failures == 0
    assert not g.locked(T0)
    assert summary(g.failure(T0, "A01")) == [("rejected", 1, False)]
    assert g.to_blob() == (
        b'{"keypad": {"failures": 1, "lockouts": 0, "locked_until": null}, '
        b'"compartments": {"A01": {"failures": 1, "lockouts": 0, "locked_until": null}}}'
    )
