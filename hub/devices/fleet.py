"""Fleet: cabinets with their compartments, and remote opens (audited, waited for)."""

from __future__ import annotations

from collections.abc import Callable

from hub.devices import desired
from hub.devices.commands import CommandService
from hub.devices.desired import DesiredStates
from hub.errors import DeviceUnavailable, FailedPrecondition, InvalidArgument, NotFound
from hub.models import CommandOutcome, CompartmentRecord, DeviceRecord, SiteRecord
from hub.settings import CommandSettings
from hub.store import Store
from hub.store.repo import devices as repo
from lockerhub.clock import Clock
from lockerhub.v1 import device_pb2

# A SetCompartmentEnabled command may arrive late: the desired state carries it anyway.
_ENABLE_TTL_MS = 3_600_000


class FleetService:
    """The cabinet side of the operator API."""

    def __init__(
        self,
        store: Store,
        commands: CommandService,
        settings: CommandSettings,
        *,
        link_up: Callable[[], bool],
        desired_states: DesiredStates,
        clock: Clock,
    ) -> None:
        self._desired = desired_states
        self._clock = clock
        self._store = store
        self._commands = commands
        self._settings = settings
        self._link_up = link_up

    def available(self, device: DeviceRecord) -> bool:
        """Online only while its last status said so and the hub's own broker link is up."""
        return device.online and self._link_up()

    async def list_cabinets(self, site: str) -> list[DeviceRecord]:
        async with self._store.read() as tx:
            return [d for d in await repo.list_devices(tx, site) if d.kind == "cabinet"]

    async def get_cabinet(self, cabinet_id: str) -> DeviceRecord:
        """Raises NotFound."""
        async with self._store.read() as tx:
            cabinet = await repo.get_cabinet(tx, cabinet_id)
        if cabinet is None:
            raise NotFound(f"cabinet {cabinet_id!r} not found")
        return cabinet

    async def open_compartment(
        self, cabinet_id: str, compartment_id: str, *, reason: str, ttl_s: int, actor: str
    ) -> CommandOutcome:
        """Send OpenCompartment and wait for the cabinet's result.

        Raises:
            InvalidArgument: ttl_s above the configured maximum.
            NotFound: unknown cabinet or compartment.
            DeviceUnavailable: the cabinet or the broker link is offline.
            CommandTimeout: no result before the command expired.
        """
        ttl_s = ttl_s or self._settings.default_ttl_s
        if ttl_s > self._settings.max_ttl_s:
            raise InvalidArgument(f"ttl_seconds must be <= {self._settings.max_ttl_s}")
        async with self._store.transaction() as tx:
            cabinet = await repo.get_device(tx, cabinet_id)
            if cabinet is None:
                raise NotFound(f"cabinet {cabinet_id!r} not found")
            if await repo.get_compartment(tx, cabinet_id, compartment_id) is None:
                raise NotFound(f"cabinet {cabinet_id!r} has no compartment {compartment_id!r}")
            if not self.available(cabinet):
                raise DeviceUnavailable(f"cabinet {cabinet_id!r} is offline")
            command = device_pb2.Command(
                open_compartment=device_pb2.OpenCompartment(
                    compartment_id=compartment_id, reason=reason
                )
            )
            # The reason and the operator are kept with the command row: remote opens are audited.
            pending = await self._commands.create(
                tx,
                device_id=cabinet_id,
                site=cabinet.site,
                command=command,
                ttl_ms=ttl_s * 1000,
                actor=actor,
            )
        return await self._commands.send_and_wait(pending)

    async def list_sites(self) -> list[SiteRecord]:
        async with self._store.read() as tx:
            rows = await repo.list_sites(tx)
        return [
            SiteRecord(r["id"], r["name"], r["lat"], r["lon"], r["cabinets"], r["free"], r["total"])
            for r in rows
        ]

    async def set_compartment_enabled(
        self, cabinet_id: str, compartment_id: str, *, enabled: bool, reason: str, actor: str
    ) -> CompartmentRecord:
        """Disable (or enable again) a compartment: stored, sent as a command and carried in the
        cabinet's desired state, so a cabinet that is offline now applies it when it is back.

        Raises:
            NotFound: unknown cabinet or compartment.
            FailedPrecondition: disabling a compartment that holds a parcel (cancel or withdraw
                it first), or enabling one in fault.
        """
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            cabinet = await repo.get_device(tx, cabinet_id)
            if cabinet is None:
                raise NotFound(f"cabinet {cabinet_id!r} not found")
            current = await repo.get_compartment(tx, cabinet_id, compartment_id)
            if current is None:
                raise NotFound(f"cabinet {cabinet_id!r} has no compartment {compartment_id!r}")
            if not await repo.set_enabled(tx, cabinet_id, compartment_id, enabled):
                raise FailedPrecondition(
                    f"compartment {compartment_id} of {cabinet_id} is {current.state}: "
                    + (
                        "clear its fault first"
                        if enabled
                        else "cancel or withdraw its parcel first"
                    )
                )
            command = device_pb2.Command(
                set_compartment_enabled=device_pb2.SetCompartmentEnabled(
                    compartment_id=compartment_id, enabled=enabled, reason=reason
                )
            )
            pending = await self._commands.create(
                tx,
                device_id=cabinet_id,
                site=cabinet.site,
                command=command,
                ttl_ms=_ENABLE_TTL_MS,
                actor=actor,
            )
            await desired.mark(tx, cabinet_id, now)
            updated = await repo.get_compartment(tx, cabinet_id, compartment_id)
        assert updated is not None
        self._desired.wake()
        await self._commands.publish(pending)
        return updated
