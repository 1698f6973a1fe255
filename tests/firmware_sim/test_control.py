"""The control server and client: the actor API over loopback, bad requests answered, CLI."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from firmware_sim.cabinet import SimulatedCabinet
from firmware_sim.cli import register
from firmware_sim.control import MAX_LINE_BYTES, ControlClient, ControlServer
from firmware_sim.errors import ControlError
from lockerhub.driver import CompartmentSpec, SizeClass

SPECS = [
    CompartmentSpec(
        compartment_id=cid,
        size=SizeClass.M,
        width_mm=380,
        height_mm=190,
        depth_mm=640,
        max_weight_g=25_000,
    )
    for cid in ("C01", "C02")
]


async def _raw(host: str, port: int, payload: bytes) -> list[dict[str, object]]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    lines = []
    while line := await reader.readline():
        lines.append(json.loads(line))
    writer.close()
    await writer.wait_closed()
    return lines


async def test_client_drives_the_actor_api() -> None:
    sim = SimulatedCabinet(SPECS)
    async with ControlServer(sim) as server, ControlClient(*server.address) as client:
        await client.ping()
        await client.force_open("C01")
        await client.put_item("C01")
        await client.close_door("C01")
        await client.inject_fault("jam", "C02")
        state = await client.state()
        assert state["compartments"]["C01"]["item"] is True
        assert state["compartments"]["C02"]["faults"] == ["jam"]
        assert await client.relay_pulses() == 0
        refused = await client.courier_deposit("P1", timeout_s=0.1)
        assert refused.opened is None
        with pytest.raises(ControlError, match="no compartment"):
            await client.take_item("C77")
        with pytest.raises(ControlError, match="op: unknown"):
            await client.request("explode")


async def test_bad_requests_get_errors_and_never_crash() -> None:
    sim = SimulatedCabinet(SPECS)
    async with ControlServer(sim) as server:
        host, port = server.address
        replies = await _raw(
            host,
            port,
            b"not json\n[1]\n\n"
            b'{"op": "scan"}\n'
            b'{"id": 3, "op": "scan", "parcel_id": 5}\n'
            b'{"id": 4, "op": "deposit", "parcel_id": "P", "timeout_s": 1e9}\n'
            b'{"id": 5, "op": "put_item", "compartment_id": "' + b"x" * 200 + b'"}\n'
            b'{"id": 6, "op": "ping"}\n',
        )
        assert [r["ok"] for r in replies] == [False] * 6 + [True]
        assert replies[3]["id"] == 3
        assert "parcel_id" in str(replies[3]["error"])
        too_long = await _raw(host, port, b"{" + b" " * (MAX_LINE_BYTES + 10) + b"}\n")
        assert too_long == [{"id": None, "ok": False, "error": "request too long"}]
        async with ControlClient(host, port) as client:  # still serving
            await client.ping()


async def test_unreachable_server_is_a_clear_error() -> None:
    sim = SimulatedCabinet(SPECS)
    async with ControlServer(sim) as server:
        host, port = server.address
    with pytest.raises(ControlError, match="cannot reach"):
        async with ControlClient(host, port, timeout_s=1):
            pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lockerhub")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


async def test_sim_cli(capsys: pytest.CaptureFixture[str]) -> None:
    sim = SimulatedCabinet(SPECS)
    async with ControlServer(sim) as server:
        address = "{}:{}".format(*server.address)
        args = _parser().parse_args(
            ["sim", "force-open", "--control", address, "--compartment", "C02"]
        )
        assert await asyncio.to_thread(args.func, args) == 0
        args = _parser().parse_args(["sim", "state", "--control", address])
        assert await asyncio.to_thread(args.func, args) == 0
        out = capsys.readouterr().out
        assert "compartment C02 forced open" in out
        assert "C02" in out
        assert "open" in out
        args = _parser().parse_args(
            ["sim", "pickup", "--control", address, "--code", "1", "--timeout", "0.1"]
        )
        assert await asyncio.to_thread(args.func, args) == 1
        assert "refused" in capsys.readouterr().out
    args = _parser().parse_args(["sim", "state", "--control", address])
    assert await asyncio.to_thread(args.func, args) == 2
    assert capsys.readouterr().err.startswith("error: cannot reach")
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["sim", "state", "--control", "nohostport"])
    assert exc.value.code == 2
