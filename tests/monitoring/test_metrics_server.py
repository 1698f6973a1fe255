"""The /metrics endpoint: serves the injected registry; hostile requests get nothing or an error."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry, Counter

from hub.metrics.server import MetricsServer


async def request(port: int, raw: bytes, *, timeout: float = 10) -> bytes:
    """The server's whole answer; b"" when it hung up, also by a reset (closing on a request it
    did not read to the end makes the kernel send RST, and which end sees it first is a race)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()


async def test_serves_only_its_registry_and_refuses_the_rest() -> None:
    registry = CollectorRegistry()
    Counter("lockerhub_things_total", "Things.", registry=registry).inc(3)
    async with MetricsServer(registry, "127.0.0.1", 0) as server:
        ok = await request(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 OK")
        assert b"lockerhub_things_total 3.0" in ok
        assert b"python_gc" not in ok  # not the default registry
        head = await request(server.port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert head.endswith(b"\r\n\r\n")
        assert (await request(server.port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        posted = await request(server.port, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert posted.startswith(b"HTTP/1.1 405")
        # Garbage, a header that never ends, a client that hangs up: nothing, and no crash.
        assert await request(server.port, b"\x00\xff garbage\r\n\r\n") != b"HTTP/1.1 200"
        assert await request(server.port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 200_000) == b""
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.close()
        await writer.wait_closed()
        # Concurrent scrapes are all served.
        bodies = await asyncio.gather(
            *(request(server.port, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n") for _ in range(8))
        )
        assert all(b"lockerhub_things_total 3.0" in b for b in bodies)
