"""The hub of a simulated district: in this process (``lockerhub simulate``), or as a process of its
own (``lockerhub hub --config``), so that a benchmark can measure the hub's CPU apart from the
district's agents and people.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from hub.app import HubApp
from hub.parcels.notify import PickupNotice
from hub.settings import HubSettings

_READY = re.compile(r"hub ready: grpc=(\S+)")
_TICK = os.sysconf("SC_CLK_TCK")


class DistrictHub(Protocol):
    """What the district needs of its hub."""

    @property
    def grpc_address(self) -> str: ...

    @property
    def codes(self) -> Mapping[str, str]: ...  # parcel id -> pickup code (recipients' phones)

    @property
    def pid(self) -> int | None: ...  # the hub's own process, when it has one

    def pile_url(self, site: str, pile_id: str) -> str: ...

    async def run(self) -> None: ...


class _Codes:
    """A notifier that keeps the codes in memory (they never leave the process)."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def notify(self, notice: PickupNotice) -> None:
        if notice.kind == "deposited":
            self.codes[notice.parcel_id] = notice.code


class _InProcess:
    def __init__(self, app: HubApp, codes: _Codes) -> None:
        self.app = app
        self.grpc_address = app.grpc_address
        self.codes = codes.codes
        self.pid = None

    def pile_url(self, site: str, pile_id: str) -> str:
        return self.app.charging.url(site, pile_id)

    async def run(self) -> None:
        await self.app.run()


@asynccontextmanager
async def in_process_hub(mapping: Mapping[str, Any], workdir: Path) -> AsyncIterator[DistrictHub]:
    """A HubApp in this event loop."""
    codes = _Codes()
    async with HubApp(HubSettings.from_mapping(mapping), notifier=codes) as app:
        yield _InProcess(app, codes)


class _Process:
    def __init__(self, proc: asyncio.subprocess.Process, grpc_address: str, mapping: Any) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.grpc_address = grpc_address
        self.codes: dict[str, str] = {}
        self._ocpp = mapping["ocpp"]
        self._notices = Path(mapping["notify"]["path"])

    def pile_url(self, site: str, pile_id: str) -> str:
        return f"ws://127.0.0.1:{self._ocpp['port']}/ocpp/{site}/{pile_id}"

    async def run(self) -> None:
        """Read the file notifier's new lines into ``codes`` until cancelled."""
        offset = 0
        while True:
            offset = await asyncio.to_thread(self._read_from, offset)
            await asyncio.sleep(0.2)

    def _read_from(self, offset: int) -> int:
        with contextlib.suppress(FileNotFoundError), self._notices.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            for line in complete.splitlines():
                item = json.loads(line)
                if item.get("kind") == "deposited":
                    self.codes[str(item["parcel_id"])] = str(item["code"])
            return offset + len(complete)
        return offset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def to_toml(mapping: Mapping[str, Any]) -> str:
    """The settings mapping as TOML: tables, arrays of tables, strings, numbers, booleans."""
    out: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out.append(f"[{key}]")
            out += [f"{k} = {_scalar(v)}" for k, v in value.items() if v is not None]
        elif isinstance(value, list):
            for item in value:
                out.append(f"[[{key}]]")
                out += [f"{k} = {_scalar(v)}" for k, v in item.items() if v is not None]
        out.append("")
    return "\n".join(out)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


@asynccontextmanager
async def hub_process(mapping: Mapping[str, Any], workdir: Path) -> AsyncIterator[DistrictHub]:
    """``lockerhub hub --config`` as a child process; the broker password in its environment."""
    settings = {k: dict(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}
    settings["grpc"]["port"] = _free_port()
    settings["metrics"]["port"] = _free_port()
    settings["ocpp"]["port"] = _free_port()
    settings["notify"] = {"path": str(workdir / "notifications.jsonl")}
    password = settings["broker"].pop("password", None)
    HubSettings.from_mapping(settings)  # fail here, with the key's name, rather than in the child
    config = workdir / "hub.toml"
    await asyncio.to_thread(config.write_text, to_toml(settings))
    exe = Path(sys.executable).with_name("lockerhub")
    env = {**os.environ, "LOCKERHUB_HUB_BROKER__PASSWORD": password or ""}
    log_path = workdir / "hub.log"
    with log_path.open("ab") as log_file:
        proc = await asyncio.create_subprocess_exec(
            str(exe), "hub", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=log_file, env=env,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        # Reading and provisioning a large inventory takes a while (10,000 devices: ~15 CPU s).
        async with asyncio.timeout(60 + 0.03 * len(settings.get("devices", ()))):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the hub exited ({await proc.wait()}); see {log_path}")
                if m := _READY.search(line.decode()):
                    break
        yield _Process(proc, m.group(1), settings)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK
