"""A batch the store refuses is applied again message by message: each message counts once."""

from __future__ import annotations

import pytest

from hub.errors import StoreConflict, StoreError, StoreUnavailable
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

    async def apply(tx: object, item: object, ledger: object) -> None:
        nonlocal faults
        if getattr(item, "payload", None) == poison and faults == 0:
            faults += 1
            raise StoreError("disk I/O error")
        await real_apply(tx, item, ledger)  # type: ignore[arg-type]

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


async def test_an_unreachable_store_keeps_the_message_even_when_the_ping_answers(
    hub: HubHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database restarting between a failed apply and the ping: the ping answers, yet the
    failure said nothing about the message. It is kept (not acknowledged) and applied later,
    never dropped and acknowledged (the PostgreSQL e2e lost events that way)."""
    async with hub.cabinet("CAB-U") as cab:
        await cab.birth()
        await online(hub, "CAB-U")
    ingestor = hub.app.ingestor
    event = cab.make_event(
        door_changed=device_pb2.DoorChanged(compartment_id=LAYOUT[0][0], open=True)
    )
    acks: list[str] = []
    message = Inbound(
        str(Topic(hub.site, "CAB-U", Kind.EVENT)),
        encode(event),
        None,
        ack=lambda: acks.append("ack"),
    )
    real_apply = ingestor._apply
    faults = 0

    async def apply(tx: object, item: object, ledger: object) -> None:
        nonlocal faults
        if faults < 3:  # the batch, then two attempts of the message alone
            faults += 1
            raise StoreUnavailable("connection failed: the database system is shutting down")
        await real_apply(tx, item, ledger)  # type: ignore[arg-type]

    async def answers() -> bool:
        return True

    monkeypatch.setattr(ingestor, "_apply", apply)
    monkeypatch.setattr(hub.app.store, "ping", answers)
    monkeypatch.setattr("hub.ingest.pipeline._STORE_AWAY_S", 0.01)

    await ingestor.handle_batch([message])

    assert faults == 3
    assert acks == ["ack"]  # once, after the commit
    assert hub.dropped("error") == 0
    assert await hub.sql(
        "SELECT COUNT(*) FROM device_events WHERE device = 'CAB-U' AND seq = ?", (event.seq,)
    ) == [(1,)]


def test_connection_failures_are_unavailable_data_failures_are_not() -> None:
    import psycopg
    from psycopg import errors as pg_errors

    from hub.store.pg_common import translate

    assert isinstance(translate(pg_errors.AdminShutdown("bye"), "x"), StoreUnavailable)
    assert isinstance(translate(pg_errors.CannotConnectNow("starting"), "x"), StoreUnavailable)
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    assert isinstance(translate(lost, "x"), StoreUnavailable)
    # Caused by the data (or the schema): refused, not unavailable; a deadlock is a conflict.
    for refused in (
        pg_errors.ProgramLimitExceeded("index row size exceeds maximum"),
        pg_errors.UniqueViolation("duplicate key"),
        pg_errors.DiskFull("no space left"),
    ):
        got = translate(refused, "x")
        assert type(got) is StoreError, refused
    assert type(translate(pg_errors.DeadlockDetected("d"), "x")) is StoreConflict
