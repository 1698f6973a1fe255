"""The operator's guide (docs/guide/) works as written: its blocks are run or checked, in order.

The rules are stated in docs/guide/README.md: ``sh`` blocks run in one shell in an empty
directory, ``# file: NAME`` blocks are written first, ``sh install`` blocks are parsed and their
``lockerhub`` subcommands checked, units go through ``systemd-analyze verify``, the compose file is
parsed and its mounts checked. The examples' fixed ports are replaced by free ones.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lockerhub.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(GUIDE.glob("[0-9]-*.md"))
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
PORTS = (1883, 8883, 50051, 50052, 9000, 9108, 9109)
SUBCOMMAND = re.compile(r"(?:^|\s|bin/)lockerhub[ \t]+([a-z][a-z-]*)")
EOF_MARK = "LOCKERHUB_GUIDE_EOF"


@dataclass(frozen=True, slots=True)
class Block:
    page: str
    line: int
    info: str
    text: str

    @property
    def file(self) -> str | None:
        first = self.text.split("\n", 1)[0]
        return first.removeprefix("# file: ").strip() if first.startswith("# file: ") else None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def guide_blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append(Block(page.name, line, m.group(1).strip(), m.group(2)))
    return found


def free_ports() -> dict[str, str]:
    socks = [socket.socket() for _ in PORTS]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return {str(p): str(s.getsockname()[1]) for p, s in zip(PORTS, socks, strict=True)}
    finally:
        for s in socks:
            s.close()


def with_ports(text: str, ports: dict[str, str]) -> str:
    return re.sub(r"\b(" + "|".join(ports) + r")\b", lambda m: ports[m.group(1)], text)


def script(blocks: list[Block], ports: dict[str, str]) -> str:
    """One bash script: the reader's editor (file blocks) and terminal (sh blocks), in order."""
    out = [
        "set -euo pipefail",
        # Whatever the guide left running stops with the script, even when a block fails.
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
    ]
    for b in blocks:
        if b.file is not None and b.info in ("toml", "text", "yaml", "ini"):
            assert EOF_MARK not in b.text
            out.append(f"echo '### {b.where} (file {b.file})'")
            out.append(f"cat > {b.file} <<'{EOF_MARK}'\n{with_ports(b.text, ports)}{EOF_MARK}")
        elif b.info == "sh":
            out.append(f"echo '### {b.where}'")
            out.append(with_ports(b.text, ports))
    return "\n".join(out) + "\n"


def test_the_guide_has_pages_and_blocks_of_known_kinds() -> None:
    assert len(PAGES) >= 6, PAGES
    kinds = {b.info for b in guide_blocks()}
    assert kinds <= {"sh", "sh install", "toml", "ini", "yaml", "text"}, kinds
    assert "sh" in kinds


INSTALL_BLOCKS = [b for b in guide_blocks() if b.info == "sh install"]


@pytest.mark.parametrize("block", INSTALL_BLOCKS, ids=[b.where for b in INSTALL_BLOCKS])
def test_install_blocks_parse_and_name_real_subcommands(block: Block) -> None:
    parsed = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
    assert parsed.returncode == 0, f"{block.where}: {parsed.stderr}"
    commands = re.sub(r"(^|\s)#.*", "", block.text)  # comments are prose
    for name in SUBCOMMAND.findall(commands):
        assert name in COMMANDS, f"{block.where}: `lockerhub {name}` does not exist"


def test_every_sh_block_runs_in_order(tmp_path: Path) -> None:
    for tool in ("mosquitto", "sqlite3", "openssl", "curl", "promtool"):
        assert shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists(), (
            f"{tool} is missing: the guide's commands need it (`make test` installs it)"
        )
    ports = free_ports()
    body = script(guide_blocks(), ports)
    (tmp_path / "guide.sh").write_text(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKERHUB_", "PYTEST"))} | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/sbin{os.pathsep}"
        + os.environ.get("PATH", ""),
        "LOCKERHUB_SRC": str(ROOT),
    }
    work = tmp_path / "deployment"
    work.mkdir()
    proc = subprocess.Popen(
        ["bash", str(tmp_path / "guide.sh")],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the guide's commands hung:\n{out[-4000:]}")
    last = ([line for line in out.splitlines() if line.startswith("### ")] or ["(none)"])[-1]
    assert proc.returncode == 0, f"failed in block {last[4:]}:\n{out[-4000:]}"
    assert "picked_up" in out  # the parcel's journey of page 2 went through
    _check_compose(work)


def _check_compose(work: Path) -> None:
    (compose,) = [b for b in guide_blocks() if b.file == "compose.yaml"]
    doc = yaml.safe_load(compose.text)
    assert set(doc["services"]) == {"mosquitto", "prometheus", "grafana"}
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0].replace("${LOCKERHUB_SRC}", str(ROOT))
            if host.startswith("./"):
                host = str(work / host)
            elif not host.startswith("/"):
                assert host in doc["volumes"], f"{name}: named volume {host} not declared"
                continue
            assert Path(host).exists(), f"compose.yaml: {name} mounts {host}, which is missing"


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = [b for b in guide_blocks() if b.file and b.file.endswith(".service")]
    assert len(units) == 3, [b.file for b in units]
    for b in units:
        text = b.text.replace("/opt/lockerhub", str(ROOT))
        assert f"{ROOT}/.venv/bin/lockerhub" not in text or (ROOT / ".venv/bin/lockerhub").exists()
        for name in SUBCOMMAND.findall(re.sub(r"(^|\s)#.*", "", text)):
            assert name in COMMANDS, f"{b.where}: `lockerhub {name}` does not exist"
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed: the units were parse-checked only")
    for b in units:
        name = b.file.replace("@.service", "@cab-0001.service") if b.file else ""
        text = b.text.replace("/opt/lockerhub", str(ROOT)).replace(
            "/var/lib/lockerhub", str(tmp_path)
        )
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [verify, "verify", *(str(p) for p in sorted(tmp_path.glob("*.service")))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
