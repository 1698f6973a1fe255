"""Command decisions on compartment records: reserve, cancel, set pickup code, enable/disable.

Pure functions: the agent executes doors, persists what these return and publishes the result.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from edge.cabinet import CompartmentRecord
from lockerhub.states import CompartmentState
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Applied:
    """What a command did: its result plus the state and events committed with it."""

    result: device_pb2.CommandResult
    compartments: tuple[CompartmentRecord, ...] = ()
    events: tuple[device_pb2.DeviceEvent, ...] = ()


def valid_id(value: str) -> bool:
    """A parcel/compartment id that is safe to store and to put in a topic-free payload."""
    return 0 < len(value) <= 64 and value.isprintable() and not any(c in value for c in "/+#")


def make_result(
    command: device_pb2.Command,
    outcome: common_pb2.CommandOutcome.ValueType,
    now_ms: int,
    detail: str = "",
    *,
    relay_fired: bool = False,
) -> device_pb2.CommandResult:
    """The CommandResult of ``command``."""
    return device_pb2.CommandResult(
        command_id=command.command_id,
        outcome=outcome,
        ts_ms=now_ms,
        relay_fired=relay_fired,
        detail=detail,
    )


def _r(
    command: device_pb2.Command,
    now_ms: int,
    outcome: common_pb2.CommandOutcome.ValueType,
    detail: str = "",
) -> device_pb2.CommandResult:
    return make_result(command, outcome, now_ms, detail)


def apply_record_command(
    records: Mapping[str, CompartmentRecord], command: device_pb2.Command, now_ms: int
) -> Applied:
    """Reserve, cancel, set-code and enable/disable commands: pure decisions on the records."""
    rejected = common_pb2.COMMAND_OUTCOME_REJECTED
    applied = common_pb2.COMMAND_OUTCOME_APPLIED
    body = command.WhichOneof("body")
    now = now_ms
    if body == "reserve_compartment":
        r = command.reserve_compartment
        rec = records.get(r.compartment_id)
        if rec is None or not valid_id(r.parcel_id):
            return Applied(_r(command, now_ms, rejected, "unknown compartment or parcel"))
        if r.expires_ms and r.expires_ms <= now:
            return Applied(_r(command, now_ms, rejected, "reservation already expired"))
        if held_elsewhere(records, r.parcel_id, r.compartment_id, now):
            return Applied(_r(command, now_ms, rejected, "parcel held in another compartment"))
        reusable = rec.state is CompartmentState.FREE or (
            rec.state is CompartmentState.RESERVED
            and (rec.parcel_id == r.parcel_id or not rec.reservation_live(now))
        )
        if rec.disabled:
            return Applied(_r(command, now_ms, rejected, "compartment is disabled"))
        if not reusable:
            return Applied(_r(command, now_ms, rejected, f"compartment is {rec.state}"))
        return Applied(_r(command, now_ms, applied), (rec.reserved(r.parcel_id, r.expires_ms),))
    if body == "cancel_reservation":
        c = command.cancel_reservation
        rec = records.get(c.compartment_id)
        if rec is None:
            return Applied(_r(command, now_ms, rejected, "unknown compartment"))
        if rec.parcel_id != c.parcel_id or rec.state is not CompartmentState.RESERVED:
            if rec.parcel_id == c.parcel_id and rec.state is CompartmentState.OCCUPIED:
                return Applied(_r(command, now_ms, rejected, "parcel already deposited"))
            return Applied(_r(command, now_ms, applied, "no such reservation"))
        return Applied(_r(command, now_ms, applied), (rec.freed(),))
    if body == "set_pickup_code":
        p = command.set_pickup_code
        rec = records.get(p.compartment_id)
        if rec is None or not p.parcel_id or rec.parcel_id != p.parcel_id:
            return Applied(_r(command, now_ms, rejected, "parcel is not in that compartment"))
        if not p.code_hash.startswith("pbkdf2_sha256$") or len(p.code_hash) > 512:
            return Applied(_r(command, now_ms, rejected, "unsupported code hash"))
        updated = dataclasses.replace(
            rec, code_hash=p.code_hash, code_deadline_ms=p.deadline_ms or None
        )
        return Applied(_r(command, now_ms, applied), (updated,))
    if body == "set_compartment_enabled":
        e = command.set_compartment_enabled
        rec = records.get(e.compartment_id)
        if rec is None:
            return Applied(_r(command, now_ms, rejected, "unknown compartment"))
        log.info("compartment %s %s", rec.compartment_id, "enabled" if e.enabled else "disabled")
        return Applied(
            _r(command, now_ms, applied),
            (dataclasses.replace(rec, disabled=not e.enabled),),
        )
    return Applied(_r(command, now_ms, rejected, "unsupported command"))


def held_elsewhere(
    records: Mapping[str, CompartmentRecord], parcel_id: str, compartment_id: str, now: int
) -> bool:
    """True when ``parcel_id`` is reserved or deposited in another compartment."""
    return any(
        r.parcel_id == parcel_id
        and r.compartment_id != compartment_id
        and (r.state is CompartmentState.OCCUPIED or r.reservation_live(now))
        for r in records.values()
    )
