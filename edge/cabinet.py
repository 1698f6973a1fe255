"""Cabinet logic: compartment records, door state machines and the keypad lockout.

Pure state and decisions, no I/O: the agent reads the driver, asks these objects what a change
means, persists the outcome and publishes events. Issue 4 grows the door machine (left-open timers,
sensor faults) without touching the agent's plumbing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from lockerhub.v1 import common_pb2


class CompartmentState(enum.StrEnum):
    """A compartment's business state (lockerhub.v1.CompartmentState)."""

    FREE = "free"
    RESERVED = "reserved"
    OCCUPIED = "occupied"
    DISABLED = "disabled"
    FAULT = "fault"

    def to_proto(self) -> common_pb2.CompartmentState.ValueType:
        return _STATE_PROTO[self]


_STATE_PROTO = {
    CompartmentState.FREE: common_pb2.COMPARTMENT_STATE_FREE,
    CompartmentState.RESERVED: common_pb2.COMPARTMENT_STATE_RESERVED,
    CompartmentState.OCCUPIED: common_pb2.COMPARTMENT_STATE_OCCUPIED,
    CompartmentState.DISABLED: common_pb2.COMPARTMENT_STATE_DISABLED,
    CompartmentState.FAULT: common_pb2.COMPARTMENT_STATE_FAULT,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentRecord:
    """The persisted business state of one compartment (one row of the ``compartments`` table).

    A compartment holds at most one parcel: reserved for it (``reserved_until_ms``) or occupied by
    it; ``code_hash`` is the salted pickup-code hash (lockerhub.codes), never the code.
    """

    compartment_id: str
    state: CompartmentState = CompartmentState.FREE
    parcel_id: str | None = None
    reserved_until_ms: int | None = None
    code_hash: str | None = None
    code_deadline_ms: int | None = None

    def reservation_live(self, now_ms: int) -> bool:
        """True while a reservation holds this compartment (0/None expiry = no expiry)."""
        return self.state is CompartmentState.RESERVED and (
            not self.reserved_until_ms or now_ms <= self.reserved_until_ms
        )

    def freed(self) -> CompartmentRecord:
        """The same compartment, free and holding nothing."""
        return CompartmentRecord(compartment_id=self.compartment_id)

    def reserved(self, parcel_id: str, until_ms: int | None) -> CompartmentRecord:
        return replace(
            self,
            state=CompartmentState.RESERVED,
            parcel_id=parcel_id,
            reserved_until_ms=until_ms or None,
        )

    def occupied(self) -> CompartmentRecord:
        return replace(self, state=CompartmentState.OCCUPIED, reserved_until_ms=None)


class Intent(enum.StrEnum):
    """Why the agent opened a door."""

    COMMAND = "command"
    DEPOSIT = "deposit"
    PICKUP = "pickup"


@dataclass(frozen=True, slots=True)
class Armed:
    """The agent fired the relay for ``intent``; an open before ``until_ms`` is expected."""

    intent: Intent
    parcel_id: str | None
    until_ms: int


class DoorPhase(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class DoorOpened:
    """The door opened; ``intent`` None means nobody commanded it (forced)."""

    intent: Intent | None
    parcel_id: str | None


@dataclass(frozen=True, slots=True)
class DoorClosed:
    """The door closed after an open for ``intent`` (None: forced or unknown)."""

    intent: Intent | None
    parcel_id: str | None


DoorTransition = DoorOpened | DoorClosed


class DoorMachine:
    """Door state of one compartment: closed -> (armed) -> open -> closed.

    Arming happens before the relay fires so the sensor's open is attributed to the command, scan
    or code; an open with no live arming is forced (domain notes: any open nobody commanded is an
    alarm). Issue 4 adds a left-open deadline on the OPEN phase.
    """

    __slots__ = ("_armed", "_open_for", "phase")

    def __init__(self, *, door_open: bool = False) -> None:
        self.phase = DoorPhase.OPEN if door_open else DoorPhase.CLOSED
        self._armed: Armed | None = None
        self._open_for: Armed | None = None

    def arm(self, intent: Intent, parcel_id: str | None, until_ms: int) -> None:
        """Expect an open for ``intent`` until ``until_ms``."""
        self._armed = Armed(intent, parcel_id, until_ms)
        if self.phase is DoorPhase.OPEN and self._open_for is None:
            # The door was already open (ALREADY_OPEN): the relay pulse adopts this open.
            self._open_for = self._armed
            self._armed = None

    def disarm(self) -> None:
        """Forget an arming that did not lead to an open (jammed)."""
        self._armed = None

    def on_door(self, door_open: bool, now_ms: int) -> DoorTransition | None:
        """Feed a door sensor change; returns what it means, or None for a repeat reading."""
        if door_open:
            if self.phase is DoorPhase.OPEN:
                return None
            self.phase = DoorPhase.OPEN
            armed, self._armed = self._armed, None
            if armed is not None and now_ms <= armed.until_ms:
                self._open_for = armed
                return DoorOpened(armed.intent, armed.parcel_id)
            self._open_for = None
            return DoorOpened(None, None)
        if self.phase is DoorPhase.CLOSED:
            return None
        self.phase = DoorPhase.CLOSED
        opened_for, self._open_for = self._open_for, None
        if opened_for is None:
            return DoorClosed(None, None)
        return DoorClosed(opened_for.intent, opened_for.parcel_id)


@dataclass(frozen=True, slots=True)
class KeypadVerdict:
    """What a wrong entry did to the keypad."""

    consecutive_failures: int
    locked_out: bool
    lockout_started: bool


class Keypad:
    """Wrong-code counting and lockout for one keypad.

    Kept in memory for now; issue 4 persists it (so a power cycle does not reset a lockout), counts
    per compartment too and grows the lockout period.
    """

    def __init__(self, *, max_failures: int, lockout_ms: int) -> None:
        self._max = max_failures
        self._lockout_ms = lockout_ms
        self._failures = 0
        self._locked_until: int | None = None

    def locked(self, now_ms: int) -> bool:
        """True during a lockout; the end of a lockout resets the failure count."""
        if self._locked_until is None:
            return False
        if now_ms < self._locked_until:
            return True
        self._locked_until = None
        self._failures = 0
        return False

    @property
    def failures(self) -> int:
        return self._failures

    def failure(self, now_ms: int) -> KeypadVerdict:
        """Count a wrong code (or an entry made during a lockout)."""
        if self.locked(now_ms):
            return KeypadVerdict(self._failures, locked_out=True, lockout_started=False)
        self._failures += 1
        if self._failures >= self._max:
            self._locked_until = now_ms + self._lockout_ms
            return KeypadVerdict(self._failures, locked_out=True, lockout_started=True)
        return KeypadVerdict(self._failures, locked_out=False, lockout_started=False)

    def success(self) -> None:
        self._failures = 0
