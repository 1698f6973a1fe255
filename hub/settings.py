"""Hub settings: frozen groups from TOML, overridden by ``LOCKERHUB_HUB_<SECTION>__<KEY>``.

This is the only module that looks at the environment; everything else receives a HubSettings.
Relative paths are taken relative to the working directory.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import ConfigError

# The inventory's groups are part of HubSettings (defined apart for size): re-exported.
from hub.inventory_settings import CompartmentSettings as CompartmentSettings
from hub.inventory_settings import DeviceInventorySettings as DeviceInventorySettings
from lockerhub.config import build, load_settings
from lockerhub.errors import TopicError
from lockerhub.topics import validate_id

ENV_PREFIX = "LOCKERHUB_HUB_"


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _check_port(value: int, key: str) -> None:
    _require(0 <= value <= 65535, key, f"{value} is not a port number (0-65535, 0 = any free port)")


def _check_id(value: str, key: str) -> None:
    try:
        validate_id(value, key)
    except TopicError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerSettings:
    """The MQTT broker the hub consumes from and publishes commands to."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    client_id: str = "lockerhub-hub"
    keepalive_s: int = 30
    # Hub processes sharing the load join one MQTT 5 shared-subscription group.
    share_group: str = "hub"
    # 0 = clean session (the default for hub consumers: shared subscription + idempotent writes);
    # > 0 keeps the session so the broker queues QoS 1 traffic while the hub restarts.
    session_expiry_s: int = 0
    # QoS 1 messages the broker may have in flight to the hub unacknowledged (MQTT 5 Receive
    # Maximum). The hub acknowledges only after storing, so this bounds what a crash replays.
    receive_maximum: int = 1000
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # "5", or "3.1.1" for brokers without MQTT 5 (the demo's embedded broker): no shared
    # subscriptions, no expiry/content-type properties; payloads carry everything that matters.
    protocol: str = "5"

    def __post_init__(self) -> None:
        _require(bool(self.host), "broker.host", "must not be empty")
        _require(self.protocol in ("5", "3.1.1"), "broker.protocol", 'must be "5" or "3.1.1"')
        _check_port(self.port, "broker.port")
        _require(self.port != 0, "broker.port", "must name the broker's port")
        _check_id(self.client_id, "broker.client_id")
        _require(5 <= self.keepalive_s <= 3600, "broker.keepalive_s", "must be 5-3600 seconds")
        _check_id(self.share_group, "broker.share_group")
        _require(
            0 <= self.session_expiry_s <= 7 * 86400, "broker.session_expiry_s", "must be 0-604800"
        )
        _require(1 <= self.receive_maximum <= 65535, "broker.receive_maximum", "must be 1-65535")
        _require(self.reconnect_min_s > 0, "broker.reconnect_min_s", "must be > 0")
        _require(
            self.reconnect_max_s >= self.reconnect_min_s,
            "broker.reconnect_max_s",
            "must be >= broker.reconnect_min_s",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSettings:
    path: Path = Path("lockerhub-hub.db")

    def __post_init__(self) -> None:
        _require(str(self.path) not in ("", "."), "storage.path", "must name a file")


@dataclass(frozen=True, slots=True, kw_only=True)
class GrpcSettings:
    host: str = "127.0.0.1"
    port: int = 50051
    # Optional TLS: PEM certificate chain and private key (both or neither).
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        _require(bool(self.host), "grpc.host", "must not be empty")
        _check_port(self.port, "grpc.port")
        _require(
            (self.tls_cert is None) == (self.tls_key is None),
            "grpc.tls_key",
            "grpc.tls_cert and grpc.tls_key go together",
        )


_ROLES = ("viewer", "operator", "admin")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSettings:
    """One API token: who (the audit name), its role, the SHA-256 hex digest of the token, and
    optionally when it expires (a TOML date-time with an offset; an expired token is refused)."""

    name: str
    role: str
    sha256: str
    expires: dt.datetime | None = None

    @property
    def expires_ms(self) -> int | None:
        return None if self.expires is None else int(self.expires.timestamp() * 1000)

    def __post_init__(self) -> None:
        _check_id(self.name, "auth.tokens.name")
        _require(self.role in _ROLES, f"auth.tokens[{self.name}].role", f"must be one of {_ROLES}")
        _require(
            len(self.sha256) == 64 and set(self.sha256.lower()) <= _HEX,
            f"auth.tokens[{self.name}].sha256",
            "must be 64 hex digits (`lockerhub hub-token` prints it)",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """Bearer tokens of the operator API; none configured = auth disabled (logged as a warning)."""

    tokens: tuple[TokenSettings, ...] = ()

    def __post_init__(self) -> None:
        names = [t.name for t in self.tokens]
        dupes = sorted({n for n in names if names.count(n) > 1})
        _require(not dupes, "auth.tokens.name", f"duplicate token names {dupes}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    host: str = "127.0.0.1"
    port: int = 9108
    # How often the occupancy snapshot behind lockerhub_compartments is refreshed.
    snapshot_interval_s: float = 5.0

    def __post_init__(self) -> None:
        _require(bool(self.host), "metrics.host", "must not be empty")
        _check_port(self.port, "metrics.port")
        _require(self.snapshot_interval_s > 0, "metrics.snapshot_interval_s", "must be > 0")


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
class OcppSettings:
    """The OCPP 1.6J central system that charging piles connect to (hub.ocpp)."""

    # Off by default: a hub without charging piles opens no extra port.
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9000
    # Piles connect to ws://host:port/<path_prefix>/<site>/<pile_id>.
    path_prefix: str = "ocpp"
    # Interval the BootNotification answer tells piles to send Heartbeat at.
    heartbeat_interval_s: int = 300
    # How long a remote start/stop waits for the pile's answer.
    response_timeout_s: float = 10.0
    max_piles: int = 1000
    max_message_bytes: int = 64 * 1024
    # Charging sessions (with energy) are kept in this SQLite file.
    sessions_path: Path = Path("lockerhub-ocpp.db")
    # OCPP 1.6 security profile: 1 = HTTP Basic auth with each pile's provisioned password,
    # 2 = the same over TLS (tls_cert, tls_key). There is no unauthenticated profile 0.
    security_profile: int = 1
    # Pile passwords (salted hashes) written by `lockerhub devices ... add-pile`; required.
    credentials_path: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Local authorization list (OCPP 1.6 section 3.5): id tags answered Accepted; the blocked
    # ones answer Blocked, every other tag Invalid. Compared case-insensitively (CiString20).
    authorized_id_tags: tuple[str, ...] = ()
    blocked_id_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(bool(self.host), "ocpp.host", "must not be empty")
        _require(self.security_profile in (1, 2), "ocpp.security_profile", "must be 1 or 2")
        _require(
            not self.enabled or self.credentials_path is not None,
            "ocpp.credentials_path",
            "required: the pile passwords file (lockerhub devices ... add-pile)",
        )
        _require(
            self.security_profile != 2 or (self.tls_cert is not None and self.tls_key is not None),
            "ocpp.tls_cert",
            "security_profile 2 needs tls_cert and tls_key",
        )
        for tag in (*self.authorized_id_tags, *self.blocked_id_tags):
            _require(
                0 < len(tag) <= 20 and tag.isprintable(),
                "ocpp.authorized_id_tags",
                "id tags are 1-20 printable characters (CiString20)",
            )
        _check_port(self.port, "ocpp.port")
        _check_id(self.path_prefix, "ocpp.path_prefix")
        _require(
            10 <= self.heartbeat_interval_s <= 86400,
            "ocpp.heartbeat_interval_s",
            "must be 10-86400 seconds",
        )
        _require(
            0 < self.response_timeout_s <= 300, "ocpp.response_timeout_s", "must be 0-300 seconds"
        )
        _require(1 <= self.max_piles <= 100_000, "ocpp.max_piles", "must be 1-100000")
        _require(
            1024 <= self.max_message_bytes <= 16 * 1024 * 1024,
            "ocpp.max_message_bytes",
            "must be 1 KiB to 16 MiB",
        )
        _require(str(self.sessions_path) not in ("", "."), "ocpp.sessions_path", "must name a file")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSettings:
    """Everything ``lockerhub hub`` is configured with."""

    broker: BrokerSettings = field(default_factory=BrokerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    grpc: GrpcSettings = field(default_factory=GrpcSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    commands: CommandSettings = field(default_factory=CommandSettings)
    pickup: PickupSettings = field(default_factory=PickupSettings)
    reservation: ReservationSettings = field(default_factory=ReservationSettings)
    allocation: AllocationSettings = field(default_factory=AllocationSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    device_config: DeviceConfigSettings = field(default_factory=DeviceConfigSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    ocpp: OcppSettings = field(default_factory=OcppSettings)
    sites: tuple[SiteSettings, ...] = ()
    # The operator's inventory: what each device is and where (docs/hub.md).
    devices: tuple[DeviceInventorySettings, ...] = ()

    def __post_init__(self) -> None:
        ids = [s.id for s in self.sites]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        _require(not dupes, "sites.id", f"duplicate site ids {dupes}")
        devices = [d.id for d in self.devices]
        dupes = sorted({i for i in devices if devices.count(i) > 1})
        _require(not dupes, "devices.id", f"duplicate device ids {dupes}")
        for d in self.devices:
            _require(d.site in ids, f"devices[{d.id}].site", f"{d.site!r} is not a configured site")
        for s in self.sites:
            _require(
                not s.sorting_hub or s.sorting_hub in ids,
                f"sites[{s.id}].sorting_hub",
                f"{s.sorting_hub!r} is not a configured site",
            )

    def sorting_hub(self, site: str) -> str:
        """The site whose sorting lines may sort parcels for ``site`` ("" = none but its own)."""
        return next((s.sorting_hub for s in self.sites if s.id == site), "")

    def deadline_h(self, site: str) -> float:
        """The pickup deadline in hours at ``site`` (its own, else the default)."""
        for s in self.sites:
            if s.id == site and s.pickup_deadline_h > 0:
                return s.pickup_deadline_h
        return self.pickup.deadline_h

    @classmethod
    def load(cls, path: Path | None, env: Mapping[str, str] = os.environ) -> HubSettings:
        """Read ``path`` (TOML; None = defaults only), then apply environment overrides.

        Raises:
            ConfigError: unreadable file, unknown key, wrong type or invalid value (names the key).
        """
        return load_settings(cls, path, env, env_prefix=ENV_PREFIX, error=ConfigError)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> HubSettings:
        """Build settings from a parsed TOML document.

        Raises:
            ConfigError: unknown key, wrong type or invalid value (names the key).
        """
        return build(cls, raw, error=ConfigError)
