"""One OCPP 1.6J charge point as the central system sees it: the CP-initiated calls."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ocpp.routing import on as _ocpp_on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    RegistrationStatus,
)

if TYPE_CHECKING:
    from hub.ocpp.state import PileState

# The library logs every frame (id tags included) at INFO: keep its wire log at WARNING.
WIRE_LOG = logging.getLogger("hub.ocpp.wire")
WIRE_LOG.setLevel(logging.WARNING)
# websockets logs frame contents at DEBUG: its connection log stays at INFO even in debug runs.
SOCKET_LOG = logging.getLogger("hub.ocpp.websocket")
SOCKET_LOG.setLevel(logging.INFO)

_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: Action) -> Callable[[_F], _F]:
    """``ocpp.routing.on`` with a type (the library is untyped)."""
    decorator: Callable[[_F], _F] = _ocpp_on(action)
    return decorator


_ENERGY = "Energy.Active.Import.Register"
_POWER = "Power.Active.Import"


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _accepted() -> dict[str, str]:
    return {"status": AuthorizationStatus.accepted.value}


def sampled_readings(meter_value: Any) -> tuple[float | None, float | None]:
    """(energy register Wh, power W) from a MeterValues ``meterValue`` list (OCPP 1.6 7.31/7.45).

    Measurand defaults to the energy register and unit to Wh (section 7.45); phase values are
    skipped (the totals are what metering cares about). Garbage values are ignored.
    """
    energy = power = None
    if not isinstance(meter_value, list):
        return None, None
    for entry in meter_value[:32]:
        samples = entry.get("sampled_value", []) if isinstance(entry, dict) else []
        for s in samples[:64] if isinstance(samples, list) else []:
            if not isinstance(s, dict) or s.get("phase"):
                continue
            try:
                value = float(s.get("value", ""))
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value) or value < 0:
                continue
            unit = s.get("unit", "Wh")
            measurand = s.get("measurand", _ENERGY)
            if measurand == _ENERGY:
                energy = value * 1000 if unit == "kWh" else value
            elif measurand == _POWER:
                power = value * 1000 if unit == "kW" else value
    return energy, power


class PileEvents(Protocol):
    """What a handler reports to the central system (``hub.ocpp.server.CentralSystem``)."""

    @property
    def heartbeat_interval_s(self) -> int: ...

    async def on_boot(self, pile: PileState, *, vendor: str, model: str, firmware: str) -> bool: ...

    def on_heartbeat(self, pile: PileState) -> None: ...

    async def on_status(
        self, pile: PileState, connector_id: int, status: str, error_code: str
    ) -> None: ...

    async def on_start(
        self, pile: PileState, connector_id: int, id_tag: str, meter_start_wh: float
    ) -> int: ...

    def on_meter(
        self, pile: PileState, connector_id: int, energy_wh: float | None, power_w: float | None
    ) -> None: ...

    async def on_stop(
        self, pile: PileState, transaction_id: int, meter_stop_wh: float, reason: str
    ) -> None: ...


class PileHandler(ChargePoint):  # type: ignore[misc]
    """Answers a pile's calls; the state lives in the central system (:class:`PileEvents`)."""

    def __init__(
        self, pile: PileState, connection: Any, system: PileEvents, timeout_s: float
    ) -> None:
        super().__init__(pile.pile_id, connection, response_timeout=timeout_s, logger=WIRE_LOG)
        self.pile = pile
        self._system = system

    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        ok = await self._system.on_boot(
            self.pile,
            vendor=charge_point_vendor,
            model=charge_point_model,
            firmware=str(kwargs.get("firmware_version", "")),
        )
        return call_result.BootNotification(
            current_time=now_iso(),
            interval=self._system.heartbeat_interval_s,
            status=RegistrationStatus.accepted if ok else RegistrationStatus.rejected,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        self._system.on_heartbeat(self.pile)
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        await self._system.on_status(self.pile, connector_id, str(status), str(error_code))
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        # Fleet RFID tags are not checked against a list yet: any well-formed tag is accepted
        # (the schema already bounds it to 20 characters, CiString20Type).
        return call_result.Authorize(id_tag_info=_accepted())

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ) -> call_result.StartTransaction:
        transaction_id = await self._system.on_start(self.pile, connector_id, id_tag, meter_start)
        return call_result.StartTransaction(transaction_id=transaction_id, id_tag_info=_accepted())

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: Any, **kwargs: Any
    ) -> call_result.MeterValues:
        energy, power = sampled_readings(meter_value)
        self._system.on_meter(self.pile, connector_id, energy, power)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        await self._system.on_stop(
            self.pile, transaction_id, meter_stop, str(kwargs.get("reason", "Local"))
        )
        return call_result.StopTransaction(id_tag_info=_accepted())
