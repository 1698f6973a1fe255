"""What a real hub's /metrics promises dashboards: zero-valued occupancy series, and an exposition
that `promtool check metrics` (the real binary) accepts."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.request

from lockerhub.codec import encode
from lockerhub.states import CompartmentState
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2
from tests.hub.cabinet import now_ms
from tests.hub.conftest import HubHarness, eventually
from tests.hub.test_flow import online


async def scrape(hub: HubHarness) -> str:
    return await asyncio.to_thread(
        lambda: urllib.request.urlopen(hub.app.metrics_url, timeout=5).read().decode()
    )


async def test_occupancy_exports_zeros_and_promtool_accepts_the_exposition(
    hub: HubHarness,
) -> None:
    async with hub.cabinet("CAB-M") as cab:
        await cab.birth()
        await online(hub, "CAB-M")
        occupied_s = f'lockerhub_compartments{{site="{hub.site}",size="S",state="occupied"}} 0.0'
        # Energy in the base unit: 2 Wh = 7200 J.
        energy = (
            f'lockerhub_cabinet_energy_joules_total{{cabinet="CAB-M",site="{hub.site}"}} 7200.0'
        )

        async def ready() -> str:
            # Telemetry counts once the device is in the metrics snapshot (refreshed on a tick).
            sample = device_pb2.Telemetry(ts_ms=now_ms(), energy_wh=2)
            await cab.publish(Kind.TELEMETRY, encode(sample))
            body = await scrape(hub)
            return body if occupied_s in body and energy in body else ""

        body = await eventually(ready, timeout=10, interval=0.2)
    # Every state of every size the fleet has, zeros included.
    for size in ("S", "M", "L"):
        for state in CompartmentState:
            assert (
                f'lockerhub_compartments{{site="{hub.site}",size="{size}",state="{state}"}}' in body
            )
    # Energy in the base unit: 2 Wh = 7200 J.
    assert (
        f'lockerhub_cabinet_energy_joules_total{{cabinet="CAB-M",site="{hub.site}"}} 7200.0' in body
    )

    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: run `make test` (apt-get install prometheus)"
    out = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
