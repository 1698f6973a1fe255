"""Domain settings: commands, pickup, reservations, allocation, ingest, lifecycle, devices,
notices and sites."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.settings.checks import check_id as _check_id
from hub.settings.checks import require as _require


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierSettings:
    """Courier credentials: the Ed25519 signing key of courier app tokens (created 0600 when
    missing; None = ``courier-token.key`` next to the database), token lifetime, code hashing."""

    token_key: Path | None = None
    token_ttl_s: int = 300
    max_token_ttl_s: int = 3600
    code_iterations: int = 20_000

    def __post_init__(self) -> None:
        _require(
            10 <= self.token_ttl_s <= self.max_token_ttl_s <= 86_400,
            "couriers.token_ttl_s",
            "must be 10 <= token_ttl_s <= max_token_ttl_s <= 86400",
        )
        _require(
            1_000 <= self.code_iterations <= 1_000_000,
            "couriers.code_iterations",
            "must be 1000-1000000",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSettings:
    # A door open must never run late: its MQTT message expiry and the device's own check use this.
    default_ttl_s: int = 10
    max_ttl_s: int = 300
    # Extra wait after a command's expiry for a result the device may still be reporting.
    result_timeout_s: float = 2.0
    # How often expired commands are marked as such.
    sweep_interval_s: float = 1.0

    def __post_init__(self) -> None:
        _require(self.default_ttl_s >= 1, "commands.default_ttl_s", "must be >= 1 second")
        _require(
            self.default_ttl_s <= self.max_ttl_s,
            "commands.max_ttl_s",
            "must be >= commands.default_ttl_s",
        )
        _require(self.result_timeout_s >= 0, "commands.result_timeout_s", "must be >= 0")
        _require(self.sweep_interval_s > 0, "commands.sweep_interval_s", "must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PickupSettings:
    code_digits: int = 6
    deadline_h: float = 48.0
    hash_iterations: int = 5_000

    def __post_init__(self) -> None:
        _require(6 <= self.code_digits <= 8, "pickup.code_digits", "must be 6-8")
        _require(0 < self.deadline_h <= 24 * 30, "pickup.deadline_h", "must be 0-720 hours")
        _require(
            1_000 <= self.hash_iterations <= 1_000_000,
            "pickup.hash_iterations",
            "must be 1000-1000000",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationSettings:
    # How long a compartment is held for an announced parcel (also the reserve command's expiry).
    hold_h: float = 24.0

    def __post_init__(self) -> None:
        _require(0 < self.hold_h <= 24 * 14, "reservation.hold_h", "must be 0-336 hours")


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationSettings:
    """How AnnounceParcels picks compartments."""

    # "routing": routing.allocate (numba); "smallest_fit": the hub's plain-Python rule.
    engine: str = "routing"
    # Overflow to nearby sites (metres); 0 = the destination site only.
    radius_m: float = 0.0

    def __post_init__(self) -> None:
        _require(
            self.engine in ("routing", "smallest_fit"),
            "allocation.engine",
            'must be "routing" or "smallest_fit"',
        )
        _require(0 <= self.radius_m <= 50_000, "allocation.radius_m", "must be 0-50000")


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    max_payload_bytes: int = 64 * 1024
    queue_size: int = 10_000
    # Messages applied per SQLite transaction (whatever is queued, up to this many).
    batch_size: int = 500

    def __post_init__(self) -> None:
        _require(
            256 <= self.max_payload_bytes <= 16 * 1024 * 1024,
            "ingest.max_payload_bytes",
            "must be 256 bytes to 16 MiB",
        )
        _require(1 <= self.queue_size <= 1_000_000, "ingest.queue_size", "must be 1-1000000")
        _require(1 <= self.batch_size <= 10_000, "ingest.batch_size", "must be 1-10000")


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleSettings:
    """The sweeper: reminders, pickup expiry, reservation holds, hub-side inactivity alarms."""

    sweep_interval_s: float = 1.0
    # A reminder goes to the recipient this long before the pickup deadline.
    reminder_before_h: float = 12.0
    # A device silent (no status, telemetry or event) this long raises a cabinet_offline alarm.
    offline_after_s: float = 180.0
    # Rows handled per sweep step and transaction (keeps each transaction short).
    batch: int = 500

    def __post_init__(self) -> None:
        _require(self.sweep_interval_s > 0, "lifecycle.sweep_interval_s", "must be > 0")
        _require(
            0 <= self.reminder_before_h <= 24 * 30, "lifecycle.reminder_before_h", "must be 0-720"
        )
        _require(self.offline_after_s >= 5, "lifecycle.offline_after_s", "must be >= 5 seconds")
        _require(1 <= self.batch <= 100_000, "lifecycle.batch", "must be 1-100000")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceConfigSettings:
    """Configuration pushed to every cabinet in its desired state; 0 = keep the device's own."""

    telemetry_interval_s: int = 0
    door_left_open_s: int = 0
    keypad_max_failures: int = 0
    keypad_lockout_s: int = 0
    chilled_min_c: float = 0.0
    chilled_max_c: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "telemetry_interval_s",
            "door_left_open_s",
            "keypad_max_failures",
            "keypad_lockout_s",
        ):
            value = getattr(self, name)
            _require(0 <= value <= 86_400, f"device_config.{name}", "must be 0-86400")
        _require(
            self.chilled_min_c <= self.chilled_max_c or self.chilled_max_c == 0,
            "device_config.chilled_max_c",
            "must be >= device_config.chilled_min_c",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrySettings:
    # Record devices that announce themselves in their birth message (at a configured site) for
    # presence only: an unprovisioned device gets no compartments and may send no event.
    auto_register: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifySettings:
    """Recipient notices: the notifier, and the outbox worker that delivers through it."""

    # JSON-lines file standing in for the SMS gateway (hub.parcels.notify.FileNotifier).
    path: Path = Path("notifications.jsonl")
    # A notifier call that takes longer counts as failed (and is retried).
    timeout_s: float = 30.0
    # Retry delays after a failure: jittered, doubling from retry_min_s up to retry_max_s.
    retry_min_s: float = 5.0
    retry_max_s: float = 600.0
    # How often the outbox looks for due retries (new notices are sent at once).
    poll_s: float = 1.0

    def __post_init__(self) -> None:
        _require(0 < self.timeout_s <= 600, "notify.timeout_s", "must be 0-600 seconds")
        _require(self.retry_min_s > 0, "notify.retry_min_s", "must be > 0")
        _require(self.retry_max_s >= self.retry_min_s, "notify.retry_max_s", ">= retry_min_s")
        _require(0 < self.poll_s <= 60, "notify.poll_s", "must be 0-60 seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteSettings:
    id: str
    name: str = ""
    lat: float = 0.0
    lon: float = 0.0
    # Pickup deadline at this site; 0 = pickup.deadline_h.
    pickup_deadline_h: float = 0.0
    # The site whose sorting lines sort parcels for this one ("" = only this site's own lines).
    sorting_hub: str = ""

    def __post_init__(self) -> None:
        _check_id(self.id, "sites.id")
        if self.sorting_hub:
            _check_id(self.sorting_hub, f"sites[{self.id}].sorting_hub")
        _require(
            0 <= self.pickup_deadline_h <= 24 * 30,
            f"sites[{self.id}].pickup_deadline_h",
            "must be 0-720 hours (0 = pickup.deadline_h)",
        )
        _require(-90 <= self.lat <= 90, f"sites[{self.id}].lat", "must be -90..90")
        _require(-180 <= self.lon <= 180, f"sites[{self.id}].lon", "must be -180..180")
