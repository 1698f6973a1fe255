"""``lockerhub ops carrier/quota/courier`` against a real hub: tables, JSON, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.api.auth import token_digest
from tests.hub.conftest import HubHarness, running_hub, settings_for
from tests.hub.test_flow import online
from tests.hub.test_ops_more import TOKEN, run_ops


@pytest.fixture
async def hub(tmp_path: Path, mosquitto: Any, site: str) -> AsyncIterator[HubHarness]:
    tokens = [{"name": "alice", "role": "admin", "sha256": token_digest(TOKEN)}]
    settings = settings_for(
        tmp_path, mosquitto, site, auth={"tokens": tokens}, couriers={"code_iterations": 1000}
    )
    async with running_hub(settings, tmp_path, mosquitto) as h:
        yield h


async def test_courier_commands(hub: HubHarness, capsys: pytest.CaptureFixture[str]) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        code, out, _ = await run_ops(hub, capsys, "carriers", "--register", "SF", "--name", "SF")
        assert code == 0
        assert "SF" in out
        code, out, _ = await run_ops(
            hub, capsys, "quota", "--set", "--carrier", "SF", "--cabinet", "CAB-1",
            "--max", "2", "--reserve", "A01",
        )  # fmt: skip
        assert code == 0
        assert "A01" in out
        code, out, _ = await run_ops(
            hub, capsys, "courier", "register", "K1", "--carrier", "SF", "--name", "Li Lei",
            "--phone", "13912345678",
        )  # fmt: skip
        assert code == 0
        assert "139****5678" in out
        assert "13912345678" not in out
        code_file = hub.tmp_path / "code"
        code_file.write_text("24681357\n")
        code, out, _ = await run_ops(
            hub, capsys, "courier", "set-code", "K1", "--code-file", str(code_file)
        )
        assert code == 0
        assert "24681357" not in out
        code, out, _ = await run_ops(
            hub, capsys, "courier", "complain", "K1", "--detail", "late again"
        )
        assert code == 0
        assert "score 85/100" in out
        code, _, err = await run_ops(
            hub, capsys, "courier", "bar", "K1", "--reason", "\x1b[2Jrepeated complaints"
        )
        assert code == 1  # an audit reason with terminal escapes is refused by the hub
        assert "reason:" in err
        assert "\x1b" not in err
        code, out, _ = await run_ops(
            hub, capsys, "courier", "bar", "K1", "--reason", "repeated complaints"
        )
        assert code == 0
        code, out, _ = await run_ops(hub, capsys, "--json", "courier", "show", "K1")
        assert code == 0
        record = json.loads(out)
        assert record["score"] == 85
        assert record["courier"]["onBadConductList"] is True
        assert record["entries"][0]["kind"] == "complaint"
        code, out, _ = await run_ops(hub, capsys, "courier", "barred")
        assert "K1" in out
        code, _, err = await run_ops(hub, capsys, "courier", "show", "NOPE")
        assert code == 1
        assert "NOT_FOUND" in err
        code, out, _ = await run_ops(
            hub, capsys, "courier", "status", "K1", "suspended", "--reason", "leave"
        )
        assert code == 0
        assert "suspended" in out
