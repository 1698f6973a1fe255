"""Device presence and telemetry: birth/will status (with boot counters), the check of a birth's
layout against the provisioned one, and latest samples."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hub.devices.layouts import LayoutCheck, compare, reported_slots
from hub.errors import Dropped
from hub.models import device_kind_name
from hub.settings import RegistrySettings
from hub.store import Tx
from hub.store.repo import devices as repo
from hub.store.repo import inventory as inventory_repo
from lockerhub.topics import Topic
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    """What a status changed: the device was registered by it; a birth's layout check."""

    registered: bool
    layout: LayoutCheck | None


class Registry:
    """Applies status and telemetry messages of provisioned (or self-announcing) devices."""

    def __init__(self, settings: RegistrySettings) -> None:
        self._settings = settings
        # device -> (site, kind) of registered devices: saves a query per message on the ingest
        # path. Devices are never removed or moved; provisioning (which may change the kind)
        # calls :meth:`forget`.
        self._known: dict[str, tuple[str, str]] = {}
        # device -> compartment ids seen in the store. Compartments are never removed or moved,
        # so a hit is always right; a miss re-reads (provisioning may have added some) before a
        # compartment is declared unknown.
        self._compartments: dict[str, frozenset[str]] = {}

    async def has_compartments(self, tx: Tx, device_id: str, compartment_ids: set[str]) -> bool:
        """True when the device has every one of ``compartment_ids`` (cached per device)."""
        known = self._compartments.get(device_id)
        if known is None or not compartment_ids <= known:
            known = frozenset(await repo.compartment_ids(tx, device_id))
            self._compartments[device_id] = known
        return compartment_ids <= known

    def forget_compartments(self) -> None:
        """Drop the compartment cache (a transaction that may have filled it rolled back)."""
        self._compartments.clear()

    async def check_sender(self, tx: Tx, topic: Topic) -> str:
        """The kind of the topic's device (for ``hub.ingest.authz``).

        Raises:
            Dropped: the device is not registered, or not at the topic's site.
        """
        known = self._known.get(topic.device)
        if known is not None and known[0] == topic.site:
            return known[1]
        device = await repo.get_device(tx, topic.device)
        if device is None:
            raise Dropped("unknown_device", f"{topic.kind} from unregistered device {topic.device}")
        if device.site != topic.site:
            raise Dropped(
                "misplaced", f"{topic.device} is registered at {device.site}, not {topic.site}"
            )
        kind = device.kind if device.provisioned else "unprovisioned"
        self._known[topic.device] = (device.site, kind)
        return kind

    def forget(self, device_id: str) -> None:
        """Drop what is cached about ``device_id`` (it was provisioned again)."""
        self._known.pop(device_id, None)
        self._compartments.pop(device_id, None)

    async def apply_status(
        self, tx: Tx, topic: Topic, status: device_pb2.DeviceStatus, now_ms: int
    ) -> StatusOutcome:
        """Apply a birth or will: presence, and for a birth the check of its layout.

        Raises:
            Dropped: unknown device (unless a birth with auto_register), wrong site, or stale.
        """
        online = status.state == device_pb2.DeviceStatus.STATE_ONLINE
        device = await repo.get_device(tx, topic.device)
        registered = device is None
        if device is None:
            if not (online and self._settings.auto_register):
                raise Dropped("unknown_device", f"status from unregistered device {topic.device}")
            if not await repo.site_exists(tx, topic.site):
                raise Dropped("unknown_site", f"birth of {topic.device} at unknown site")
            await repo.register_device(
                tx, topic.device, topic.site, device_kind_name(status.kind), now_ms
            )
            log.info("registered unprovisioned %s at %s", topic.device, topic.site)
        elif device.site != topic.site:
            raise Dropped(
                "misplaced", f"{topic.device} is registered at {device.site}, not {topic.site}"
            )
        elif status.boot_count < device.boot_count:
            # A late will (or retained birth) from an older session: Sparkplug's bdSeq rule.
            raise Dropped(
                "stale",
                f"status of {topic.device} from boot {status.boot_count} < {device.boot_count}",
            )
        await repo.set_status(
            tx,
            topic.device,
            online=online,
            boot_count=status.boot_count,
            firmware=status.firmware_version,
            now_ms=now_ms,
        )
        layout = None
        if online:  # the birth says which payload format the device reads
            await repo.set_accept(tx, topic.device, status.accept)
        if online:
            # A birth only confirms the operator's layout: it never adds a compartment.
            layout = compare(
                provisioned=device is not None and device.provisioned,
                kind="" if device is None else device.kind,
                claimed_kind=device_kind_name(status.kind),
                expected=await inventory_repo.provisioned_slots(tx, topic.device),
                reported=reported_slots(status.compartments),
            )
            await inventory_repo.set_confirmed(tx, topic.device, layout.confirmed)
        await repo.set_reported(
            tx,
            topic.device,
            desired_applied=status.desired_version,
            outbox_full=status.outbox_full,
        )
        return StatusOutcome(registered, layout)

    async def apply_telemetry(
        self, tx: Tx, topic: Topic, sample: device_pb2.Telemetry, now_ms: int
    ) -> None:
        """Store the latest energy sample and door/item sensors.

        Raises:
            Dropped: the sample names a compartment this cabinet does not have.
        """
        named = {c.compartment_id for c in sample.compartments}
        if named and not await self.has_compartments(tx, topic.device, named):
            raise Dropped(
                "unknown_compartment",
                f"telemetry of {topic.device} names a foreign compartment",
            )
        await repo.set_energy(
            tx, topic.device, energy_wh=sample.energy_wh, power_w=sample.power_w, now_ms=now_ms
        )
        if sample.desired_version:
            await repo.raise_desired_applied(tx, topic.device, sample.desired_version)
        if sample.compartments:
            await repo.set_sensors_many(
                tx,
                topic.device,
                [(c.compartment_id, c.door_open, c.item_present) for c in sample.compartments],
            )
