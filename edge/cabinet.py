"""Cabinet logic: compartment records, door state machines and the keypad lockout.

Pure state and decisions, no I/O: the agent reads the driver, asks these objects what a change
means, persists the outcome and publishes events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from lockerhub.states import CompartmentState


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
    # Disabled by the hub (SetCompartmentEnabled / desired state): no new reservations or
    # deposits; a parcel inside can still be picked up.
    disabled: bool = False
    # When the cabinet itself last changed this record (deposit, pickup): while the hub may not
    # know yet, its desired state does not overwrite the record (edge.desired).
    local_ms: int | None = None

    def reported_state(self) -> CompartmentState:
        """The state the hub sees: DISABLED for a disabled compartment holding no parcel."""
        if self.disabled and self.state is not CompartmentState.OCCUPIED:
            return CompartmentState.DISABLED
        return self.state

    def reservation_live(self, now_ms: int) -> bool:
        """True while a reservation holds this compartment (0/None expiry = no expiry)."""
        return self.state is CompartmentState.RESERVED and (
            not self.reserved_until_ms or now_ms <= self.reserved_until_ms
        )

    def freed(self) -> CompartmentRecord:
        """The same compartment, free and holding nothing (disabled stays disabled)."""
        return CompartmentRecord(
            compartment_id=self.compartment_id, disabled=self.disabled, local_ms=self.local_ms
        )

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
    alarm). ``opened_ms`` and ``left_open_alarmed`` drive the door-left-open alarm.
    """

    __slots__ = ("_armed", "_open_for", "left_open_alarmed", "opened_ms", "phase")

    def __init__(self, *, door_open: bool = False, now_ms: int = 0) -> None:
        self.phase = DoorPhase.OPEN if door_open else DoorPhase.CLOSED
        self._armed: Armed | None = None
        self._open_for: Armed | None = None
        self.opened_ms: int | None = now_ms if door_open else None
        self.left_open_alarmed = False

    def left_open(self, now_ms: int, limit_ms: int) -> bool:
        """True when the door has been open longer than ``limit_ms`` and nobody was told yet.

        Pure: the caller marks the alarm raised (``left_open_raised``) once it is committed.
        """
        if self.phase is not DoorPhase.OPEN or self.opened_ms is None or self.left_open_alarmed:
            return False
        return now_ms - self.opened_ms > limit_ms

    def left_open_raised(self) -> None:
        """The door-left-open alarm of this open is committed: raise it once per open."""
        self.left_open_alarmed = True

    @property
    def busy(self) -> bool:
        """An open is expected or in progress (item changes are legitimate)."""
        return self.phase is DoorPhase.OPEN or self._armed is not None

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
            self.opened_ms = now_ms
            self.left_open_alarmed = False
            armed, self._armed = self._armed, None
            if armed is not None and now_ms <= armed.until_ms:
                self._open_for = armed
                return DoorOpened(armed.intent, armed.parcel_id)
            self._open_for = None
            return DoorOpened(None, None)
        if self.phase is DoorPhase.CLOSED:
            return None
        self.phase = DoorPhase.CLOSED
        self.opened_ms = None
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
    lockout_ms: int = 0


# A lockout never grows past a day, whatever the doubling says.
MAX_LOCKOUT_MS = 86_400_000


class Keypad:
    """Wrong-code counting and a growing lockout, for one keypad or one compartment.

    After ``max_failures`` consecutive wrong codes the keypad locks for ``lockout_ms``, doubling
    with each further lockout (capped at ``max_lockout_ms``) until a correct code resets it. The
    state round-trips through ``to_json``/``from_json`` so the agent persists it: a power cycle
    must not be a way to reset a lockout.
    """

    def __init__(
        self, *, max_failures: int, lockout_ms: int, max_lockout_ms: int = MAX_LOCKOUT_MS
    ) -> None:
        self._max = max_failures
        self._lockout_ms = lockout_ms
        self._max_lockout_ms = max(max_lockout_ms, lockout_ms)
        self._failures = 0
        self._lockouts = 0
        self._locked_until: int | None = None

    def configure(self, *, max_failures: int, lockout_ms: int) -> None:
        """Apply new limits (hub config) without forgetting counts."""
        self._max = max_failures
        self._lockout_ms = lockout_ms
        self._max_lockout_ms = max(self._max_lockout_ms, lockout_ms)

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

    @property
    def lockouts(self) -> int:
        """Lockouts since the last correct code (the growth exponent)."""
        return self._lockouts

    def failure(self, now_ms: int) -> KeypadVerdict:
        """Count a wrong code (or an entry made during a lockout)."""
        if self.locked(now_ms):
            return KeypadVerdict(self._failures, locked_out=True, lockout_started=False)
        self._failures += 1
        if self._failures >= self._max:
            period = min(self._max_lockout_ms, self._lockout_ms * 2 ** min(self._lockouts, 20))
            self._lockouts += 1
            self._locked_until = now_ms + period
            return KeypadVerdict(
                self._failures, locked_out=True, lockout_started=True, lockout_ms=period
            )
        return KeypadVerdict(self._failures, locked_out=False, lockout_started=False)

    def success(self) -> None:
        self._failures = 0
        self._lockouts = 0
        self._locked_until = None

    def to_json(self) -> dict[str, int | None]:
        return {
            "failures": self._failures,
            "lockouts": self._lockouts,
            "locked_until": self._locked_until,
        }

    def load_json(self, data: object) -> None:
        """Restore counts saved by ``to_json``; anything malformed leaves a fresh keypad."""
        if not isinstance(data, dict):
            return
        failures, lockouts, until = (
            data.get("failures"),
            data.get("lockouts"),
            data.get("locked_until"),
        )
        if isinstance(failures, int) and isinstance(lockouts, int) and failures >= 0:
            self._failures = failures
            self._lockouts = max(lockouts, 0)
            self._locked_until = until if isinstance(until, int) else None
