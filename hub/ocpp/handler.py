"""One OCPP 1.6J charge point as the central system sees it: the CP-initiated calls."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict
from ocpp.charge_point import snake_to_camel_case as _snake_to_camel
from ocpp.exceptions import OCPPError
from ocpp.messages import get_validator
from ocpp.routing import on as _ocpp_on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, DataTransferStatus, RegistrationStatus

from hub.ocpp import frames

if TYPE_CHECKING:
    from hub.ocpp.state import PileState

log = logging.getLogger(__name__)
# The library logs frames (id tags included) at INFO and, for a failed call, at ERROR. Incoming
# calls never reach it (this module dispatches them); its wire log stays at WARNING.
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

    async def on_heartbeat(self, pile: PileState) -> None: ...

    async def on_heard(self, pile: PileState) -> None: ...

    def authorize(self, id_tag: str) -> str: ...

    def count_frame(self, outcome: str) -> None: ...

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


# JSON-schema keyword -> OCPP-J 1.6 section 4.2.3 error code.
_SCHEMA_CODES = {
    "required": frames.PROTOCOL_ERROR,
    "type": frames.TYPE_CONSTRAINT_VIOLATION,
    "maxLength": frames.TYPE_CONSTRAINT_VIOLATION,
    "enum": frames.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": frames.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": frames.PROPERTY_CONSTRAINT_VIOLATION,
    "format": frames.PROPERTY_CONSTRAINT_VIOLATION,
    "minItems": frames.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": frames.OCCURENCE_CONSTRAINT_VIOLATION,
}


def schema_error(action: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    """(code, description) when ``payload`` breaks the 1.6 schema of ``action``, else None.

    The description names the field, never its value (an id tag must not travel into logs).
    """
    error = best_match(get_validator(frames.CALL, action, "1.6").iter_errors(payload))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path)[:60] or "payload"
    code = _SCHEMA_CODES.get(str(error.validator), frames.FORMATION_VIOLATION)
    return code, f"{action}: {where} breaks the {error.validator} rule"


class PileHandler(ChargePoint):  # type: ignore[misc]
    """Answers a pile's calls; the state lives in the central system (:class:`PileEvents`).

    Incoming frames are decoded by :mod:`hub.ocpp.frames` and calls dispatched here (the
    library's own dispatcher logs payloads and answers with OCPP 2.0.1 error names); the
    library is used for the schemas and for the calls the hub makes (:meth:`call_pile`).
    """

    def __init__(
        self,
        pile: PileState,
        connection: Any,
        system: PileEvents,
        timeout_s: float,
        *,
        booted: bool = False,
    ) -> None:
        super().__init__(pile.pile_id, connection, response_timeout=timeout_s, logger=WIRE_LOG)
        self.pile = pile
        # OCPP 1.6 section 4.2: until a BootNotification is Accepted, only BootNotification.
        self.booted = booted
        self._system = system
        self._pending: set[str] = set()

    async def serve(self) -> None:
        """Handle messages until the socket closes (raises ConnectionClosed if abnormally)."""
        async for raw in self._connection:
            await self.handle(raw)

    async def handle(self, raw: str | bytes) -> None:
        """One websocket message: answer it, pass it to a waiting call, or drop and count it."""
        frame = frames.decode(raw)
        if isinstance(frame, frames.Dropped):
            self._system.count_frame(f"dropped_{frame.reason}")
        elif isinstance(frame, frames.Rejected):
            await self._error(frame.unique_id, frame.code, frame.description)
        elif isinstance(frame, frames.CallFrame):
            await self._dispatch(frame)
        elif frame.unique_id in self._pending:
            self._pending.discard(frame.unique_id)  # one answer per call: repeats are dropped
            await self.route_message(raw)  # the library's call() is waiting for it
        else:
            self._system.count_frame("dropped_unexpected_result")

    async def call_pile(self, payload: Any) -> Any:
        """The library's ``call`` with the unique id remembered, so only its answer is passed."""
        unique_id = str(uuid.uuid4())
        self._pending.add(unique_id)
        try:
            return await self.call(payload, unique_id=unique_id)
        finally:
            self._pending.discard(unique_id)

    async def _error(self, unique_id: str, code: str, description: str) -> None:
        self._system.count_frame(f"callerror_{frames.code_1_6(code)}")
        await self._connection.send(frames.call_error(unique_id, code, description))

    async def _dispatch(self, frame: frames.CallFrame) -> None:
        try:
            action = Action(frame.action)
        except ValueError:
            return await self._error(frame.unique_id, frames.NOT_IMPLEMENTED, "unknown action")
        method = self.route_map.get(action.value, {}).get("_on_action")
        if method is None:
            return await self._error(
                frame.unique_id, frames.NOT_SUPPORTED, f"{action.value} is not supported"
            )
        if not self.booted and action is not Action.boot_notification:
            return await self._error(
                frame.unique_id, frames.SECURITY_ERROR, "BootNotification not accepted yet"
            )
        invalid = schema_error(action.value, frame.payload)
        if invalid is not None:
            return await self._error(frame.unique_id, *invalid)
        if self.booted and action not in (Action.boot_notification, Action.heartbeat):
            await self._system.on_heard(self.pile)  # the Heartbeat handler records its own
        try:
            result = await method(**camel_to_snake_case(frame.payload))
        except OCPPError as exc:
            return await self._error(frame.unique_id, exc.code, str(exc.description or ""))
        except Exception:
            # The traceback, not the payload: payloads carry id tags.
            log.exception("charge point %s: %s handler failed", self.pile.pile_id, action.value)
            return await self._error(frame.unique_id, frames.INTERNAL_ERROR, "internal error")
        payload = _snake_to_camel(remove_nones(serialize_as_dict(result)))
        self._system.count_frame("answered")
        await self._connection.send(frames.call_result(frame.unique_id, payload))
        return None

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
        self.booted = self.booted or ok
        return call_result.BootNotification(
            current_time=now_iso(),
            interval=self._system.heartbeat_interval_s,
            status=RegistrationStatus.accepted if ok else RegistrationStatus.rejected,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        await self._system.on_heartbeat(self.pile)  # booted: dispatch refuses it before
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        await self._system.on_status(self.pile, connector_id, str(status), str(error_code))
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": self._system.authorize(id_tag)})

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ) -> call_result.StartTransaction:
        status = self._system.authorize(id_tag)
        if status != "Accepted":
            # OCPP 1.6 section 5.19: the answer carries a transactionId even when the tag is
            # refused; 0 names no stored session (the pile then stops, reason DeAuthorized).
            return call_result.StartTransaction(transaction_id=0, id_tag_info={"status": status})
        transaction_id = await self._system.on_start(self.pile, connector_id, id_tag, meter_start)
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": status}
        )

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
        id_tag = kwargs.get("id_tag")
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info={"status": self._system.authorize(id_tag)})

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        # OCPP 1.6 section 4.3: no vendor extension is implemented, so every vendorId is unknown.
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)
