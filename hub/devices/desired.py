"""Retained desired state per device: what a cabinet must hold to serve couriers and recipients
while the hub is away (reservations with their carrier, pickup-code hashes, disabled compartments,
config, the couriers it lets in with their code hashes, the courier-token public key and the
bad-conduct list).

Every change bumps the device's version inside the transaction that made the change (so the
version only grows and survives restarts); :meth:`DesiredStates.run` publishes the newest state of
each changed device after the commit, coalescing bursts (a batch of 10 000 announcements is one
publish per cabinet). A publish that fails stays pending and is retried after the next connect.
With several hubs, one hub at a time publishes a given device (:meth:`publish_pending`), and the
edge ignores a version older than the one it applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import astuple

from hub.devices.commands import Publisher
from hub.errors import BrokerError
from hub.metrics.catalogue import HubMetrics
from hub.settings import DeviceConfigSettings
from hub.store import Store, Tx
from hub.store.repo import couriers as couriers_repo
from hub.store.repo import desired as desired_repo
from hub.store.repo import devices as devices_repo
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import sorting as sorting_repo
from lockerhub.clock import Clock
from lockerhub.codec import CONTENT_TYPE_PROTOBUF, encode_as
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)
_BATCH = 200
_RETRY_S = 1.0


def config_message(cfg: DeviceConfigSettings) -> device_pb2.DeviceConfig:
    return device_pb2.DeviceConfig(
        telemetry_interval_s=cfg.telemetry_interval_s,
        door_left_open_s=cfg.door_left_open_s,
        keypad_max_failures=cfg.keypad_max_failures,
        keypad_lockout_s=cfg.keypad_lockout_s,
        chilled_min_c=cfg.chilled_min_c,
        chilled_max_c=cfg.chilled_max_c,
    )


def config_hash(cfg: DeviceConfigSettings) -> str:
    return hashlib.sha256(repr(astuple(cfg)).encode()).hexdigest()[:16]


async def mark(tx: Tx, device_id: str, now_ms: int) -> None:
    """Bump ``device_id``'s desired-state version (inside the caller's transaction)."""
    await desired_repo.bump(tx, device_id, now_ms)


class DesiredStates:
    """Builds and publishes each device's retained DesiredState."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        clock: Clock,
        config: DeviceConfigSettings,
        metrics: HubMetrics,
        *,
        courier_key: bytes = b"",
        holder: str = "hub",
        lease_s: float = 15.0,
    ) -> None:
        self._courier_key = courier_key
        self._store = store
        self._holder = holder
        # Longer than a publish may take (10 s bound in hub.mqtt.link) plus a margin.
        self._lease_ms = int((10.0 + lease_s) * 1000)
        self._publisher = publisher
        self._clock = clock
        self._config = config
        self._metrics = metrics
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something changed (or the broker link came back): publish soon."""
        self._wake.set()

    async def sync_config(self) -> None:
        """At start-up: devices whose last state carried another config get a new version."""
        digest = config_hash(self._config)
        async with self._store.transaction() as tx:
            await desired_repo.bump_other_config(tx, digest, self._clock.now_ms())

    async def build(self, tx: Tx, device_id: str, version: int) -> device_pb2.DesiredState:
        """The whole desired state of one device at ``version``."""
        state = device_pb2.DesiredState(version=version, ts_ms=self._clock.now_ms())
        carriers = await parcels_repo.carriers_on(tx, device_id)
        reservations = await parcels_repo.reservations_of(tx, device_id)
        # A parcel held at screening keeps no compartment on the cabinet until it is released.
        held = await sorting_repo.held_among(tx, [r[0] for r in reservations])
        for parcel_id, compartment, expires_ms in reservations:
            if parcel_id in held:
                continue
            state.reservations.add(
                parcel_id=parcel_id,
                compartment_id=compartment,
                expires_ms=expires_ms,
                carrier_id=carriers.get(parcel_id, ""),
            )
        for parcel_id, compartment, code_hash, deadline in await parcels_repo.codes_of(
            tx, device_id
        ):
            state.pickup_codes.add(
                parcel_id=parcel_id,
                compartment_id=compartment,
                code_hash=code_hash,
                deadline_ms=deadline,
            )
        state.disabled_compartments.extend(await devices_repo.disabled_compartments(tx, device_id))
        state.config.CopyFrom(config_message(self._config))
        await self._couriers(tx, device_id, state)
        plan = await sorting_repo.plan(tx, device_id)
        if plan is not None:  # a sorting line with a plan (hub.sorting.plans)
            state.sort_plan_version = plan.version
            state.sort_plan.extend(
                device_pb2.SortRule(destination=d, chute_id=c) for d, c in plan.rules
            )
            state.exception_chute = plan.exception_chute
            state.hold_chute = plan.hold_chute
            site = await sorting_repo.line_site(tx, device_id)
            if site is not None:
                state.held_parcels.extend(await sorting_repo.held_at(tx, site))
        return state

    async def _couriers(self, tx: Tx, device_id: str, state: device_pb2.DesiredState) -> None:
        """Cabinets: the couriers they let in (code hashes only), the token key, the barred."""
        device = await devices_repo.get_device(tx, device_id)
        if device is None or device.kind != "cabinet":
            return
        state.courier_token_key = self._courier_key
        for c in await couriers_repo.cabinet_couriers(tx):
            cred = state.couriers.add(courier_id=c.courier_id, carrier_id=c.carrier_id)
            if c.code_hash:
                cred.code_salt = bytes.fromhex(c.code_salt)
                cred.code_hash = bytes.fromhex(c.code_hash)
                cred.code_iterations = c.code_iterations
        state.barred_couriers.extend(b.courier_id for b in await couriers_repo.blocklist(tx))

    async def run(self) -> None:
        """Publish pending states whenever woken, and every ``_RETRY_S`` on the clock (retrying
        failures); until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._retry_timer(), name="desired-state-timer")
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.publish_pending()

    async def _retry_timer(self) -> None:
        while True:
            await self._clock.sleep(_RETRY_S)
            self._wake.set()

    async def publish_pending(self) -> int:
        """Publish every device whose version is ahead of what was published; return how many.

        Across hubs, a device's retained state is published by one hub at a time: the hub claims
        the device (a lease on its ``desired_state`` row) and builds the state in the same
        transaction, so it publishes the newest committed version; a change committed later
        leaves the row pending again, for the next round. Retained versions therefore only grow.
        """
        done = 0
        while True:
            async with self._store.read() as tx:  # no write lock while nothing is pending
                if not await desired_repo.any_pending(tx):
                    return done
            now = self._clock.now_ms()
            async with self._store.transaction() as tx:
                rows = await desired_repo.claim_pending(
                    tx, self._holder, now_ms=now, until_ms=now + self._lease_ms, limit=_BATCH
                )
                states = [
                    (
                        r.device,
                        r.site,
                        await self.build(tx, r.device, r.version),
                        r.accept or CONTENT_TYPE_PROTOBUF,
                    )
                    for r in rows
                ]
            if not states:
                return done
            published: list[tuple[int, str]] = []
            for device, site, state, accept in states:
                try:
                    await self._publisher.publish(
                        Topic(site, device, Kind.DESIRED),
                        encode_as(state, accept),
                        expiry_ms=None,
                        content_type=accept,
                    )
                except BrokerError as exc:
                    log.warning("desired state of %s stays pending: %s", device, exc)
                    break
                published.append((state.version, device))
            async with self._store.transaction() as tx:
                # The published state carries the current config: record which one.
                lost = await desired_repo.record_published(
                    tx,
                    published,
                    self._holder,
                    config_hash=config_hash(self._config),
                    now_ms=self._clock.now_ms(),
                )
                await desired_repo.release(tx, [d for d, _, _, _ in states], self._holder)
            if lost:
                log.warning("desired state of %d device(s) republished: claim expired", lost)
            done += len(published)
            if len(published) < len(states):
                return done
