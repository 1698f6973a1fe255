"""Issue 10.6: pickup notices go through a durable outbox; a lost code can be reissued (audited)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.api.auth import token_digest
from hub.parcels.notify import PickupNotice
from lockerhub.clock import ManualClock
from lockerhub.codes import verify_code
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_flow import announcement, online
from tests.hub.test_lifecycle import commands_until, reach
from tests.hub.test_ops_more import TOKEN, run_ops


class Recording:
    """A notifier that fails its first ``failures`` calls, then records what it delivered."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[str] = []  # idempotency keys, one per attempt
        self.delivered: list[PickupNotice] = []

    async def notify(self, notice: PickupNotice) -> None:
        self.calls.append(notice.key)
        if len(self.calls) <= self.failures:
            raise RuntimeError("SMS gateway down")
        self.delivered.append(notice)


class Hung:
    """A notifier that never answers."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def notify(self, notice: PickupNotice) -> None:
        self.called.set()
        await asyncio.Event().wait()


async def deposit(hub: HubHarness, cab: Any, parcel_id: str) -> str:
    resp = await hub.dispatch.AnnounceParcels(
        dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement(parcel_id, hub.site)])
    )
    compartment = resp.outcomes[0].compartment_id
    await cab.event(deposited=device_pb2.Deposited(parcel_id=parcel_id, compartment_id=compartment))
    await reach(hub, parcel_id, common_pb2.PARCEL_STATE_DEPOSITED)
    return str(compartment)


async def code_hash(hub: HubHarness, parcel_id: str) -> str:
    ((digest,),) = await hub.sql(
        "SELECT code_hash FROM pickup_codes WHERE parcel_id = ?", (parcel_id,)
    )
    return str(digest)


async def outbox(hub: HubHarness) -> list[tuple[Any, ...]]:
    return await hub.sql("SELECT kind, state, code, attempts FROM notice_outbox ORDER BY id")


async def test_a_raising_notifier_is_retried_until_delivered_once(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    clock = ManualClock()
    notifier = Recording(failures=2)
    settings = settings_for(tmp_path, mosquitto, site, notify={"retry_min_s": 5, "retry_max_s": 60})
    async with running_hub(settings, tmp_path, mosquitto, clock=clock, notifier=notifier) as hub:  # noqa: SIM117 - hub first
        async with hub.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(hub, "CAB-1")
            await deposit(hub, cab, "P-1")
            # Stored in the deposit's transaction; the first attempt failed at once.
            await eventually(lambda: asyncio.sleep(0, len(notifier.calls) == 1))
            (row,) = await eventually(lambda: outbox(hub))
            assert row[:2] == ("deposited", "pending")
            assert len(row[2]) == 6
            for attempts in (2, 3):  # each retry after its backoff on the hub's clock
                clock.advance(10_000)
                await eventually(lambda n=attempts: asyncio.sleep(0, len(notifier.calls) == n))
            (notice,) = notifier.delivered
            assert notice.kind == "deposited"
            assert notice.phone == "13812341234"
            assert verify_code(notice.code, await code_hash(hub, "P-1"))
            # One idempotency key for every attempt of the notice.
            assert len(set(notifier.calls)) == 1
            assert notifier.calls[0] == notice.key
            # Delivered: the plaintext is erased; later sweeps send nothing again.
            assert await eventually(lambda: outbox(hub)) == [("deposited", "delivered", "", 2)]
            for _ in range(3):
                clock.advance(60_000)
                await asyncio.sleep(0.05)
            assert len(notifier.calls) == 3
            m = hub.app.metrics
            assert m.notifications_failed._value.get() == 2
            assert m.notices_delivered.labels("deposited")._value.get() == 1


async def test_a_hung_notifier_does_not_stop_ingestion(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    """The finding: 0 door events applied in 6 s while the notifier hung."""
    notifier = Hung()
    settings = settings_for(tmp_path, mosquitto, site)
    async with running_hub(settings, tmp_path, mosquitto, notifier=notifier) as hub:  # noqa: SIM117
        async with hub.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(hub, "CAB-1")
            await deposit(hub, cab, "P-1")
            await asyncio.wait_for(notifier.called.wait(), 5)
            door = device_pb2.DoorChanged(compartment_id="A01", open=False, commanded=True)
            for _ in range(20):
                await cab.event(door_changed=door)

            def applied() -> float:
                return hub.app.metrics.events_applied.labels("door_changed")._value.get()  # type: ignore[no-any-return]

            await eventually(lambda: asyncio.sleep(0, applied() == 20), timeout=6)
            # The notice waits in the outbox (its send still hanging), the code kept for it.
            assert [r[:2] for r in await outbox(hub)] == [("deposited", "pending")]

            def pending() -> float | None:
                return hub.app.metrics.registry.get_sample_value("lockerhub_notices_pending")

            await eventually(lambda: asyncio.sleep(0, pending() == 1))


async def test_a_notice_committed_before_a_restart_is_delivered_after_it(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    """The hub stops between the deposit's commit and the notice's delivery (its notifier is
    stuck mid-send): the next hub on the same database delivers it, code and all."""
    settings = settings_for(tmp_path, mosquitto, site)
    first = Hung()
    async with running_hub(settings, tmp_path, mosquitto, notifier=first) as hub:  # noqa: SIM117
        async with hub.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(hub, "CAB-1")
            await deposit(hub, cab, "P-1")
            await asyncio.wait_for(first.called.wait(), 5)
            digest = await code_hash(hub, "P-1")
    second = Recording()
    async with running_hub(settings, tmp_path, mosquitto, notifier=second) as hub:
        await eventually(lambda: asyncio.sleep(0, bool(second.delivered)))
        (notice,) = second.delivered
        assert notice.parcel_id == "P-1"
        assert notice.kind == "deposited"
        assert verify_code(notice.code, digest)
        assert await eventually(lambda: outbox(hub)) == [("deposited", "delivered", "", 0)]


@pytest.fixture
async def ops_hub(tmp_path: Path, mosquitto: Any, site: str) -> AsyncIterator[HubHarness]:
    tokens = [{"name": "alice", "role": "operator", "sha256": token_digest(TOKEN)}]
    settings = settings_for(tmp_path, mosquitto, site, auth={"tokens": tokens})
    async with running_hub(settings, tmp_path, mosquitto) as h:
        yield h


async def test_an_operator_reissues_a_lost_code(
    ops_hub: HubHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = ops_hub
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-1", hub.site)]),
            metadata=metadata,
        )
        await cab.event(deposited=device_pb2.Deposited(parcel_id="P-1", compartment_id="A02"))
        await eventually(lambda: asyncio.sleep(0, len(hub.notifications()) == 1))
        old = hub.notifications()[0]["code"]
        first = await commands_until(cab, "set_pickup_code")

        code, out, err = await run_ops(hub, capsys, "reissue-code", "P-1", "--reason", "SMS lost")
        assert code == 0, err
        assert "P-1" in out
        assert old not in out  # the CLI never shows the code

        await eventually(lambda: asyncio.sleep(0, len(hub.notifications()) == 2))
        notice = hub.notifications()[1]
        assert notice["kind"] == "reissued"
        assert notice["code"] != old
        digest = await code_hash(hub, "P-1")
        assert verify_code(notice["code"], digest)
        assert not verify_code(old, digest)
        pushed = await commands_until(cab, "set_pickup_code")
        assert pushed.set_pickup_code.code_hash == digest != first.set_pickup_code.code_hash
        audit = await hub.sql(
            "SELECT state, actor, detail FROM parcel_transitions WHERE parcel_id = 'P-1' "
            "ORDER BY id DESC LIMIT 1"
        )
        assert audit == [("deposited", "operator:alice", "pickup code reissued: SMS lost")]
        assert await outbox(hub) == [
            ("deposited", "delivered", "", 0),
            ("reissued", "delivered", "", 0),
        ]

        for request, status in (
            (dispatch_pb2.ReissuePickupCodeRequest(parcel_id="P-1"), "INVALID_ARGUMENT"),
            (
                dispatch_pb2.ReissuePickupCodeRequest(parcel_id="nope", reason="x"),
                "NOT_FOUND",
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await hub.dispatch.ReissuePickupCode(request, metadata=metadata)
            assert exc.value.code().name == status
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-2", hub.site)]),
            metadata=metadata,
        )
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await hub.dispatch.ReissuePickupCode(
                dispatch_pb2.ReissuePickupCodeRequest(parcel_id="P-2", reason="x"),
                metadata=metadata,
            )
        assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_notify_settings_are_validated() -> None:
    from hub.errors import ConfigError
    from hub.settings import HubSettings

    for key, value in (("timeout_s", 0), ("retry_min_s", 0), ("retry_max_s", 0.1), ("poll_s", 0)):
        with pytest.raises(ConfigError, match=f"notify.{key}"):
            HubSettings.from_mapping({"notify": {key: value}})
