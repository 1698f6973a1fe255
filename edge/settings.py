"""Edge agent settings: TOML file, then ``LOCKERHUB_EDGE_<SECTION>__<KEY>`` environment overrides.

The rest of the agent never reads ``os.environ``; it receives a validated, frozen EdgeSettings.
Relative ``storage.path`` is resolved against the current directory.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from edge.errors import ConfigError
from lockerhub.config import build, load_settings
from lockerhub.driver import CompartmentSpec, SizeClass
from lockerhub.errors import TopicError
from lockerhub.mqtt import client_tls_context
from lockerhub.topics import validate_id

ENV_PREFIX = "LOCKERHUB_EDGE_"

# Default compartment profile (InPost-like, domain notes: S 80x380x640, M 190x380x640,
# L 410x380x640 mm as height x width x depth), stored here as (width, height, depth) in mm.
DEFAULT_PROFILE: Mapping[SizeClass, tuple[int, int, int]] = {
    SizeClass.S: (380, 80, 640),
    SizeClass.M: (380, 190, 640),
    SizeClass.L: (380, 410, 640),
}
DEFAULT_MAX_WEIGHT_G = 25_000


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSettings:
    """[device]: who this cabinet is."""

    id: str
    site: str
    firmware_version: str = "0.1.0"
    # "cabinet" or "sorting_line" (the same program runs both).
    kind: str = "cabinet"

    def __post_init__(self) -> None:
        _require(
            self.kind in ("cabinet", "sorting_line"),
            "device.kind",
            f"must be 'cabinet' or 'sorting_line', got {self.kind[:20]!r}",
        )
        for key, value in (("device.id", self.id), ("device.site", self.site)):
            try:
                validate_id(value, key)
            except TopicError as exc:
                raise ConfigError(str(exc)) from exc
        _require(0 < len(self.firmware_version) <= 64, "device.firmware_version", "1-64 characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerSettings:
    """[broker]: the MQTT 5 broker and session parameters."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = ""
    keepalive_s: int = 30
    session_expiry_s: int = 7200
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    publish_timeout_s: float = 10.0
    # "5", or "3.1.1" for brokers without MQTT 5 (the demo's embedded broker): the session is
    # kept with clean_session=0 instead of an expiry; payloads carry everything that matters.
    protocol: str = "5"
    # TLS (the broker's device listener, 8883): the broker's CA, and the device's certificate and
    # key from `lockerhub devices add --cert`, which then are its identity (no username/password).
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def __post_init__(self) -> None:
        _require(bool(self.host), "broker.host", "must not be empty")
        _require(
            (self.tls_cert_file is None) == (self.tls_key_file is None),
            "broker.tls_cert_file",
            "needs broker.tls_key_file with it (and the other way round)",
        )
        _require(
            self.tls_cert_file is None or self.tls_ca_file is not None,
            "broker.tls_ca_file",
            "must name the broker's CA when a client certificate is set",
        )
        _require(self.protocol in ("5", "3.1.1"), "broker.protocol", 'must be "5" or "3.1.1"')
        _require(1 <= self.port <= 65535, "broker.port", f"must be 1-65535, got {self.port}")
        _require(5 <= self.keepalive_s <= 3600, "broker.keepalive_s", "must be 5-3600")
        # A finite expiry (MQTT 5, 3.1.2.11.2): 0 would drop queued commands on every blip.
        _require(
            60 <= self.session_expiry_s <= 7 * 86400,
            "broker.session_expiry_s",
            "must be 60-604800 (a finite session that outlives short outages)",
        )
        _require(
            0 < self.reconnect_min_s <= self.reconnect_max_s <= 3600,
            "broker.reconnect_min_s",
            "need 0 < reconnect_min_s <= reconnect_max_s <= 3600",
        )
        _require(0 < self.publish_timeout_s <= 600, "broker.publish_timeout_s", "must be 0-600")
        _require(len(self.client_id) <= 64, "broker.client_id", "at most 64 characters")

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context these settings ask for, or None for plain TCP.

        Raises:
            ConfigError: a file cannot be read or is not a usable certificate or key.
        """
        if self.tls_ca_file is None:
            return None
        try:
            return client_tls_context(self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            key = "broker.tls_ca_file" if self.tls_cert_file is None else "broker.tls_cert_file"
            raise ConfigError(f"{key}: cannot load the TLS files: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSettings:
    """[storage]: the local SQLite database."""

    path: Path = Path("cabinet.sqlite3")
    # The outbox bound, in entries and in payload bytes: at the bound telemetry and command
    # results are shed, business events never are, and the agent reports outbox_full.
    outbox_max: int = 100_000
    outbox_max_bytes: int = 64 * 1024 * 1024
    # After a reconnect the backlog drains at most this fast (AWS IoT allows 100 publishes/s per
    # connection; a fleet reconnecting at once must not flatten the hub).
    replay_rate_per_s: float = 100.0
    # Acknowledged events kept for ResendEvents (the hub asks when it sees a seq gap).
    resend_window: int = 10_000

    def __post_init__(self) -> None:
        _require(str(self.path) not in ("", "."), "storage.path", "must name a file")
        _require(100 <= self.outbox_max <= 10_000_000, "storage.outbox_max", "must be 100-1e7")
        _require(
            64 * 1024 <= self.outbox_max_bytes <= 1 << 34,
            "storage.outbox_max_bytes",
            "must be 65536-17179869184",
        )
        _require(
            1 <= self.replay_rate_per_s <= 1_000_000,
            "storage.replay_rate_per_s",
            "must be 1-1000000",
        )
        _require(0 <= self.resend_window <= 1_000_000, "storage.resend_window", "must be 0-1e6")


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetrySettings:
    """[telemetry]: periodic snapshot interval (also sent on every occupancy change)."""

    interval_s: float = 60.0

    def __post_init__(self) -> None:
        _require(0.1 <= self.interval_s <= 86400, "telemetry.interval_s", "must be 0.1-86400")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeypadSettings:
    """[keypad]: wrong-code lockout."""

    max_failures: int = 5
    lockout_s: float = 300.0
    # Each further lockout doubles, up to this.
    max_lockout_s: float = 86400.0
    # How long a courier stays signed in (code or app token) to scan parcels.
    courier_session_s: float = 120.0

    def __post_init__(self) -> None:
        _require(1 <= self.max_failures <= 100, "keypad.max_failures", "must be 1-100")
        _require(0 < self.lockout_s <= 86400, "keypad.lockout_s", "must be 0-86400")
        _require(
            self.lockout_s <= self.max_lockout_s <= 7 * 86400,
            "keypad.max_lockout_s",
            "must be lockout_s-604800",
        )
        _require(1 <= self.courier_session_s <= 3600, "keypad.courier_session_s", "must be 1-3600")


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorSettings:
    """[door]: how long to wait for the door sensor after a relay pulse."""

    open_confirm_ms: int = 1500
    # A scan/code opens a compartment for this long before an unrelated open counts as forced.
    arm_ms: int = 5000
    # A door open longer than this raises DOOR_LEFT_OPEN (the hub's DeviceConfig may change it).
    left_open_s: float = 120.0

    def __post_init__(self) -> None:
        _require(10 <= self.open_confirm_ms <= 60_000, "door.open_confirm_ms", "must be 10-60000")
        _require(self.arm_ms >= self.open_confirm_ms, "door.arm_ms", "must be >= open_confirm_ms")
        _require(0.1 <= self.left_open_s <= 86400, "door.left_open_s", "must be 0.1-86400")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChilledSettings:
    """[chilled]: the allowed temperature band of chilled compartments (4 +- 2 C)."""

    min_c: float = 2.0
    max_c: float = 6.0

    def __post_init__(self) -> None:
        _require(
            -40 <= self.min_c < self.max_c <= 40, "chilled.min_c", "need -40 <= min_c < max_c <= 40"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SorterSettings:
    """[sorter]: sorting-line mode (domain notes: drop confirmation 3 s, <= ~200 in flight)."""

    chutes: tuple[str, ...] = (*(f"CH{i:02d}" for i in range(1, 9)), "EX")
    # Used until the hub's sort plan names one.
    exception_chute: str = "EX"
    confirm_timeout_s: float = 3.0
    max_recirculations: int = 2
    max_in_flight: int = 200
    # This many unconfirmed drops in a row raise SORTER_STALLED (cleared by the next good drop).
    stall_after: int = 5
    # sim only: items inducted per second, and the share the scanner cannot read.
    sim_induction_rate_per_s: float = 0.0
    sim_no_read_rate: float = 0.0

    def __post_init__(self) -> None:
        _require(0 < len(self.chutes) <= 512, "sorter.chutes", "1-512 chute ids")
        for chute in self.chutes:
            try:
                validate_id(chute, "sorter.chutes")
            except TopicError as exc:
                raise ConfigError(str(exc)) from exc
        _require(len(set(self.chutes)) == len(self.chutes), "sorter.chutes", "duplicate ids")
        _require(
            self.exception_chute in self.chutes,
            "sorter.exception_chute",
            "must be one of sorter.chutes",
        )
        _require(
            0.05 <= self.confirm_timeout_s <= 60, "sorter.confirm_timeout_s", "must be 0.05-60"
        )
        _require(0 <= self.max_recirculations <= 20, "sorter.max_recirculations", "must be 0-20")
        _require(1 <= self.max_in_flight <= 10_000, "sorter.max_in_flight", "must be 1-10000")
        _require(1 <= self.stall_after <= 10_000, "sorter.stall_after", "must be 1-10000")
        _require(
            0 <= self.sim_induction_rate_per_s <= 1000,
            "sorter.sim_induction_rate_per_s",
            "must be 0-1000",
        )
        _require(0 <= self.sim_no_read_rate <= 1, "sorter.sim_no_read_rate", "must be 0-1")


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentGroup:
    """One ``[[driver.compartments]]`` entry: ``count`` compartments of one size class."""

    size: str
    count: int = 1
    chilled: bool = False
    width_mm: int = 0
    height_mm: int = 0
    depth_mm: int = 0
    max_weight_g: int = DEFAULT_MAX_WEIGHT_G

    def __post_init__(self) -> None:
        key = "driver.compartments"
        _require(
            self.size in SizeClass.__members__,
            f"{key}.size",
            f"must be one of {', '.join(SizeClass.__members__)}, got {self.size[:8]!r}",
        )
        _require(1 <= self.count <= 500, f"{key}.count", "must be 1-500")
        custom = (self.width_mm, self.height_mm, self.depth_mm)
        _require(
            all(v == 0 for v in custom) or all(0 < v <= 5000 for v in custom),
            f"{key}.width_mm",
            "set all of width_mm/height_mm/depth_mm (1-5000) or none",
        )
        _require(
            all(v > 0 for v in custom) or SizeClass(self.size) in DEFAULT_PROFILE,
            f"{key}.width_mm",
            f"size {self.size} has no default profile: give width_mm/height_mm/depth_mm",
        )
        _require(0 < self.max_weight_g <= 200_000, f"{key}.max_weight_g", "must be 1-200000")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverSettings:
    """[driver]: which hardware driver, and for ``sim`` the layout and control server."""

    kind: str = "sim"
    compartments: tuple[CompartmentGroup, ...] = (
        CompartmentGroup(size="S", count=6),
        CompartmentGroup(size="M", count=4),
        CompartmentGroup(size="L", count=2),
    )
    control_host: str = "127.0.0.1"
    control_port: int = 0
    # Relay channels per lock board: relays are switched off board by board at start-up.
    board_size: int = 16
    # sim only: keep the simulated hardware's state (relay pulses, doors, items) in this JSON
    # file, so a killed agent process restarts with the hardware as it was.
    sim_state_path: Path | None = None
    # sim only: how long a relay with the injected ``slow_relay`` fault takes to open the door.
    sim_slow_relay_s: float = 3.0

    # modbus only: the Modbus TCP gateway of the lock/input boards and the meter (docs/edge.md).
    modbus_host: str = "127.0.0.1"
    modbus_port: int = 502
    modbus_meter_unit: int = 100
    # sorting lines: unit id of the line controller (docs/edge.md, "Sorting line register map").
    modbus_line_unit: int = 1
    modbus_poll_s: float = 0.1
    modbus_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        _require(
            self.kind in ("sim", "modbus"),
            "driver.kind",
            f"must be 'sim' or 'modbus', got {self.kind[:20]!r}",
        )
        _require(bool(self.modbus_host), "driver.modbus_host", "must not be empty")
        _require(1 <= self.modbus_port <= 65535, "driver.modbus_port", "must be 1-65535")
        _require(1 <= self.modbus_meter_unit <= 247, "driver.modbus_meter_unit", "must be 1-247")
        _require(1 <= self.modbus_line_unit <= 247, "driver.modbus_line_unit", "must be 1-247")
        _require(0.01 <= self.modbus_poll_s <= 10, "driver.modbus_poll_s", "must be 0.01-10")
        _require(0.05 <= self.modbus_timeout_s <= 30, "driver.modbus_timeout_s", "must be 0.05-30")
        _require(1 <= self.board_size <= 256, "driver.board_size", "must be 1-256")
        _require(0 < self.sim_slow_relay_s <= 600, "driver.sim_slow_relay_s", "must be in (0, 600]")
        _require(len(self.compartments) > 0, "driver.compartments", "at least one group")
        total = sum(g.count for g in self.compartments)
        _require(total <= 500, "driver.compartments", "at most 500 compartments in all")
        _require(0 <= self.control_port <= 65535, "driver.control_port", "must be 0-65535")
        _require(bool(self.control_host), "driver.control_host", "must not be empty")

    def compartment_specs(self) -> tuple[CompartmentSpec, ...]:
        """Expand the profile into compartments ``C01``, ``C02``, ... in file order."""
        specs: list[CompartmentSpec] = []
        width = 2 if sum(g.count for g in self.compartments) < 100 else 3
        for group in self.compartments:
            size = SizeClass(group.size)
            dims = (
                (group.width_mm, group.height_mm, group.depth_mm)
                if group.width_mm
                else DEFAULT_PROFILE[size]
            )
            for _ in range(group.count):
                specs.append(
                    CompartmentSpec(
                        compartment_id=f"C{len(specs) + 1:0{width}d}",
                        size=size,
                        width_mm=dims[0],
                        height_mm=dims[1],
                        depth_mm=dims[2],
                        max_weight_g=group.max_weight_g,
                        chilled=group.chilled,
                        board=len(specs) // self.board_size,
                    )
                )
        return tuple(specs)


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeSettings:
    """Everything the cabinet agent is configured with."""

    device: DeviceSettings
    broker: BrokerSettings = BrokerSettings()
    storage: StorageSettings = StorageSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    keypad: KeypadSettings = KeypadSettings()
    door: DoorSettings = DoorSettings()
    chilled: ChilledSettings = ChilledSettings()
    driver: DriverSettings = DriverSettings()
    sorter: SorterSettings = SorterSettings()

    @classmethod
    def load(cls, path: Path | None, env: Mapping[str, str] = os.environ) -> Self:
        """Read ``path`` (TOML; None = defaults only), then apply environment overrides.

        Raises:
            ConfigError: unreadable file, bad TOML, unknown key, wrong type or invalid value; the
                message names the key (``broker.port``) or variable.
        """
        return load_settings(cls, path, env, env_prefix=ENV_PREFIX, error=ConfigError)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Self:
        """Build settings from a parsed TOML document (raises ConfigError naming the key)."""
        return build(cls, data, error=ConfigError)
