"""Issue 15, partner feeds: own parcels only, no personal data on the wire, resumable without loss
or repeat, partner credentials apart from operator tokens, hostile credentials and cursors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.api.auth import token_digest
from hub.errors import InvalidArgument
from hub.partners.feed import actor_kind, parse_cursor
from lockerhub.clock import ManualClock
from lockerhub.v1 import (
    carriers_pb2,
    carriers_pb2_grpc,
    common_pb2,
    device_pb2,
    dispatch_pb2,
    dispatch_pb2_grpc,
    partners_pb2,
    partners_pb2_grpc,
)
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for, tick
from tests.hub.test_flow import PHONE, announcement, online

ADMIN, OPERATOR = "admin-secret-1", "operator-secret-2"
WATCH = "/lockerhub.v1.PartnerService/WatchPartnerFeed"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hub(
    tmp_path: Path, mosquitto: Any, site: str, clock: ManualClock
) -> AsyncIterator[HubHarness]:
    tokens = [
        {"name": "boss", "role": "admin", "sha256": token_digest(ADMIN)},
        {"name": "ops", "role": "operator", "sha256": token_digest(OPERATOR)},
    ]
    settings = settings_for(
        tmp_path,
        mosquitto,
        site,
        auth={"tokens": tokens},
        commands={"default_ttl_s": 3, "max_ttl_s": 300},
    )
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as h:
        yield h


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def partner_md(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Partner {secret}"),)


def compliance(hub: HubHarness) -> partners_pb2_grpc.ComplianceServiceStub:
    return partners_pb2_grpc.ComplianceServiceStub(hub.channel)


async def register_carrier(hub: HubHarness, *carriers: str) -> None:
    """Register ``carriers`` in the carrier registry (those already there are fine)."""
    registry = carriers_pb2_grpc.CarrierServiceStub(hub.channel)
    for carrier in carriers:
        try:
            await registry.RegisterCarrier(
                carriers_pb2.RegisterCarrierRequest(carrier_id=carrier, name=carrier),
                metadata=bearer(ADMIN),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise


async def create(hub: HubHarness, partner_id: str, *carriers: str, expires_ms: int = 0) -> str:
    """A partner for ``carriers``, registered first (a partner's carriers must be)."""
    await register_carrier(hub, *carriers)
    resp = await compliance(hub).CreatePartner(
        partners_pb2.CreatePartnerRequest(
            partner_id=partner_id, name=partner_id, carrier_ids=carriers, expires_ms=expires_ms
        ),
        metadata=bearer(ADMIN),
    )
    assert resp.secret.startswith("lhp_")
    return resp.secret


def raw_watch(hub: HubHarness, secret: str, cursor: str) -> Any:
    """The partner stream with its messages as the bytes that crossed the wire."""
    method = hub.channel.unary_stream(
        WATCH,
        request_serializer=partners_pb2.WatchPartnerFeedRequest.SerializeToString,
        response_deserializer=None,
    )
    return method(partners_pb2.WatchPartnerFeedRequest(cursor=cursor), metadata=partner_md(secret))


async def take(call: Any, count: int, *, timeout: float = 10) -> list[bytes]:
    out: list[bytes] = []
    async with asyncio.timeout(timeout):
        async for message in call:
            out.append(message)
            if len(out) == count:
                break
    call.cancel()
    return out


def events(raw: list[bytes]) -> list[partners_pb2.PartnerEvent]:
    return [partners_pb2.PartnerEvent.FromString(b) for b in raw]


async def deposit_and_pick_up(hub: HubHarness, cab: Any, outcome: Any) -> None:
    await cab.event(
        deposited=device_pb2.Deposited(
            parcel_id=outcome.parcel_id, compartment_id=outcome.compartment_id, courier_id="c1"
        )
    )
    await cab.event(
        picked_up=device_pb2.PickedUp(
            parcel_id=outcome.parcel_id, compartment_id=outcome.compartment_id
        )
    )


async def reach(hub: HubHarness, parcel_id: str, state: str) -> None:
    async def check() -> bool:
        rows = await hub.sql("SELECT state FROM parcels WHERE id = ?", (parcel_id,))
        return rows == [(state,)]

    await eventually(check, timeout=10)


async def test_partners_see_their_own_parcels_without_personal_data(hub: HubHarness) -> None:
    secret_a = await create(hub, "shop-a", "SF")
    secret_b = await create(hub, "shop-b", "YTO", "ZTO")
    dispatch = dispatch_pb2_grpc.DispatchServiceStub(hub.channel)
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        # One at a time: the test cabinet has three ambient compartments.
        for parcel_id, carrier in (("A-1", "SF"), ("B-1", "YTO"), ("A-2", "SF"), ("X-1", "")):
            resp = await dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(
                    parcels=[announcement(parcel_id, hub.site, carrier_id=carrier)]
                ),
                metadata=bearer(OPERATOR),
            )
            (outcome,) = resp.outcomes
            assert outcome.accepted, outcome.reason
            await deposit_and_pick_up(hub, cab, outcome)
            await reach(hub, parcel_id, "picked_up")
    await eventually(lambda: asyncio.sleep(0, len(hub.notifications()) >= 4))
    codes = [n["code"] for n in hub.notifications() if n["code"]]
    assert len(codes) == 4

    # Each of: announced, reserved, deposited, picked up = 8 events for partner A.
    raw_a = await take(raw_watch(hub, secret_a, "0"), 8)
    got = events(raw_a)
    assert {e.parcel.parcel_id for e in got} == {"A-1", "A-2"}
    assert {e.parcel.carrier_id for e in got} == {"SF"}
    assert [e.parcel.state for e in got if e.parcel.parcel_id == "A-1"] == [
        common_pb2.PARCEL_STATE_ANNOUNCED,
        common_pb2.PARCEL_STATE_RESERVED,
        common_pb2.PARCEL_STATE_DEPOSITED,
        common_pb2.PARCEL_STATE_PICKED_UP,
    ]
    assert {e.parcel.actor_kind for e in got} == {"operator", "hub", "device"}
    wire = b"".join(raw_a)
    for secret in (PHONE, "138****1234", "1234", "CAB-1", "c1", "ops", *codes):
        assert secret.encode() not in wire, f"{secret!r} crossed the wire to a partner"

    raw_b = await take(raw_watch(hub, secret_b, "0"), 4)
    assert {e.parcel.parcel_id for e in events(raw_b)} == {"B-1"}
    assert PHONE.encode() not in b"".join(raw_b)

    # Resumed from any cursor, the feed continues exactly: nothing lost, nothing repeated.
    for cut in range(1, 8):
        first = events(await take(raw_watch(hub, secret_a, "0"), cut))
        rest = events(await take(raw_watch(hub, secret_a, first[-1].cursor), 8 - cut))
        assert [e.cursor for e in first + rest] == [e.cursor for e in got]
        assert first + rest == got


async def test_live_feed_follows_new_events_and_resumes_after_a_drop(hub: HubHarness) -> None:
    secret = await create(hub, "shop-a", "SF")
    await create(hub, "shop-y", "YTO")  # another partner's carrier, on the same cabinet
    dispatch = dispatch_pb2_grpc.DispatchServiceStub(hub.channel)
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        call = raw_watch(hub, secret, "")  # from now: nothing of the past
        reader = asyncio.create_task(take(call, 2))
        await asyncio.sleep(0.3)  # the stream is open before the parcels are announced
        resp = await dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[
                    announcement("Y-1", hub.site, carrier_id="YTO"),
                    announcement("A-1", hub.site, carrier_id="SF"),
                ]
            ),
            metadata=bearer(OPERATOR),
        )
        live = events(await reader)
        assert [(e.parcel.parcel_id, e.parcel.state) for e in live] == [
            ("A-1", common_pb2.PARCEL_STATE_ANNOUNCED),
            ("A-1", common_pb2.PARCEL_STATE_RESERVED),
        ]
        # The partner is gone while its parcel is deposited; it comes back with its cursor.
        a1 = resp.outcomes[1]
        for outcome in resp.outcomes:
            await cab.event(
                deposited=device_pb2.Deposited(
                    parcel_id=outcome.parcel_id,
                    compartment_id=outcome.compartment_id,
                    courier_id="c1",
                )
            )
        await reach(hub, "A-1", "deposited")
        await reach(hub, "Y-1", "deposited")
        (missed,) = events(await take(raw_watch(hub, secret, live[-1].cursor), 1))
        assert (missed.parcel.parcel_id, missed.parcel.state) == (
            a1.parcel_id,
            common_pb2.PARCEL_STATE_DEPOSITED,
        )
        assert int(missed.cursor) > int(live[-1].cursor)


async def test_partner_credentials_are_not_operator_tokens(
    hub: HubHarness, clock: ManualClock
) -> None:
    secret = await create(hub, "shop-a", "SF")
    expiring = await create(hub, "shop-e", "SF", expires_ms=clock.now_ms() + 1000)
    revoked = await create(hub, "shop-r", "SF")
    await compliance(hub).RevokePartner(
        partners_pb2.RevokePartnerRequest(partner_id="shop-r"), metadata=bearer(ADMIN)
    )
    await tick(clock, 1000)
    stub = partners_pb2_grpc.PartnerServiceStub(hub.channel)

    async def status(metadata: Any, cursor: str = "") -> tuple[grpc.StatusCode, str]:
        call = stub.WatchPartnerFeed(
            partners_pb2.WatchPartnerFeedRequest(cursor=cursor), metadata=metadata
        )
        try:
            async with asyncio.timeout(3):
                async for _ in call:
                    break
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        except TimeoutError:
            call.cancel()
            return grpc.StatusCode.OK, ""
        call.cancel()
        return grpc.StatusCode.OK, ""

    unauth = grpc.StatusCode.UNAUTHENTICATED
    forged = "lhp_" + "A" * 43
    assert (await status(()))[0] == unauth
    assert (await status(bearer(ADMIN)))[0] == unauth  # an operator token is no partner key
    assert (await status(partner_md(ADMIN)))[0] == unauth
    assert (await status(partner_md(forged)))[0] == unauth
    assert (await status(partner_md("lhp_" + "x" * 5_000)))[0] == unauth
    # Beyond gRPC's metadata limit the transport refuses it before the hub sees it.
    assert (await status(partner_md("lhp_" + "x" * 100_000)))[0] in (
        unauth,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert (await status((("authorization", f"partner {secret}"),)))[0] == unauth
    assert (await status(partner_md(revoked)))[0] == unauth
    code, details = await status(partner_md(expiring))
    assert (code, "expired" in details) == (unauth, True)
    assert secret not in details
    assert forged not in details
    # ... and a partner key is no operator token.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await compliance(hub).ListPartners(
            partners_pb2.ListPartnersRequest(), metadata=bearer(secret)
        )
    assert err.value.code() == unauth
    # Only admins manage partners; operators may not.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await compliance(hub).ListPartners(
            partners_pb2.ListPartnersRequest(), metadata=bearer(OPERATOR)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await compliance(hub).ListPartners(
        partners_pb2.ListPartnersRequest(), metadata=bearer(ADMIN)
    )
    assert [(p.partner_id, p.revoked) for p in listed.partners] == [
        ("shop-a", False),
        ("shop-e", False),
        ("shop-r", True),
    ]
    # The secret is stored only as its digest.
    rows = await hub.sql("SELECT secret_sha256 FROM partners")
    assert secret not in str(rows)

    # Hostile cursors: from the future, oversized, not digits.
    last = (await hub.sql("SELECT COALESCE(MAX(id), 0) FROM live_events"))[0][0]
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for cursor in (str(last + 1), "9" * 19, "1" * 20, "1" * 100_000, "-1", "1e3", "١٢", " 1"):
        assert (await status(partner_md(secret), cursor))[0] == invalid, cursor
    assert (await status(partner_md(secret), str(last)))[0] == grpc.StatusCode.OK


async def test_create_partner_rejects_bad_input(hub: HubHarness, clock: ManualClock) -> None:
    c = compliance(hub)
    await register_carrier(hub, "SF")  # so that only the named fault is refused below
    bad = [
        partners_pb2.CreatePartnerRequest(partner_id="p", name="p"),  # no carrier
        partners_pb2.CreatePartnerRequest(partner_id="p", name="p", carrier_ids=["a b"]),
        partners_pb2.CreatePartnerRequest(partner_id="", name="p", carrier_ids=["SF"]),
        partners_pb2.CreatePartnerRequest(partner_id="p", name="", carrier_ids=["SF"]),
        partners_pb2.CreatePartnerRequest(
            partner_id="p", name="p", carrier_ids=[f"C{i}" for i in range(101)]
        ),
        partners_pb2.CreatePartnerRequest(
            partner_id="p", name="p", carrier_ids=["SF"], expires_ms=clock.now_ms() - 1
        ),
        partners_pb2.CreatePartnerRequest(
            partner_id="p", name="p", carrier_ids=["SF"], expires_ms=-5
        ),
    ]
    for request in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await c.CreatePartner(request, metadata=bearer(ADMIN))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    await create(hub, "p", "SF")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(hub, "p", "SF")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_create_partner_refuses_unregistered_carriers(hub: HubHarness) -> None:
    c = compliance(hub)
    await register_carrier(hub, "SF", "ZTO")
    for carriers, unknown in (
        (["GHOST"], "GHOST"),
        (["SF", "GHOST", "ZTO"], "GHOST"),
        (["sf"], "sf"),  # ids are exact: no case folding onto a registered carrier
        (["SF", "NOPE2", "NOPE1"], "['NOPE1', 'NOPE2']"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await c.CreatePartner(
                partners_pb2.CreatePartnerRequest(partner_id="p", name="p", carrier_ids=carriers),
                metadata=bearer(ADMIN),
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, carriers
        assert unknown in (err.value.details() or ""), err.value.details()
    # Nothing was stored by the refusals; registered carriers are accepted.
    assert await hub.sql("SELECT id FROM partners") == []
    resp = await c.CreatePartner(
        partners_pb2.CreatePartnerRequest(partner_id="p", name="p", carrier_ids=["ZTO", "SF"]),
        metadata=bearer(ADMIN),
    )
    assert list(resp.partner.carrier_ids) == ["SF", "ZTO"]


async def test_a_revoked_partner_stream_ends_at_its_next_event(
    hub: HubHarness, clock: ManualClock
) -> None:
    secret = await create(hub, "shop-a", "SF")
    stub = partners_pb2_grpc.PartnerServiceStub(hub.channel)
    call = stub.WatchPartnerFeed(
        partners_pb2.WatchPartnerFeedRequest(), metadata=partner_md(secret)
    )
    await asyncio.sleep(0.3)  # subscribed
    await compliance(hub).RevokePartner(
        partners_pb2.RevokePartnerRequest(partner_id="shop-a"), metadata=bearer(ADMIN)
    )
    await tick(clock, 10_000)  # past the re-check interval
    await compliance(hub).ScheduleMaintenance(  # an event for every partner
        partners_pb2.ScheduleMaintenanceRequest(
            starts_ms=clock.now_ms() + 48 * 3_600_000,
            ends_ms=clock.now_ms() + 49 * 3_600_000,
            reason="switch",
        ),
        metadata=bearer(OPERATOR),
    )

    async def drain() -> None:
        async with asyncio.timeout(10):
            async for event in call:
                raise AssertionError(f"a revoked partner got {event}")

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await drain()
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("actor", "kind"),
    [
        ("hub", "hub"),
        ("device:CAB-1", "device"),
        ("courier:c9", "courier"),
        ("operator:alice", "operator"),
        ("admin:root", "operator"),
        ("viewer:v", "operator"),
        ("operator", "operator"),
        ("", "other"),
        ("evil:\x1b[2J", "other"),
    ],
)
def test_actor_kinds_carry_no_names(actor: str, kind: str) -> None:
    assert actor_kind(actor) == kind


@pytest.mark.parametrize(
    ("text", "last", "ok"),
    [("0", 0, True), ("5", 5, True), ("6", 5, False), ("9" * 19, 10**19, True),
     ("1" * 20, 10**25, False), ("", 5, False), ("+1", 5, False), ("²", 5, False)],
)  # fmt: skip
def test_cursor_rules(text: str, last: int, ok: bool) -> None:
    if ok:
        assert parse_cursor(text, last) == int(text)
    else:
        with pytest.raises(InvalidArgument):
            parse_cursor(text, last)
