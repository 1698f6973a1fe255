"""Driver inputs: doors, item sensors, scans and keypad codes (and a sorting line's events)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from edge import couriers
from edge.cabinet import DoorClosed, DoorOpened, Intent
from edge.commands import valid_id
from edge.couriers import CourierSession, NonceBook
from edge.errors import DriverError
from edge.messages import alarm, event, match_code
from edge.settings import EdgeSettings
from edge.sorter import SorterController
from edge.state import CabinetState, Change
from edge.stats import AgentStats
from lockerhub.driver import (
    ChuteChanged,
    DoorChanged,
    DropConfirmed,
    HardwareDriver,
    Inducted,
    InputEvent,
    ItemChanged,
    KeypadEntry,
    Scanned,
)
from lockerhub.errors import ContractError
from lockerhub.states import CompartmentState
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)
KV_NONCES = "courier_nonces"


async def open_door(
    tx: Change,
    driver: HardwareDriver,
    cid: str,
    intent: Intent,
    parcel_id: str | None,
    *,
    arm_ms: int,
) -> None:
    """Arm the door machine, then pulse the relay (inside a change block: the lock is held)."""
    state = tx.state
    door = state.doors[cid]
    door.arm(intent, parcel_id, state.clock.now_ms() + arm_ms)
    try:
        await driver.fire_relay(cid)
    except DriverError:
        door.disarm()
        raise


class Inputs:
    """Reads the driver's input stream and turns it into door machine moves, events and opens."""

    def __init__(
        self,
        settings: EdgeSettings,
        state: CabinetState,
        driver: HardwareDriver,
        *,
        stats: AgentStats,
        sorter: SorterController | None,
    ) -> None:
        self._settings = settings
        self._state = state
        self._driver = driver
        self._stats = stats
        self._sorter = sorter
        self._session: CourierSession | None = None
        self._nonces = NonceBook()
        # Compartment -> the courier whose scan opened it for a deposit (named in Deposited).
        self._depositors: dict[str, str] = {}

    async def run(self) -> None:
        """Handle inputs until the driver's stream ends."""
        raw = await self._state.store.get_blob(KV_NONCES)
        if raw:
            self._nonces.load_blob(raw)
        async for item in self._driver.inputs():
            try:
                await self.handle(item)
            except DriverError as exc:
                self._stats.input_errors += 1
                log.warning("input %s not handled: %s", type(item).__name__, exc)

    async def handle(self, item: InputEvent) -> None:
        sorter = self._sorter
        match item:
            case DoorChanged(compartment_id=cid, open=is_open):
                await self._on_door(cid, is_open)
            case ItemChanged(compartment_id=cid, present=present):
                await self._on_item(cid, present)
            case Scanned(code=code):
                await self._on_scan(code)
            case KeypadEntry(code=code, compartment_id=cid):
                await self._on_code(code, cid)
            case Inducted() if sorter is not None:
                await sorter.on_inducted(item)
            case DropConfirmed() if sorter is not None:
                await sorter.on_confirmed(item)
            case ChuteChanged(chute_id=chute, full=full) if sorter is not None:
                await sorter.on_chute(chute, full)

    async def _open(self, tx: Change, cid: str, intent: Intent, parcel_id: str | None) -> None:
        await open_door(tx, self._driver, cid, intent, parcel_id, arm_ms=self._settings.door.arm_ms)

    async def _on_item(self, cid: str, present: bool) -> None:
        """An item can only appear or vanish while its door is open (or about to be)."""
        door = self._state.doors.get(cid)
        if door is None:
            return
        if not door.busy:
            self._stats.sensor_faults += 1
            log.warning("item sensor of %s changed behind a closed door", cid)
            async with self._state.change() as tx:
                tx.emit(
                    alarm(
                        common_pb2.ALARM_KIND_SENSOR_FAULT,
                        cid,
                        f"item sensor read {'present' if present else 'empty'} "
                        "with the door closed",
                    )
                )
        self._state.telemetry_due.set()

    async def _sign_in(self, text: str, *, keypad: bool) -> None:
        """A courier's code or app token: a session, or a counted failure (never logged)."""
        state = self._state
        now = state.clock.now_ms()
        desired = state.desired
        try:
            if state.pickup.blocked(now, None):
                raise ContractError("credential entry locked out")
            if desired is None:
                raise ContractError("no desired state yet")
            if keypad:
                cred = await asyncio.to_thread(couriers.check_code, text, desired)
            else:
                cred = couriers.check_token(text, desired, self._nonces, now)
        except ContractError as exc:
            self._session = None
            log.info("courier sign-in refused: %s", exc)
            async with state.change() as tx:
                tx.emit(*tx.guard().failure(now, None))
            return
        session_ms = int(self._settings.keypad.courier_session_s * 1000)
        self._session = CourierSession(cred.courier_id, cred.carrier_id, now + session_ms)
        log.info("courier %s signed in", cred.courier_id)
        async with state.change() as tx:
            tx.guard().success("")
            if not keypad:  # a used nonce survives a restart
                tx.put(KV_NONCES, self._nonces.to_blob())

    def _courier_for(self, parcel_id: str, now: int) -> str | None:
        """The signed-in courier allowed to deposit ``parcel_id`` ("" when couriers are not
        managed), or None: refused."""
        desired = self._state.desired
        if not couriers.required(desired):
            return ""
        assert desired is not None
        s = self._session
        if s is None or s.until_ms <= now:
            log.info("scan refused: no courier signed in")
            return None
        try:  # still allowed now (the desired state may have changed since the sign-in)
            couriers.check_allowed(desired, s.courier_id)
        except ContractError as exc:
            self._session = None
            log.info("scan refused: %s", exc)
            return None
        if couriers.parcel_carrier(desired, parcel_id) != s.carrier_id:
            log.info("scan refused: the parcel is not of courier %s's carrier", s.courier_id)
            return None
        return s.courier_id

    async def _on_scan(self, parcel_id: str) -> None:
        if couriers.is_credential(parcel_id, keypad=False):
            await self._sign_in(parcel_id, keypad=False)
            return
        async with self._state.change() as tx:
            now = self._state.clock.now_ms()
            rec = next(
                (
                    r
                    for r in self._state.records.values()
                    if valid_id(parcel_id)
                    and r.parcel_id == parcel_id
                    and r.reservation_live(now)
                    and not r.disabled
                ),
                None,
            )
            if rec is None:
                self._stats.scans_refused += 1
                log.info("scan refused: no live reservation for the scanned parcel")
                return
            courier = self._courier_for(rec.parcel_id or "", now)
            if courier is None:
                self._stats.scans_refused += 1
                return
            self._depositors[rec.compartment_id] = courier
            await self._open(tx, rec.compartment_id, Intent.DEPOSIT, rec.parcel_id)

    async def _on_code(self, code: str, chosen: str | None = None) -> None:
        if couriers.is_credential(code, keypad=True):
            await self._sign_in(code, keypad=True)
            return
        state = self._state
        now = state.clock.now_ms()
        if chosen is not None and chosen not in state.specs:
            chosen = None
        if not state.pickup.blocked(now, chosen):
            candidates = [
                (r.compartment_id, r.parcel_id, r.code_hash)
                for r in state.records.values()
                if r.state is CompartmentState.OCCUPIED
                and r.code_hash
                and (chosen is None or r.compartment_id == chosen)
            ]
            # PBKDF2 per live code: off the loop (conventions: nothing blocks the event loop).
            match = await asyncio.to_thread(match_code, code, candidates)
            if match is not None:
                async with state.change() as tx:
                    tx.guard().success(match[0])
                    await tx.commit()  # the reset counters are on disk before the door opens
                    await self._open(tx, match[0], Intent.PICKUP, match[1])
                return
        async with state.change() as tx:
            tx.emit(*tx.guard().failure(now, chosen))
        log.info("wrong pickup code (%d consecutive)", state.pickup.consecutive_failures)

    async def _on_door(self, cid: str, is_open: bool) -> None:
        if cid not in self._state.doors:
            log.warning("door change on unknown compartment %.20r ignored", cid)
            return
        async with self._state.change() as tx:
            await self._door_changed(tx, cid, is_open)

    async def _door_changed(self, tx: Change, cid: str, is_open: bool) -> None:
        state = self._state
        door = state.doors[cid]
        was_left_open = door.left_open_alarmed
        transition = door.on_door(is_open, state.clock.now_ms())
        if transition is None:
            return
        commanded = transition.intent is not None
        tx.emit(
            event(
                door_changed=device_pb2.DoorChanged(
                    compartment_id=cid, open=is_open, commanded=commanded
                )
            )
        )
        if isinstance(transition, DoorOpened) and not commanded:
            log.warning("compartment %s opened without a command", cid)
            tx.emit(alarm(common_pb2.ALARM_KIND_DOOR_FORCED, cid, "opened uncommanded"))
        if not isinstance(transition, DoorClosed):
            return
        if was_left_open:
            tx.emit(alarm(common_pb2.ALARM_KIND_DOOR_LEFT_OPEN, cid, "closed", active=False))
        if not commanded:
            tx.emit(alarm(common_pb2.ALARM_KIND_DOOR_FORCED, cid, "closed", active=False))
        rec = state.records[cid]
        now = state.clock.now_ms()
        try:
            item: bool | None = await self._driver.read_item(cid)
        except DriverError as exc:
            # A broken sensor is a fault, never a parcel (nor the absence of one).
            self._stats.sensor_faults += 1
            log.warning("item sensor of %s unreadable: %s", cid, exc)
            tx.emit(alarm(common_pb2.ALARM_KIND_SENSOR_FAULT, cid, "item sensor unreadable"))
            item = None
        parcel = rec.parcel_id if rec.parcel_id == transition.parcel_id else None
        if parcel is None:
            return
        if (
            transition.intent is Intent.DEPOSIT
            and item is True
            and rec.state is CompartmentState.RESERVED
        ):
            tx.save(dataclasses.replace(rec.occupied(), local_ms=now))
            courier = self._depositors.pop(cid, "")
            tx.emit(
                event(
                    deposited=device_pb2.Deposited(
                        parcel_id=parcel, compartment_id=cid, courier_id=courier
                    )
                )
            )
        elif (
            transition.intent is Intent.PICKUP
            and item is False
            and rec.state is CompartmentState.OCCUPIED
        ):
            tx.save(dataclasses.replace(rec.freed(), local_ms=now))
            tx.emit(event(picked_up=device_pb2.PickedUp(parcel_id=parcel, compartment_id=cid)))
