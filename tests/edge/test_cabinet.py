"""Door state machine and keypad lockout: pure logic."""

from __future__ import annotations

from edge.cabinet import DoorClosed, DoorMachine, DoorOpened, Intent, Keypad


def test_armed_open_is_commanded_and_close_reports_intent() -> None:
    door = DoorMachine()
    door.arm(Intent.DEPOSIT, "P1", until_ms=1_000)
    assert door.on_door(True, 500) == DoorOpened(Intent.DEPOSIT, "P1")
    assert door.on_door(True, 600) is None  # repeated reading
    assert door.on_door(False, 700) == DoorClosed(Intent.DEPOSIT, "P1")
    assert door.on_door(False, 800) is None


def test_unarmed_or_late_open_is_forced() -> None:
    door = DoorMachine()
    assert door.on_door(True, 0) == DoorOpened(None, None)
    assert door.on_door(False, 1) == DoorClosed(None, None)
    door.arm(Intent.COMMAND, None, until_ms=10)
    assert door.on_door(True, 11) == DoorOpened(None, None)


def test_arming_an_open_door_adopts_it() -> None:
    door = DoorMachine(door_open=True)
    door.arm(Intent.PICKUP, "P2", until_ms=100)
    assert door.on_door(False, 50) == DoorClosed(Intent.PICKUP, "P2")


def test_disarm_after_jam() -> None:
    door = DoorMachine()
    door.arm(Intent.COMMAND, None, until_ms=100)
    door.disarm()
    assert door.on_door(True, 50) == DoorOpened(None, None)


def test_keypad_locks_after_max_failures_and_unlocks_after_period() -> None:
    pad = Keypad(max_failures=3, lockout_ms=1_000)
    verdicts = [pad.failure(t) for t in (0, 1, 2)]
    assert [(v.consecutive_failures, v.locked_out, v.lockout_started) for v in verdicts] == [
        (1, False, False),
        (2, False, False),
        (3, True, True),
    ]
    assert pad.locked(500)
    during = pad.failure(600)
    assert during.locked_out
    assert not during.lockout_started
    assert not pad.locked(1_002)
    assert pad.failures == 0
    pad.failure(1_100)
    pad.success()
    assert pad.failures == 0
