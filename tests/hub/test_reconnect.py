"""The hub survives a broker restart: health follows the link, ingestion resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.hub.conftest import eventually, running_hub, settings_for
from tests.hub.test_flow import online


async def test_reconnects_after_broker_restart(
    tmp_path: Path, own_mosquitto: Any, site: str
) -> None:
    settings = settings_for(tmp_path, own_mosquitto, site)
    async with running_hub(settings, tmp_path, own_mosquitto) as hub:
        health = health_pb2_grpc.HealthStub(hub.channel)

        async def status() -> int:
            r = await health.Check(health_pb2.HealthCheckRequest(service=""))
            return r.status

        await eventually(lambda: _is(status, health_pb2.HealthCheckResponse.SERVING))
        await own_mosquitto.astop()
        await eventually(lambda: _is(status, health_pb2.HealthCheckResponse.NOT_SERVING))
        await own_mosquitto.astart()
        await eventually(lambda: _is(status, health_pb2.HealthCheckResponse.SERVING), timeout=10)
        async with hub.cabinet("CAB-R") as cab:
            await cab.birth()
            await online(hub, "CAB-R")


async def _is(check: Any, expected: int) -> bool:
    return bool(await check() == expected)
