"""Provisioning: the operator says what each device is, where, and (cabinets) its layout."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hub.devices import desired
from hub.devices.desired import DesiredStates
from hub.devices.layouts import provisioned_slots
from hub.devices.registry import Registry
from hub.errors import ConfigError
from hub.settings.inventory import DeviceInventorySettings
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from hub.store.repo import inventory as repo
from lockerhub.clock import Clock

log = logging.getLogger(__name__)


class Inventory:
    """Writes ``[[devices]]`` entries into the store; births then only confirm them."""

    def __init__(
        self, store: Store, registry: Registry, clock: Clock, desired_states: DesiredStates
    ) -> None:
        self._desired = desired_states
        self._store = store
        self._registry = registry
        self._clock = clock

    async def provision(self, entries: Iterable[DeviceInventorySettings]) -> None:
        """Provision ``entries`` in one transaction (at start-up: the settings' inventory).

        Raises:
            ConfigError: a device is registered at another site than its entry names, or its
                site is unknown.
        """
        entries = list(entries)
        async with self._store.transaction() as tx:
            for entry in entries:
                await self._provision(tx, entry)
        for entry in entries:  # after the commit (memory follows the commit)
            self._registry.forget(entry.id)
        self._desired.wake()

    async def _provision(self, tx: Tx, entry: DeviceInventorySettings) -> None:
        if not await devices_repo.site_exists(tx, entry.site):
            raise ConfigError(f"devices[{entry.id}].site: unknown site {entry.site!r}")
        was = await devices_repo.get_device(tx, entry.id)
        before = await repo.provisioned_slots(tx, entry.id)
        site = await repo.provision_device(
            tx, entry.id, entry.site, entry.kind, self._clock.now_ms()
        )
        if site != entry.site:
            raise ConfigError(
                f"devices[{entry.id}].site: the device is registered at {site!r}, not "
                f"{entry.site!r} (devices are never moved: give the new one a new id)"
            )
        await repo.provision_compartments(tx, entry.id, provisioned_slots(entry))
        changed = was is None or not was.provisioned or was.kind != entry.kind
        if changed or before != await repo.provisioned_slots(tx, entry.id):
            # A new device (or layout) gets its retained desired state; the same entry
            # provisioned again at the next start-up changes nothing.
            await desired.mark(tx, entry.id, self._clock.now_ms())
