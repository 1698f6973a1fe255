"""``lockerhub ops`` for lifecycle, alarms, sites, compartments and ``watch``, with a token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.api.auth import token_digest
from lockerhub.v1 import device_pb2
from ops import cli as ops
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_flow import online

TOKEN = "ops-secret-token"


@pytest.fixture
async def hub(tmp_path: Path, mosquitto: Any, site: str) -> AsyncIterator[HubHarness]:
    tokens = [{"name": "alice", "role": "operator", "sha256": token_digest(TOKEN)}]
    settings = settings_for(tmp_path, mosquitto, site, auth={"tokens": tokens})
    async with running_hub(settings, tmp_path, mosquitto) as h:
        yield h


async def run_ops(
    hub: HubHarness, capsys: pytest.CaptureFixture[str], *argv: str, token: bool = True
) -> tuple[int, str, str]:
    token_file = hub.tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    common = ["ops", "--target", hub.app.grpc_address]
    if token:
        common += ["--token-file", str(token_file)]
    code = await asyncio.to_thread(ops.main, [*common, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_ops_commands(hub: HubHarness, capsys: pytest.CaptureFixture[str]) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        code, out, err = await run_ops(hub, capsys, "sites", token=False)
        assert (code, err.split(":")[:2]) == (1, ["error", " UNAUTHENTICATED"])

        code, out, _ = await run_ops(
            hub, capsys, "announce", "--parcel", "P-1", "--site", hub.site, "--size",
            "300x150x100", "--weight-g", "900", "--phone", "13812341234",
        )  # fmt: skip
        assert code == 0
        code, out, _ = await run_ops(hub, capsys, "sites")
        assert code == 0
        assert out.splitlines()[0].split() == ["SITE", "NAME", "CABINETS", "FREE", "TOTAL"]
        assert out.splitlines()[2].split()[-3:] == ["1", "3", "4"]

        code, out, _ = await run_ops(hub, capsys, "cancel", "P-1", "--reason", "refused")
        assert code == 0
        assert "cancelled" in out
        code, out, err = await run_ops(hub, capsys, "withdraw", "P-1")
        assert code == 1
        assert "FAILED_PRECONDITION" in err

        code, out, _ = await run_ops(hub, capsys, "disable", "CAB-1", "A01", "--reason", "broken")
        assert (code, out.splitlines()[-1].split()) == (0, ["A01", "disabled"])
        code, out, _ = await run_ops(hub, capsys, "enable", "CAB-1", "A01")
        assert (code, out.splitlines()[-1].split()) == (0, ["A01", "free"])

        await cab.event(
            door_changed=device_pb2.DoorChanged(compartment_id="A02", open=True, commanded=False)
        )

        async def alarm_listed() -> str:
            code, out, _ = await run_ops(hub, capsys, "alarms", "--site", hub.site)
            return out if code == 0 and "door_forced" in out else ""

        out = await eventually(alarm_listed)
        alarm_id = out.splitlines()[2].split()[0]
        code, out, _ = await run_ops(hub, capsys, "ack", alarm_id)
        assert "acknowledged (operator:alice)" in out
        code, out, _ = await run_ops(hub, capsys, "clear", alarm_id, "--note", "fixed")
        assert "cleared" in out
        code, out, _ = await run_ops(hub, capsys, "alarms")
        assert "door_forced" not in out
        code, out, _ = await run_ops(hub, capsys, "alarms", "--all")
        assert "door_forced" in out

        # watch from the start of the journal: announced, reserved, cancelled, alarm raised...
        code, out, _ = await run_ops(hub, capsys, "watch", "--cursor", "0", "--count", "4")
        lines = out.splitlines()
        assert code == 0
        assert lines[0].split()[:3] == ["CURSOR", "UTC", "WHAT"]
        assert [ln.split()[4] for ln in lines[1:4]] == ["announced", "reserved", "cancelled"]
        assert "alarm" in lines[4]
        assert "door_forced" in lines[4]
        resume = lines[3].split()[0]
        code, out, _ = await run_ops(
            hub, capsys, "--json", "watch", "--cursor", resume, "--count", "1"
        )
        assert '"alarm"' in out
        code, out, err = await run_ops(hub, capsys, "watch", "--cursor", "-1", "--count", "1")
        assert (code, "INVALID_ARGUMENT" in err) == (1, True)
