"""Issue 15, personal data: consent at announce, the audit of full-number reads, and phone
numbers erased from the database files (main file, -wal, -shm) after the retention period."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.errors import ConfigError
from hub.parcels.consent import REFUSED, UNSPECIFIED_REFUSED
from hub.settings import PrivacySettings
from lockerhub.clock import ManualClock
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, partners_pb2, partners_pb2_grpc
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for, tick
from tests.hub.test_flow import announcement, online, parcel_state

DAY_MS = 86_400_000
PHONE_A = "13911112222"
PHONE_B = "13933334444"
GIVEN = dispatch_pb2.LOCKER_CONSENT_GIVEN


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hub(
    tmp_path: Path, mosquitto: Any, site: str, clock: ManualClock
) -> AsyncIterator[HubHarness]:
    settings = settings_for(
        tmp_path,
        mosquitto,
        site,
        privacy={"retention_days": 30, "sweep_interval_s": 3600},
        commands={"default_ttl_s": 3, "max_ttl_s": 300},
        pickup={"deadline_h": 720},  # P-B expires (not closed): it keeps its number
    )
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as h:
        yield h


def db_bytes(tmp_path: Path) -> dict[str, bytes]:
    """The raw bytes of the store's files, as they are on disk now."""
    found = {}
    for suffix in ("", "-wal", "-shm"):
        path = tmp_path / f"hub.db{suffix}"
        found[path.name] = path.read_bytes() if path.exists() else b""
    return found


def holding(files: dict[str, bytes], phone: str) -> list[str]:
    return [name for name, data in files.items() if phone.encode() in data]


async def reach(hub: HubHarness, parcel_id: str, state: int) -> None:
    async def check() -> bool:
        return await parcel_state(hub, parcel_id) == state

    await eventually(check, timeout=10)


def compliance(hub: HubHarness) -> partners_pb2_grpc.ComplianceServiceStub:
    return partners_pb2_grpc.ComplianceServiceStub(hub.channel)


async def test_phone_numbers_are_erased_from_the_files_after_retention(
    hub: HubHarness, clock: ManualClock, tmp_path: Path
) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[
                    announcement("P-A", hub.site, recipient_phone=PHONE_A, locker_consent=GIVEN),
                    announcement("P-B", hub.site, recipient_phone=PHONE_B, locker_consent=GIVEN),
                ]
            )
        )
        assert all(o.accepted for o in resp.outcomes)
        for outcome in resp.outcomes:
            await cab.event(
                deposited=device_pb2.Deposited(
                    parcel_id=outcome.parcel_id,
                    compartment_id=outcome.compartment_id,
                    courier_id="c1",
                )
            )
            await reach(hub, outcome.parcel_id, common_pb2.PARCEL_STATE_DEPOSITED)
        await eventually(lambda: _notified(hub, 2))
        a = resp.outcomes[0]
        await cab.event(
            picked_up=device_pb2.PickedUp(parcel_id="P-A", compartment_id=a.compartment_id)
        )
        await reach(hub, "P-A", common_pb2.PARCEL_STATE_PICKED_UP)

    # Each notice read the full number, and each read is in the audit: who, when, which, why.
    reads = await compliance(hub).ListPersonalDataReads(partners_pb2.ListPersonalDataReadsRequest())
    assert sorted(r.parcel_id for r in reads.reads) == ["P-A", "P-B"]
    assert {r.actor for r in reads.reads} == {"hub:notifier"}
    assert all(r.purpose.startswith("deposited notice ") for r in reads.reads)
    assert all(r.ts_ms == clock.now_ms() for r in reads.reads)

    # Both numbers are on disk now (the check below can fail).
    assert holding(db_bytes(tmp_path), PHONE_A)
    assert holding(db_bytes(tmp_path), PHONE_B)

    await tick(clock, 29 * DAY_MS)  # the sweeper ran: 29 days after pickup, nothing to erase
    assert holding(db_bytes(tmp_path), PHONE_A)
    assert await hub.sql("SELECT COUNT(*) FROM recipient_contacts") == [(2,)]

    await tick(clock, DAY_MS + 3_600_000)
    files = db_bytes(tmp_path)
    # ``files`` includes the write-ahead log: without the truncating checkpoint the old pages
    # holding the number would still be there (the log itself may hold later writes: leases).
    assert holding(files, PHONE_A) == [], "the picked-up parcel's number survived retention"
    # The open parcel keeps its number (still needed for its notices).
    assert holding(files, PHONE_B)
    assert await hub.sql("SELECT parcel_id FROM recipient_contacts") == [("P-B",)]
    rows = await hub.sql(
        "SELECT id, phone_masked, pii_purged_ms > 0, locker_consent FROM parcels ORDER BY id"
    )
    assert rows == [("P-A", "", 1, "given"), ("P-B", "139****4444", 0, "given")]
    assert await hub.sql("SELECT code FROM notice_outbox WHERE parcel_id = 'P-A'") == [("",)]

    # An operator may still see P-B's number, with a reason, and that read is audited too.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await compliance(hub).RevealRecipientPhone(
            partners_pb2.RevealRecipientPhoneRequest(parcel_id="P-A", reason="complaint 7")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    shown = await compliance(hub).RevealRecipientPhone(
        partners_pb2.RevealRecipientPhoneRequest(parcel_id="P-B", reason="complaint 8")
    )
    assert shown.phone == PHONE_B
    audit = await compliance(hub).ListPersonalDataReads(
        partners_pb2.ListPersonalDataReadsRequest(parcel_id="P-B")
    )
    assert [(r.actor, r.purpose) for r in audit.reads][-1] == ("operator", "complaint 8")
    assert audit.reads[-1].ts_ms == clock.now_ms()
    # Pagination by audit id: after the last one, nothing.
    after = await compliance(hub).ListPersonalDataReads(
        partners_pb2.ListPersonalDataReadsRequest(after_id=audit.reads[-1].id)
    )
    assert list(after.reads) == []


async def _notified(hub: HubHarness, count: int) -> bool:
    return len(hub.notifications()) >= count


async def test_a_parcel_without_consent_is_not_put_in_a_locker(
    hub: HubHarness, clock: ManualClock
) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[
                    announcement(
                        "P-NO", hub.site, locker_consent=dispatch_pb2.LOCKER_CONSENT_REFUSED
                    ),
                    announcement("P-OLD", hub.site),  # a client older than the field
                    announcement("P-YES", hub.site, locker_consent=GIVEN),
                ]
            )
        )
        no, old, yes = resp.outcomes
        assert (no.accepted, no.reason, no.cabinet_id) == (False, REFUSED, "")
        assert old.accepted
        assert yes.accepted
        rows = await hub.sql("SELECT id, locker_consent FROM parcels ORDER BY id")
        assert rows == [("P-OLD", "unspecified"), ("P-YES", "given")]
        reserved = await hub.sql("SELECT parcel_id FROM compartments WHERE parcel_id IS NOT NULL")
        assert sorted(r[0] for r in reserved) == ["P-OLD", "P-YES"]
        assert await hub.sql(
            "SELECT COUNT(*) FROM recipient_contacts WHERE parcel_id = 'P-NO'"
        ) == [(0,)]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement("P-BAD", hub.site, locker_consent=7)]
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "parcels[0].locker_consent" in (err.value.details() or "")


async def test_a_hub_that_requires_consent_refuses_unspecified(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    settings = settings_for(tmp_path, mosquitto, site, privacy={"unspecified_consent": "refuse"})
    async with running_hub(settings, tmp_path, mosquitto) as hub:
        async with hub.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(hub, "CAB-1")
            resp = await hub.dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(
                    parcels=[
                        announcement("P-OLD", hub.site),
                        announcement("P-YES", hub.site, locker_consent=GIVEN),
                    ]
                )
            )
        old, yes = resp.outcomes
        assert (old.accepted, old.reason) == (False, UNSPECIFIED_REFUSED)
        assert yes.accepted


async def test_audit_and_reveal_reject_hostile_input(hub: HubHarness) -> None:
    c = compliance(hub)
    cases = [
        c.RevealRecipientPhone(partners_pb2.RevealRecipientPhoneRequest(parcel_id="P-1")),
        c.RevealRecipientPhone(
            partners_pb2.RevealRecipientPhoneRequest(parcel_id="P-1", reason="x" * 201)
        ),
        c.RevealRecipientPhone(
            partners_pb2.RevealRecipientPhoneRequest(parcel_id="../*", reason="why")
        ),
        c.ListPersonalDataReads(partners_pb2.ListPersonalDataReadsRequest(page_size=1001)),
        c.ListPersonalDataReads(partners_pb2.ListPersonalDataReadsRequest(after_id=-1)),
        c.ListPersonalDataReads(partners_pb2.ListPersonalDataReadsRequest(parcel_id="#")),
    ]
    for call in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await hub.sql("SELECT COUNT(*) FROM personal_data_reads") == [(0,)]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"retention_days": -1}, "privacy.retention_days"),
        ({"sweep_interval_s": 0}, "privacy.sweep_interval_s"),
        ({"unspecified_consent": "maybe"}, "privacy.unspecified_consent"),
        ({"batch": 0}, "privacy.batch"),
    ],
)
def test_privacy_settings_name_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        PrivacySettings(**raw)
