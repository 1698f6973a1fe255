"""OCPP-J 1.6 framing against a live central system: CALLERROR codes, drops, bounds (issue 10)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ocpp import BOOT, Harness, call, central_system

HEARTBEAT = [2, "hb", "Heartbeat", {}]


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[Harness]:
    async with central_system(tmp_path) as harness:
        yield harness


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        # Structure errors: FormationViolation (1.6), not FormatViolation (2.0.1).
        (
            [
                2,
                "a",
                "BootNotification",
                {"chargePointVendor": "v", "chargePointModel": "m", "x": 1},
            ],
            [4, "a", "FormationViolation"],
        ),
        ([2, "short"], [4, "short", "FormationViolation"]),
        ([2, "b", "Heartbeat", []], [4, "b", "FormationViolation"]),
        ([2, "c", 17, {}], [4, "c", "FormationViolation"]),
        # 1.6: NotImplemented = unknown action, NotSupported = known but not supported.
        ([2, "d", "NoSuchAction", {}], [4, "d", "NotImplemented"]),
        ([2, "e", "FirmwareStatusNotification", {"status": "Idle"}], [4, "e", "NotSupported"]),
        ([2, "f", "RemoteStartTransaction", {"idTag": "T"}], [4, "f", "NotSupported"]),
        ([2, "g", "Authorize", {}], [4, "g", "ProtocolError"]),
        ([2, "h", "Authorize", {"idTag": 5}], [4, "h", "TypeConstraintViolation"]),
        ([2, "i", "Authorize", {"idTag": "X" * 21}], [4, "i", "TypeConstraintViolation"]),
        (
            [2, "j", "StatusNotification", {"connectorId": 1, "errorCode": "x", "status": "Ok"}],
            [4, "j", "PropertyConstraintViolation"],
        ),
        # DataTransfer without a vendor implementation: a conf, status UnknownVendorId (4.3).
        ([2, "k", "DataTransfer", {"vendorId": "acme"}], [3, "k", {"status": "UnknownVendorId"}]),
    ],
)
async def test_calls_are_answered_with_ocpp_1_6_codes(
    central: Harness, frame: list[Any], answer: list[Any]
) -> None:
    async with central.connect("pile-a") as ws:
        await call(ws, BOOT)
        got = await call(ws, frame)
        assert got[: len(answer)] == answer
        if got[0] == 4:
            assert len(got) == 5
            assert got[4] == {}
            assert "X" * 21 not in got[3]  # descriptions name fields, never values


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "not_json"),
        ("[" * 20_000 + "]" * 20_000, "too_deep"),
        (json.dumps([2, "x" * 20_000, "Heartbeat", {}]), "bad_unique_id"),
        (json.dumps([2, 7, "Heartbeat", {}]), "bad_unique_id"),
        (json.dumps([9, "id", "Heartbeat", {}]), "unknown_message_type"),
        (json.dumps({"2": "id"}), "not_array"),
        (json.dumps([3, "never-asked", {}]), "unexpected_result"),
        (json.dumps([4, "never-asked", "GenericError", "", {}]), "unexpected_result"),
        (json.dumps([3, "id"]), "bad_result"),
        ("[2, NaN]", "not_json"),
        (b"\x00binary", "binary"),
    ],
)
async def test_unreadable_frames_are_dropped_and_counted_and_the_pile_keeps_working(
    central: Harness, frame: str | bytes, reason: str
) -> None:
    async with central.connect("pile-a") as ws:
        await call(ws, BOOT)
        await ws.send(frame)
        # The next answer is the heartbeat's: nothing was echoed for the dropped frame.
        assert (await call(ws, HEARTBEAT))[:2] == [3, "hb"]
    assert central.metric("lockerhub_ocpp_frames_total", outcome=f"dropped_{reason}") == 1


async def test_two_calls_in_one_burst_are_both_answered(central: Harness) -> None:
    async with central.connect("pile-a") as ws:
        await call(ws, BOOT)
        await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
        await ws.send(json.dumps([2, "2", "Heartbeat", {}]))
        ids = [json.loads(await asyncio.wait_for(ws.recv(), 10))[1] for _ in range(2)]
        assert ids == ["1", "2"]
