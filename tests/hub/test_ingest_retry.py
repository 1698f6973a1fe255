"""A batch the store refuses is applied again message by message: each message counts once."""

from __future__ import annotations

import pytest

from hub.errors import StoreError
from hub.mqtt.link import Inbound
from lockerhub.codec import encode
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2
from tests.hub.cabinet import LAYOUT
from tests.hub.conftest import HubHarness
from tests.hub.test_flow import online


async def test_a_batch_retried_one_by_one_counts_each_message_once(
    hub: HubHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hub.cabinet("CAB-R") as cab:
        await cab.birth()
        await online(hub, "CAB-R")
    ingestor, metrics = hub.app.ingestor, hub.app.metrics
    compartment = LAYOUT[0][0]
    forced = cab.make_event(
        door_changed=device_pb2.DoorChanged(compartment_id=compartment, open=True)
    )
    # Telemetry from a device the hub does not know: dropped (counted) inside the batch.
    stranger = device_pb2.Telemetry(ts_ms=forced.ts_ms, energy_wh=1.0)
    # Then a message whose apply hits a store fault, once: the whole batch rolls back.
    poison = device_pb2.Telemetry(ts_ms=forced.ts_ms, energy_wh=2.0)
    batch = [
        Inbound(str(Topic(hub.site, "CAB-R", Kind.EVENT)), encode(forced), None),
        Inbound(str(Topic(hub.site, "CAB-NOBODY", Kind.TELEMETRY)), encode(stranger), None),
        Inbound(str(Topic(hub.site, "CAB-R", Kind.TELEMETRY)), encode(poison), None),
    ]
    real_apply = ingestor._apply
    faults = 0

    async def apply(tx: object, item: object) -> None:
        nonlocal faults
        if getattr(item, "payload", None) == poison and faults == 0:
            faults += 1
            raise StoreError("disk I/O error")
        await real_apply(tx, item)  # type: ignore[arg-type]

    monkeypatch.setattr(ingestor, "_apply", apply)
    unknown = hub.dropped("unknown_device")
    alarms = metrics.alarms.labels("door_forced")._value.get()
    applied = metrics.events_applied.labels("door_changed")._value.get()

    await ingestor.handle_batch(batch)

    assert faults == 1  # the batch failed, then each message was applied alone
    assert hub.dropped("unknown_device") == unknown + 1
    assert hub.dropped("error") == 0
    assert metrics.alarms.labels("door_forced")._value.get() == alarms + 1
    assert metrics.events_applied.labels("door_changed")._value.get() == applied + 1
    assert await hub.sql("SELECT COUNT(*) FROM alarms WHERE kind = 'door_forced'") == [(1,)]
