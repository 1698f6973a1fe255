"""edge.commands: each rule of the record commands, with the outcome and detail it must give."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge.cabinet import CompartmentRecord
from edge.commands import Applied, apply_record_command, held_elsewhere, make_result, valid_id
from lockerhub.states import CompartmentState
from lockerhub.v1 import common_pb2, device_pb2

NOW = 1_800_000_000_000
APPLIED = common_pb2.COMMAND_OUTCOME_APPLIED
REJECTED = common_pb2.COMMAND_OUTCOME_REJECTED
FREE, RESERVED, OCCUPIED = (
    CompartmentState.FREE,
    CompartmentState.RESERVED,
    CompartmentState.OCCUPIED,
)
HASH = "pbkdf2_sha256$5000$00$00"


def rec(cid: str, state: CompartmentState = FREE, **kw: object) -> CompartmentRecord:
    return CompartmentRecord(compartment_id=cid, state=state, **kw)  # type: ignore[arg-type]


def cabinet(*records: CompartmentRecord) -> dict[str, CompartmentRecord]:
    base = {r.compartment_id: r for r in (rec("A01"), rec("A02"))}
    base.update({r.compartment_id: r for r in records})
    return base


def cmd(**body: object) -> device_pb2.Command:
    return device_pb2.Command(
        command_id="c-1",
        issued_ms=NOW,
        expires_ms=NOW + 1,
        **body,  # type: ignore[arg-type]
    )


def reserve(parcel: str = "P1", cid: str = "A01", expires: int = 0) -> device_pb2.Command:
    return cmd(
        reserve_compartment=device_pb2.ReserveCompartment(
            parcel_id=parcel, compartment_id=cid, expires_ms=expires
        )
    )


def cancel(parcel: str = "P1", cid: str = "A01") -> device_pb2.Command:
    return cmd(
        cancel_reservation=device_pb2.CancelReservation(parcel_id=parcel, compartment_id=cid)
    )


def set_code(
    parcel: str = "P1", cid: str = "A01", code_hash: str = HASH, deadline: int = 0
) -> device_pb2.Command:
    return cmd(
        set_pickup_code=device_pb2.SetPickupCode(
            parcel_id=parcel, compartment_id=cid, code_hash=code_hash, deadline_ms=deadline
        )
    )


def enable(cid: str = "A01", enabled: bool = True) -> device_pb2.Command:
    return cmd(
        set_compartment_enabled=device_pb2.SetCompartmentEnabled(
            compartment_id=cid, enabled=enabled
        )
    )


def outcome(applied: Applied) -> tuple[int, str]:
    r = applied.result
    assert r.command_id == "c-1"
    assert r.ts_ms == NOW
    assert not r.relay_fired
    return r.outcome, r.detail


REJECTIONS = [
    ("reserve-unknown-compartment", cabinet(), reserve(cid="Z9"), "unknown compartment or parcel"),
    ("reserve-empty-parcel", cabinet(), reserve(parcel=""), "unknown compartment or parcel"),
    ("reserve-bad-parcel", cabinet(), reserve(parcel="P/1"), "unknown compartment or parcel"),
    ("reserve-expired", cabinet(), reserve(expires=NOW - 1), "reservation already expired"),
    ("reserve-expires-now", cabinet(), reserve(expires=NOW), "reservation already expired"),
    (
        "reserve-parcel-reserved-elsewhere",
        cabinet(rec("A02", RESERVED, parcel_id="P1", reserved_until_ms=NOW)),
        reserve(),
        "parcel held in another compartment",
    ),
    (
        "reserve-parcel-deposited-elsewhere",
        cabinet(rec("A02", OCCUPIED, parcel_id="P1")),
        reserve(),
        "parcel held in another compartment",
    ),
    (
        "reserve-disabled",
        cabinet(rec("A01", disabled=True)),
        reserve(),
        "compartment is disabled",
    ),
    (
        "reserve-occupied",
        cabinet(rec("A01", OCCUPIED, parcel_id="P9")),
        reserve(),
        "compartment is occupied",
    ),
    (
        "reserve-held-for-another",
        cabinet(rec("A01", RESERVED, parcel_id="P9", reserved_until_ms=NOW)),
        reserve(),
        "compartment is reserved",
    ),
    ("cancel-unknown-compartment", cabinet(), cancel(cid="Z9"), "unknown compartment"),
    (
        "cancel-after-deposit",
        cabinet(rec("A01", OCCUPIED, parcel_id="P1")),
        cancel(),
        "parcel already deposited",
    ),
    (
        "code-unknown-compartment",
        cabinet(),
        set_code(cid="Z9"),
        "parcel is not in that compartment",
    ),
    (
        "code-empty-parcel",
        cabinet(rec("A01", OCCUPIED, parcel_id="")),
        set_code(parcel=""),
        "parcel is not in that compartment",
    ),
    (
        "code-other-parcel",
        cabinet(rec("A01", OCCUPIED, parcel_id="P9")),
        set_code(),
        "parcel is not in that compartment",
    ),
    (
        "code-other-scheme",
        cabinet(rec("A01", OCCUPIED, parcel_id="P1")),
        set_code(code_hash="md5$1$00$00"),
        "unsupported code hash",
    ),
    (
        "code-hash-too-long",
        cabinet(rec("A01", OCCUPIED, parcel_id="P1")),
        set_code(code_hash=HASH + "0" * (513 - len(HASH))),
        "unsupported code hash",
    ),
    ("enable-unknown-compartment", cabinet(), enable(cid="Z9"), "unknown compartment"),
    (
        "open-is-not-a-record-command",
        cabinet(),
        cmd(open_compartment=device_pb2.OpenCompartment(compartment_id="A01")),
        "unsupported command",
    ),
    ("no-body", cabinet(), cmd(), "unsupported command"),
]


@pytest.mark.parametrize(
    ("records", "command", "detail"),
    [pytest.param(r, c, d, id=name) for name, r, c, d in REJECTIONS],
)
def test_each_rule_rejects_with_its_reason(
    records: dict[str, CompartmentRecord], command: device_pb2.Command, detail: str
) -> None:
    applied = apply_record_command(records, command, NOW)
    assert outcome(applied) == (REJECTED, detail)
    assert applied.compartments == ()
    assert applied.events == ()


@pytest.mark.parametrize(
    ("records", "command", "expected"),
    [
        pytest.param(cabinet(), reserve(), rec("A01", RESERVED, parcel_id="P1"), id="free"),
        pytest.param(
            cabinet(),
            reserve(expires=NOW + 1),
            rec("A01", RESERVED, parcel_id="P1", reserved_until_ms=NOW + 1),
            id="expires-next-ms",
        ),
        pytest.param(
            cabinet(rec("A01", RESERVED, parcel_id="P1", reserved_until_ms=NOW + 5)),
            reserve(expires=NOW + 99),
            rec("A01", RESERVED, parcel_id="P1", reserved_until_ms=NOW + 99),
            id="renew-own",
        ),
        pytest.param(
            cabinet(rec("A01", RESERVED, parcel_id="P9", reserved_until_ms=NOW - 1)),
            reserve(),
            rec("A01", RESERVED, parcel_id="P1"),
            id="take-over-expired",
        ),
        pytest.param(
            cabinet(rec("A02", RESERVED, parcel_id="P1", reserved_until_ms=NOW - 1)),
            reserve(),
            rec("A01", RESERVED, parcel_id="P1"),
            id="stale-reservation-elsewhere",
        ),
        pytest.param(
            cabinet(rec("A01", parcel_id=None, local_ms=7)),
            reserve(parcel="p" * 64),
            rec("A01", RESERVED, parcel_id="p" * 64, local_ms=7),
            id="longest-parcel-id",
        ),
    ],
)
def test_reservations_applied(
    records: dict[str, CompartmentRecord], command: device_pb2.Command, expected: CompartmentRecord
) -> None:
    applied = apply_record_command(records, command, NOW)
    assert outcome(applied) == (APPLIED, "")
    assert applied.compartments == (expected,)


def test_cancel() -> None:
    held = rec("A01", RESERVED, parcel_id="P1", reserved_until_ms=NOW + 5, disabled=True)
    applied = apply_record_command(cabinet(held), cancel(), NOW)
    assert outcome(applied) == (APPLIED, "")
    assert applied.compartments == (rec("A01", disabled=True),)
    for records in (
        cabinet(),
        cabinet(rec("A01", RESERVED, parcel_id="P9")),
        cabinet(rec("A01", OCCUPIED, parcel_id="P9")),
    ):
        nothing = apply_record_command(records, cancel(), NOW)
        assert outcome(nothing) == (APPLIED, "no such reservation"), records
        assert nothing.compartments == ()


@pytest.mark.parametrize(("deadline", "stored"), [(0, None), (NOW + 10, NOW + 10)])
def test_set_pickup_code(deadline: int, stored: int | None) -> None:
    inside = rec("A01", OCCUPIED, parcel_id="P1")
    longest = HASH + "0" * (512 - len(HASH))
    applied = apply_record_command(
        cabinet(inside), set_code(code_hash=longest, deadline=deadline), NOW
    )
    assert outcome(applied) == (APPLIED, "")
    assert applied.compartments == (replace(inside, code_hash=longest, code_deadline_ms=stored),)


@pytest.mark.parametrize("enabled", [True, False])
def test_enable_and_disable(enabled: bool) -> None:
    before = rec("A01", OCCUPIED, parcel_id="P1", disabled=enabled)
    applied = apply_record_command(cabinet(before), enable(enabled=enabled), NOW)
    assert outcome(applied) == (APPLIED, "")
    assert applied.compartments == (replace(before, disabled=not enabled),)


def test_make_result_carries_every_field() -> None:
    r = make_result(reserve(), common_pb2.COMMAND_OUTCOME_OPENED, NOW, "ok", relay_fired=True)
    assert r == device_pb2.CommandResult(
        command_id="c-1",
        outcome=common_pb2.COMMAND_OUTCOME_OPENED,
        ts_ms=NOW,
        relay_fired=True,
        detail="ok",
    )
    assert not make_result(reserve(), APPLIED, NOW).relay_fired


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("P", True),
        ("p" * 64, True),
        ("parcel-1_ü.x", True),
        ("", False),
        ("p" * 65, False),
        ("a/b", False),
        ("a+b", False),
        ("a#b", False),
        ("a\nb", False),
        ("a\x00", False),
    ],
)
def test_valid_id(value: str, ok: bool) -> None:
    assert valid_id(value) is ok


@pytest.mark.parametrize(
    ("other", "held"),
    [
        (rec("A02", OCCUPIED, parcel_id="P1"), True),
        (rec("A02", RESERVED, parcel_id="P1"), True),  # no expiry
        (rec("A02", RESERVED, parcel_id="P1", reserved_until_ms=NOW), True),
        (rec("A02", RESERVED, parcel_id="P1", reserved_until_ms=NOW - 1), False),
        (rec("A02", OCCUPIED, parcel_id="P2"), False),
        (rec("A02", FREE, parcel_id="P1"), False),
    ],
)
def test_held_elsewhere(other: CompartmentRecord, held: bool) -> None:
    records = cabinet(other)
    assert held_elsewhere(records, "P1", "A01", NOW) is held
    assert not held_elsewhere(records, "P1", "A02", NOW), "its own compartment is not elsewhere"
