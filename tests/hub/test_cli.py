"""``lockerhub hub`` as a process (ready line, SIGTERM) and ``lockerhub ops`` against it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from ops import cli as ops
from tests.hub.cabinet import FakeCabinet, inventory_toml
from tests.hub.conftest import eventually

_RUN_HUB = (
    "import argparse, sys; from hub import cli; p = argparse.ArgumentParser(); "
    "cli.register(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


def write_config(tmp_path: Path, broker: Any, site: str) -> Path:
    user, password = broker.hub_credentials()
    path = tmp_path / "hub.toml"
    path.write_text(
        f"""
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{user}"
password = "{password}"
client_id = "cli-hub-{site}"
share_group = "cli{site.replace("-", "")}"
[storage]
path = "{tmp_path / "hub.db"}"
[grpc]
port = 0
[metrics]
port = 0
[notify]
path = "{tmp_path / "notes.jsonl"}"
[[sites]]
id = "{site}"
{inventory_toml("CAB-CLI", site)}"""
    )
    return path


def run_ops(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = ops.main(["ops", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_hub_process_and_ops(
    tmp_path: Path, mosquitto: Any, site: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mosquitto, site)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RUN_HUB,
        "hub",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        m = re.fullmatch(r"hub ready: grpc=(\S+) metrics=(http://\S+/metrics)\n", line)
        assert m, line
        target = m.group(1)
        async with FakeCabinet(mosquitto, site, "CAB-CLI") as cab:
            await cab.birth()

            async def online() -> bool:
                code, out, _ = await asyncio.to_thread(
                    run_ops, capsys, "--target", target, "--json", "cabinets", "--site", site
                )
                cabinets = json.loads(out).get("cabinets", []) if code == 0 else []
                return any(c["cabinetId"] == "CAB-CLI" and c.get("online") for c in cabinets)

            await eventually(online, timeout=10)
            code, out, _ = await asyncio.to_thread(
                run_ops,
                capsys,
                "--target",
                target,
                "announce",
                "--parcel",
                "P-CLI",
                "--site",
                site,
                "--size",
                "100x100x50",
                "--weight-g",
                "500",
                "--phone",
                "13812341234",
            )
            assert code == 0
            assert "P-CLI" in out
            assert "yes" in out
            assert "A01" in out
            code, out, _ = await asyncio.to_thread(
                run_ops, capsys, "--target", target, "--json", "parcel", "P-CLI"
            )
            parcel = json.loads(out)
            assert parcel["recipientPhoneMasked"] == "138****1234"
            assert "13812341234" not in out
            code, out, _ = await asyncio.to_thread(
                run_ops, capsys, "--target", target, "cabinet", "CAB-CLI"
            )
            assert code == 0
            assert "reserved" in out
            assert "P-CLI" in out
            code, out, _ = await asyncio.to_thread(
                run_ops, capsys, "--target", target, "cabinets", "--site", site
            )
            assert "CAB-CLI" in out
            assert "online" in out
            code, out, _ = await asyncio.to_thread(
                run_ops, capsys, "--target", target, "parcels", "--state", "reserved"
            )
            assert "P-CLI" in out
            code, _, err = await asyncio.to_thread(
                run_ops, capsys, "--target", target, "parcel", "NOPE"
            )
            assert code == 1
            assert err.startswith("error: NOT_FOUND: ")
            assert "Traceback" not in err
            code, _, err = await asyncio.to_thread(
                run_ops, capsys, "--target", target, "open", "CAB-CLI", "A01", "--reason", " "
            )
            assert code == 1
            assert err.startswith("error: INVALID_ARGUMENT: reason")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    assert b"Traceback" not in await proc.stderr.read()
