"""Several hubs on one store: each event applied once, each job and notice done once, retained
desired state never older than the newest, every hub's journal entries on every hub's stream.

Two :class:`Store` objects on one database are two connections, exactly as two hub processes
have; every test runs on both back ends (``store_target``: a SQLite file in WAL mode, whose write
lock is the file's, not the process's; a PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hub.devices import desired
from hub.devices.desired import DesiredStates
from hub.metrics.catalogue import HubMetrics
from hub.metrics.store_collector import StoreMetrics
from hub.parcels.feed import LiveFeed, contiguous
from hub.parcels.notify import PickupNotice
from hub.parcels.outbox import NoticeOutbox
from hub.settings import DeviceConfigSettings, NotifySettings
from hub.store import Store
from hub.store.repo import desired as desired_repo
from hub.store.repo import events, journal, leases, notices
from lockerhub.clock import ManualClock, SystemClock
from lockerhub.codec import CONTENT_TYPE_PROTOBUF
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2

SITE, CAB = "mh-site", "MH-1"


@contextlib.asynccontextmanager
async def two_stores(target: Path | str) -> AsyncIterator[tuple[Store, Store]]:
    path = target / "hub.db" if isinstance(target, Path) else target
    async with Store(path) as a, Store(path) as b:
        async with a.transaction() as tx:
            await tx.execute("INSERT INTO sites VALUES (?, 'S', 0, 0)", (SITE,))
            await tx.execute(
                "INSERT INTO devices (id, site, kind, registered_ms) VALUES (?, ?, 'cabinet', 1)",
                (CAB, SITE),
            )
        yield a, b


# -- leases --------------------------------------------------------------------------------------


async def test_a_lease_has_one_holder_until_it_runs_out(store_target: Path | str) -> None:
    async with two_stores(store_target) as (a, b):
        async with a.transaction() as tx:
            assert await leases.acquire(tx, "job", "hub-a", now_ms=1000, ttl_ms=500)
        async with b.transaction() as tx:
            assert not await leases.acquire(tx, "job", "hub-b", now_ms=1200, ttl_ms=500)
            assert await leases.holder(tx, "job", now_ms=1200) == "hub-a"
        async with a.transaction() as tx:  # renewing moves the expiry on
            assert await leases.acquire(tx, "job", "hub-a", now_ms=1400, ttl_ms=500)
        async with b.transaction() as tx:
            assert not await leases.acquire(tx, "job", "hub-b", now_ms=1800, ttl_ms=500)
            # hub-a stopped renewing (killed): at 1900 the lease is over and hub-b takes it.
            assert await leases.acquire(tx, "job", "hub-b", now_ms=1900, ttl_ms=500)
            assert await leases.holder(tx, "job", now_ms=1900) == "hub-b"
        async with a.transaction() as tx:
            assert not await leases.acquire(tx, "job", "hub-a", now_ms=2000, ttl_ms=500)
            await leases.release(tx, "job", "hub-a")  # not its lease: nothing happens
            assert await leases.holder(tx, "job", now_ms=2000) == "hub-b"
        async with b.transaction() as tx:
            await leases.release(tx, "job", "hub-b")
            assert await leases.holder(tx, "job", now_ms=2000) == ""


async def test_racing_hubs_never_both_hold_a_lease(store_target: Path | str) -> None:
    async with two_stores(store_target) as (a, b):

        async def take(store: Store, holder: str, now_ms: int) -> bool:
            async with store.transaction() as tx:
                return await leases.acquire(tx, "race", holder, now_ms=now_ms, ttl_ms=100)

        for round_ in range(40):
            now = 10_000 + round_ * 1000  # each round starts after the last lease ran out
            won = await asyncio.gather(take(a, f"a{round_}", now), take(b, f"b{round_}", now))
            assert sorted(won) == [False, True]


async def test_hostile_lease_names_and_holders_are_plain_data(store_target: Path | str) -> None:
    async with two_stores(store_target) as (a, _):
        # (No NUL: PostgreSQL text refuses it, and hub ids are validated ids anyway.)
        hostile = "x'); DROP TABLE job_leases; --" + "é☃" * 2000
        async with a.transaction() as tx:
            assert await leases.acquire(tx, hostile, hostile, now_ms=1, ttl_ms=10)
            assert await leases.holder(tx, hostile, now_ms=2) == hostile
            assert not await leases.acquire(tx, hostile, "other", now_ms=2, ttl_ms=10)


# -- exactly once --------------------------------------------------------------------------------


async def test_a_redelivered_event_is_recorded_by_one_hub_only(store_target: Path | str) -> None:
    async with two_stores(store_target) as (a, b):

        async def apply(store: Store, seq: int, event_id: str) -> bool:
            async with store.transaction() as tx:
                return await events.record_event(tx, CAB, seq, event_id, "x", 1, 2)

        for seq in range(1, 60):
            got = await asyncio.gather(apply(a, seq, f"e{seq}"), apply(b, seq, f"e{seq}"))
            assert sorted(got) == [False, True], seq
        # Same id under another seq, or same seq under another id: still a duplicate.
        assert not await apply(a, 999, "e5")
        assert not await apply(b, 5, "other-id")
        async with a.read() as tx:
            row = await tx.fetchone("SELECT COUNT(*) FROM device_events")
        assert row is not None
        assert row[0] == 59


# -- notices ---------------------------------------------------------------------------------------


class Recording:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.keys: list[str] = []
        self._delay_s = delay_s

    async def notify(self, notice: PickupNotice) -> None:
        await asyncio.sleep(random.uniform(0, self._delay_s))
        self.keys.append(notice.key)


async def add_notices(store: Store, count: int, now_ms: int) -> None:
    async with store.transaction() as tx:
        for i in range(count):
            await tx.execute(
                "INSERT INTO parcels (id, state, site, width_mm, height_mm, depth_mm, weight_g, "
                "zone, phone_masked, electronic_waybill, reusable_container, created_ms, "
                "updated_ms) VALUES (?, 'deposited', ?, 1, 1, 1, 1, 'ambient', '', 0, 0, 1, 1)",
                (f"P{i}", SITE),
            )
            notice = PickupNotice(f"P{i}", "", "123456", SITE, CAB, "C01", 5)
            await NoticeOutbox.add(tx, notice, now_ms)


def outbox_for(store: Store, notifier: Recording, clock: ManualClock, holder: str) -> NoticeOutbox:
    metrics = HubMetrics(CollectorRegistry())
    return NoticeOutbox(
        store, notifier, clock, NotifySettings(), metrics, holder=holder, lease_s=15
    )


async def test_two_hubs_delivering_at_once_send_each_notice_once(store_target: Path | str) -> None:
    clock = ManualClock()
    async with two_stores(store_target) as (a, b):
        await add_notices(a, 300, clock.now_ms())
        na, nb = Recording(0.002), Recording(0.002)
        sent = await asyncio.gather(
            outbox_for(a, na, clock, "hub-a").deliver_due(),
            outbox_for(b, nb, clock, "hub-b").deliver_due(),
        )
        assert sum(sent) == 300
        assert len(na.keys + nb.keys) == len(set(na.keys + nb.keys)) == 300
        assert na.keys  # both took a share (claims interleave by batch)
        assert nb.keys


async def test_a_notice_claimed_by_a_killed_hub_is_sent_by_another_after_the_claim(
    store_target: Path | str,
) -> None:
    clock = ManualClock()
    async with two_stores(store_target) as (a, b):
        await add_notices(a, 1, clock.now_ms())
        now = clock.now_ms()
        async with a.transaction() as tx:  # hub-a claims it, then dies before sending
            (row,) = await notices.due(tx, now, 10)
            assert await notices.claim(tx, row.row_id, "hub-a", now_ms=now, until_ms=now + 45_000)
        nb = Recording()
        other = outbox_for(b, nb, clock, "hub-b")
        assert await other.deliver_due() == 0  # still hub-a's
        clock.advance(45_000)
        assert await other.deliver_due() == 1
        assert len(nb.keys) == 1
        assert await other.deliver_due() == 0


async def test_a_sent_notice_whose_mark_meets_a_store_restart_is_not_sent_again(
    store_target: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway took the notice, then the database restarted before the "delivered" mark
    committed: the mark waits for the store instead of leaving the notice due again."""
    from hub.errors import StoreUnavailable

    real_mark = notices.mark_delivered
    failures = 0

    async def mark(tx: object, row_id: int, now_ms: int) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise StoreUnavailable("server closed the connection unexpectedly")
        await real_mark(tx, row_id, now_ms)  # type: ignore[arg-type]

    monkeypatch.setattr(notices, "mark_delivered", mark)
    monkeypatch.setattr("hub.parcels.outbox._STORE_AWAY_S", 0.01)
    clock = ManualClock()
    async with two_stores(store_target) as (a, _):
        await add_notices(a, 1, clock.now_ms())
        sender = Recording()
        outbox = outbox_for(a, sender, clock, "hub-a")
        assert await outbox.deliver_due() == 1
        clock.advance(3_600_000)  # long past any claim
        assert await outbox.deliver_due() == 0
        assert failures == 2
        assert len(sender.keys) == 1


# -- desired state -------------------------------------------------------------------------------


class Wire:
    """A broker stand-in keeping the retained message per topic, in publish order."""

    def __init__(self) -> None:
        self.retained: dict[str, int] = {}
        self.log: list[int] = []

    async def publish(
        self,
        topic: Topic,
        payload: bytes,
        *,
        expiry_ms: int | None,
        content_type: str = CONTENT_TYPE_PROTOBUF,
    ) -> None:
        await asyncio.sleep(random.uniform(0, 0.003))  # publishes of two hubs interleave
        version = device_pb2.DesiredState.FromString(payload).version
        self.retained[str(topic)] = version
        self.log.append(version)


def desired_for(
    store: Store, wire: Wire, clock: ManualClock | SystemClock, holder: str
) -> DesiredStates:
    return DesiredStates(
        store,
        wire,
        clock,
        DeviceConfigSettings(),
        HubMetrics(CollectorRegistry()),
        holder=holder,
        lease_s=15,
    )


async def test_two_hubs_publishing_one_cabinet_never_retain_an_older_version(
    store_target: Path | str,
) -> None:
    clock = SystemClock()
    wire = Wire()
    async with two_stores(store_target) as (a, b):
        hubs = [desired_for(a, wire, clock, "hub-a"), desired_for(b, wire, clock, "hub-b")]

        async def change_and_publish(store: Store, hub: DesiredStates, rounds: int) -> None:
            for _ in range(rounds):
                async with store.transaction() as tx:
                    await desired.mark(tx, CAB, clock.now_ms())
                await hub.publish_pending()

        await asyncio.gather(change_and_publish(a, hubs[0], 40), change_and_publish(b, hubs[1], 40))
        for hub in hubs:
            await hub.publish_pending()
        async with a.read() as tx:
            version, published = await desired_repo.retained_version(tx, CAB)
        assert version == published == 80
        assert wire.log == sorted(wire.log)  # what the broker retained only ever grew
        assert list(wire.retained.values()) == [80]


async def test_a_stalled_hub_whose_claim_ran_out_makes_a_newer_version_follow(
    store_target: Path | str,
) -> None:
    clock = ManualClock()
    wire = Wire()
    async with two_stores(store_target) as (a, b):
        async with a.transaction() as tx:
            await desired.mark(tx, CAB, clock.now_ms())
        now = clock.now_ms()
        async with a.transaction() as tx:  # hub-a claims v1 and stalls...
            (stale,) = await desired_repo.claim_pending(
                tx, "hub-a", now_ms=now, until_ms=now + 1000, limit=10
            )
        assert stale.version == 1
        clock.advance(1000)
        async with b.transaction() as tx:
            await desired.mark(tx, CAB, clock.now_ms())
        hub_b = desired_for(b, wire, clock, "hub-b")
        assert await hub_b.publish_pending() == 1  # ...hub-b takes over and retains v2
        assert wire.log == [2]
        # hub-a wakes up and publishes its v1 over it: it finds its claim gone and bumps.
        state = device_pb2.DesiredState(version=1)
        await wire.publish(
            Topic(SITE, CAB, Kind.DESIRED), state.SerializeToString(), expiry_ms=None
        )
        async with a.transaction() as tx:
            lost = await desired_repo.record_published(
                tx, [(1, CAB)], "hub-a", config_hash="", now_ms=clock.now_ms()
            )
            await desired_repo.release(tx, [CAB], "hub-a")
        assert lost == 1
        assert await hub_b.publish_pending() == 1
        assert wire.log == [2, 1, 3]
        assert list(wire.retained.values()) == [3]


# -- sweeper leadership, the journal, metrics ----------------------------------------------------


async def test_one_sweeper_leads_and_another_takes_over_when_it_stops(
    store_target: Path | str,
) -> None:
    from hub.parcels.sweeper import LEASE

    clock = ManualClock()
    async with two_stores(store_target) as (a, b):

        async def lead(store: Store, holder: str) -> bool:
            async with store.transaction() as tx:
                return await leases.acquire(tx, LEASE, holder, now_ms=clock.now_ms(), ttl_ms=15_000)

        hubs = {"hub-a": a, "hub-b": b}
        first = await asyncio.gather(*(lead(s, h) for h, s in hubs.items()))
        assert sorted(first) == [False, True]
        leader, other = ("hub-a", "hub-b") if first[0] else ("hub-b", "hub-a")
        for _ in range(3):  # the leader renews every pass; the other never gets a turn
            clock.advance(14_000)
            assert await asyncio.gather(lead(hubs[leader], leader), lead(hubs[other], other)) == [
                True,
                False,
            ]
        clock.advance(15_000)  # the leader was killed: no renewal
        assert await lead(hubs[other], other)
        assert not await lead(hubs[leader], leader)


async def test_one_retention_sweeper_of_several_hubs_purges(store_target: Path | str) -> None:
    """The purge and the engine-wide erase (VACUUM on PostgreSQL) run in one hub, not in each."""
    from hub.privacy.retention import RetentionSweeper
    from hub.settings import PrivacySettings

    clock = ManualClock()
    async with two_stores(store_target) as (a, b):
        settings = PrivacySettings()
        sweepers = [
            RetentionSweeper(store, clock, settings, holder=holder, lease_s=15)
            for store, holder in ((a, "hub-a"), (b, "hub-b"))
        ]
        assert sorted(await asyncio.gather(*(s.lead() for s in sweepers))) == [False, True]
        leader = 0 if await sweepers[0].lead() else 1
        assert not await sweepers[1 - leader].lead()
        clock.advance(int(2 * settings.sweep_interval_s * 1000) + 15_000)  # the leader stopped
        assert await sweepers[1 - leader].lead()


async def test_a_stream_on_one_hub_carries_the_other_hubs_entries_in_order(
    store_target: Path | str,
) -> None:
    async with two_stores(store_target) as (a, b):
        feed = LiveFeed(a, poll_s=0.05)
        start = await feed.start("")
        got: list[tuple[int, str]] = []

        async def follow() -> None:
            async for entry in feed.follow(start):
                got.append((entry.cursor, entry.ref))
                if len(got) == 20:
                    return

        follower = asyncio.create_task(follow())
        for i in range(10):
            for store, name in ((b, "b"), (a, "a")):
                async with store.transaction() as tx:
                    await journal.alarm_changed(
                        tx,
                        alarm_id=i,
                        status=name,
                        ts_ms=1,
                        site=SITE,
                        alarm_kind="k",
                        device=CAB,
                        compartment="",
                        actor="",
                    )
        await asyncio.wait_for(follower, 5)
        cursors = [c for c, _ in got]
        assert cursors == sorted(cursors)
        assert len(set(cursors)) == 20
        # Resuming from a cursor mid-way on the OTHER hub gives exactly the rest.
        rest = []
        async for entry in LiveFeed(b, poll_s=0.05).follow(cursors[9]):
            rest.append(entry.cursor)
            if len(rest) == 10:
                break
        assert rest == cursors[10:]


async def test_only_the_counting_hub_counts_parcel_flow(store_target: Path | str) -> None:
    async with two_stores(store_target) as (a, _):
        counting, idle = HubMetrics(CollectorRegistry()), HubMetrics(CollectorRegistry())
        collectors = (StoreMetrics(counting), StoreMetrics(idle))
        for flag, collector in zip((True, False), collectors, strict=True):
            async with a.read() as tx:
                await collector.refresh(tx, count_flow=flag)  # first tick: the starting cursor
        await add_notices(a, 3, 1)  # three parcels announced
        for flag, collector in zip((True, False), collectors, strict=True):
            async with a.read() as tx:
                await collector.refresh(tx, count_flow=flag)

        def announced(m: HubMetrics) -> float:
            value = m.registry.get_sample_value("lockerhub_parcels_announced_total", {"site": SITE})
            return value or 0.0

        assert announced(counting) == 3
        assert announced(idle) == 0


@pytest.mark.parametrize("hub_id", ["", "bad id", "x" * 65, "$share", "a/b"])
def test_hub_ids_are_checked(hub_id: str) -> None:
    from hub.errors import ConfigError
    from hub.settings import ClusterSettings, HubSettings

    if hub_id == "":
        derived = ClusterSettings().hub_id
        assert derived
        assert HubSettings().broker.client_id.startswith("lockerhub-")
        return
    with pytest.raises(ConfigError, match=r"cluster\.hub_id"):
        ClusterSettings(hub_id=hub_id)


def test_a_kept_session_needs_a_stable_client_id() -> None:
    from hub.errors import ConfigError
    from hub.settings import BrokerSettings, HubSettings

    with pytest.raises(ConfigError, match=r"broker\.client_id"):
        BrokerSettings(session_expiry_s=60)
    two = [HubSettings().broker.client_id, HubSettings.from_mapping({"cluster": {"hub_id": "h2"}})]
    assert two[1].broker.client_id == "lockerhub-h2"
    assert two[0] != "lockerhub-h2"


async def insert_entry(store: Store, entry_id: int, site: str = SITE) -> None:
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO live_events (id, ts_ms, site, kind, ref, state) "
            "VALUES (?, 1, ?, 'alarm', ?, 'raised')",
            (entry_id, site, str(entry_id)),
        )


async def test_the_stream_waits_at_a_hole_in_the_ids_until_it_fills(
    store_target: Path | str,
) -> None:
    """An id that commits after a higher one (PostgreSQL identities) is not skipped: the stream
    holds back at the hole; a hole that never fills (a rollback) is passed after gap_wait_s."""
    async with two_stores(store_target) as (a, b):
        got: list[int] = []
        feed = LiveFeed(a, poll_s=0.02, gap_wait_s=0.5)

        async def follow(site: str) -> None:
            async for entry in feed.follow(0, site=site):
                got.append(entry.cursor)

        follower = asyncio.create_task(follow(SITE))
        try:
            await insert_entry(b, 1)
            await insert_entry(b, 2, site="other-site")  # filtered out, but no hole
            await insert_entry(b, 4)  # 3 is "still being written" by another hub
            await asyncio.sleep(0.2)
            assert got == [1]
            await insert_entry(a, 3)
            await asyncio.sleep(0.2)
            assert got == [1, 3, 4]
            await insert_entry(b, 6)  # 5 never comes (rolled back)
            await asyncio.sleep(0.2)
            assert got == [1, 3, 4]
            await asyncio.sleep(0.6)
            assert got == [1, 3, 4, 6]
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower


async def test_the_partner_feed_waits_at_a_hole_in_the_ids_too(store_target: Path | str) -> None:
    """A partner's cursor is a journal id as well: a row committing late is not skipped."""
    from hub.partners.feed import PartnerFeed

    async def notice(store: Store, entry_id: int) -> None:
        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO live_events (id, ts_ms, site, kind, ref, state) "
                "VALUES (?, 1, ?, 'notice', 'note', 'open')",
                (entry_id, SITE),
            )

    async with two_stores(store_target) as (a, b):
        got: list[int] = []

        async def follow() -> None:
            async for item in PartnerFeed(a, gap_wait_s=1.5).follow(0, ("C1",)):
                got.append(item.row.cursor)

        follower = asyncio.create_task(follow())
        try:
            await notice(b, 1)
            await notice(b, 3)  # 2 is "still being written" by another hub
            await asyncio.sleep(1.2)  # the feed polls other hubs' commits every second
            assert got == [1]
            await notice(b, 2)
            await asyncio.sleep(1.2)
            assert got == [1, 2, 3]
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower


@pytest.mark.parametrize(
    ("after", "ids", "expected"),
    [
        (0, [], (0, None)),
        (0, [1, 2, 3], (3, None)),
        (0, [2, 3], (0, 1)),
        (5, [6, 7, 9], (7, 8)),
        (10**18, [], (10**18, None)),
    ],
)
def test_contiguous(after: int, ids: list[int], expected: tuple[int, int | None]) -> None:
    assert contiguous(after, ids) == expected
