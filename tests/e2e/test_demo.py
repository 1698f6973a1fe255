"""`make run` = `lockerhub demo`: every command its banner prints works when typed in order.

The demo runs as a process; its banner is read like a newcomer reads it, each printed command is
run as a separate process in order, the parcel ends picked up, and Ctrl-C stops everything.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import Proc


def banner_commands(out: str) -> tuple[list[str], list[str]]:
    """The walkthrough's command lines, in order, and the extra ones quoted in backticks."""
    block = out.split("Try, in another terminal", 1)[1].split("\n", 1)[1]
    walkthrough, rest = block.split("\n\n", 1)
    commands = [
        line.strip()
        for line in walkthrough.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    also = rest.split("Also:", 1)[1].split("\n", 1)[0]
    return commands, re.findall(r"`([^`]+)`", also)


def run_as_user(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=90, cwd=cwd, check=False
    )
    assert done.returncode == 0, f"`{command}` failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
def test_the_banner_walkthrough_works_as_printed(tmp_path: Path, broker: str) -> None:
    workdir = tmp_path / "demo"
    args = ["demo", "--broker", broker, "--cabinets", "4", "--workdir", str(workdir)]
    ports = ["--grpc-port", "0", "--metrics-port", "0", "--mqtt-port", "0"]
    demo = Proc([*args, *ports, "--traffic-every", "1"])
    try:
        demo.wait_for(r"Ctrl-C stops everything", timeout=60)
        commands, also = banner_commands("".join(demo.stdout))
        assert [c for c in commands if "<" in c or ">" in c] == [], "placeholders to fill in"
        assert len(commands) == 6, commands
        outputs = [run_as_user(c, tmp_path).stdout for c in commands]
        assert "picked_up" in outputs[-1].split("\n", 3)[2], outputs[-1]
        assert "read from" in outputs[4]
        for command in also:
            if " watch" not in command:  # `ops watch` follows until Ctrl-C
                run_as_user(command, tmp_path)
        # The console: one line per parcel step, the simulated traffic's too; no agent chatter.
        demo.wait_for(r"parcel DEMO-1\s+picked_up", timeout=30)
        demo.wait_for(r"parcel SIM-\d+\s+picked_up", timeout=60)
    finally:
        rc = demo.terminate(sig=signal.SIGINT)  # fails the test past 20 s
    out = demo.output()
    assert rc == 0, out[-3000:]
    assert "demo stopped." in out
    assert "Traceback" not in out, out[-3000:]
    assert " ERROR " not in out, out[-3000:]
    assert "desired v" not in out  # per-cabinet chatter goes to the log file
    assert "desired v" in (workdir / "demo.log").read_text()


def test_a_second_run_announces_a_new_parcel_id(tmp_path: Path) -> None:
    ports = ["--grpc-port", "0", "--metrics-port", "0", "--mqtt-port", "0"]
    args = ["demo", "--cabinets", "1", "--workdir", str(tmp_path), "--quiet", *ports]
    for expected in ("DEMO-1", "DEMO-2"):
        demo = Proc(args)
        try:
            demo.wait_for(r"Ctrl-C stops everything", timeout=60)
            commands, _ = banner_commands("".join(demo.stdout))
            if expected == "DEMO-1":
                run_as_user(commands[1], tmp_path)  # announce DEMO-1
            assert f"--parcel {expected}" in commands[1]
        finally:
            assert demo.terminate(sig=signal.SIGINT) == 0, demo.output()[-3000:]
