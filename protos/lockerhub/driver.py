"""The hardware driver interface: the only way the agent touches relays, sensors, meter and inputs.

A contract between the edge agent and whatever drives the hardware: ``edge.modbus.ModbusDriver``
(real lock/input boards and meters) and ``firmware_sim``'s simulated cabinets and sorting lines
implement it; neither side imports the other.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable


class DriverError(Exception):
    """A hardware driver operation failed (relay, sensor, meter or input), or was refused."""


class SizeClass(enum.StrEnum):
    """Compartment size class (matches lockerhub.v1.SizeClass)."""

    XS = "XS"
    S = "S"
    M = "M"
    L = "L"
    XL = "XL"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentSpec:
    """One compartment as the hardware has it: id, size class, inner dimensions, limits, zone."""

    compartment_id: str
    size: SizeClass
    width_mm: int
    height_mm: int
    depth_mm: int
    max_weight_g: int
    chilled: bool = False
    # The lock board this compartment's relay and sensors sit on.
    board: int = 0


@dataclass(frozen=True, slots=True)
class MeterReading:
    """Energy meter sample: cumulative active energy (Wh) and instantaneous power (W)."""

    energy_wh: float
    power_w: float


@dataclass(frozen=True, slots=True)
class DoorChanged:
    """A door sensor changed state."""

    compartment_id: str
    open: bool


@dataclass(frozen=True, slots=True)
class ItemChanged:
    """An item (presence) sensor changed state."""

    compartment_id: str
    present: bool


@dataclass(frozen=True, slots=True)
class Scanned:
    """The courier scanner read a code (a parcel id)."""

    code: str


@dataclass(frozen=True, slots=True)
class KeypadEntry:
    """A recipient entered a code on the keypad. Personal data: never log ``code``.

    ``compartment_id`` is set on keypads where the recipient first picks the compartment; the
    code is then checked against that compartment only and failures count against it too.
    """

    code: str
    compartment_id: str | None = None

    def __repr__(self) -> str:
        return "KeypadEntry(code=<redacted>)"


@dataclass(frozen=True, slots=True)
class Inducted:
    """Sorting line: an item passed the scanner; ``parcel_id``/``destination`` None on a no-read.

    ``item_id`` names the tray/carrier for the line's life; ``round`` counts passes (0 = first).
    """

    item_id: str
    parcel_id: str | None
    destination: str | None
    round: int = 0


@dataclass(frozen=True, slots=True)
class DropConfirmed:
    """Sorting line: the chute's photo-eye saw the item drop."""

    item_id: str
    chute_id: str


@dataclass(frozen=True, slots=True)
class ChuteChanged:
    """Sorting line: a chute's full sensor changed."""

    chute_id: str
    full: bool


InputEvent = (
    DoorChanged | ItemChanged | Scanned | KeypadEntry | Inducted | DropConfirmed | ChuteChanged
)


@runtime_checkable
class HardwareDriver(Protocol):
    """What the agent needs from a cabinet's hardware. Every method may raise DriverError."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def compartments(self) -> Sequence[CompartmentSpec]:
        """The compartments this hardware has, in a stable order."""
        ...

    async def fire_relay(self, compartment_id: str) -> None:
        """Pulse the lock relay of a compartment (a pulse is not proof the door opened)."""
        ...

    async def read_door(self, compartment_id: str) -> bool:
        """True when the door sensor reads open."""
        ...

    async def read_item(self, compartment_id: str) -> bool:
        """True when the item sensor detects something inside."""
        ...

    async def read_meter(self) -> MeterReading:
        """The cabinet's energy meter."""
        ...

    async def read_temperature(self, compartment_id: str) -> float | None:
        """Temperature (C) of a chilled compartment; None where there is no probe."""
        ...

    async def relays_off(self, board: int) -> None:
        """De-energise every relay of one lock board (start-up; a dead board raises)."""
        ...

    def inputs(self) -> AsyncIterator[InputEvent]:
        """Sensor changes and keypad/scanner entries, in the order they happened."""
        ...


@runtime_checkable
class SorterDriver(Protocol):
    """What a sorting line adds to HardwareDriver (inputs carry Inducted/DropConfirmed)."""

    def chutes(self) -> Sequence[str]:
        """The line's chutes, in a stable order."""
        ...

    async def divert(self, item_id: str, chute_id: str) -> None:
        """Tilt the item's tray into ``chute_id`` as it passes (a drop is confirmed separately)."""
        ...

    async def recirculate(self, item_id: str) -> None:
        """Let the item ride another loop; it is inducted again with ``round + 1``."""
        ...

    async def chute_full(self, chute_id: str) -> bool:
        """The chute's full sensor."""
        ...
