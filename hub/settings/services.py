"""[broker], [storage], [grpc], [auth], [metrics]: how the hub reaches and is reached."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from hub.settings.checks import check_id as _check_id
from hub.settings.checks import check_port as _check_port
from hub.settings.checks import require as _require


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerSettings:
    """The MQTT broker the hub consumes from and publishes commands to."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    # "" = "lockerhub-<cluster.hub_id>", distinct per hub process. Set it (stable across restarts,
    # distinct per hub) when session_expiry_s > 0, so a restarted hub resumes its own session.
    client_id: str = ""
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
        if self.client_id:
            _check_id(self.client_id, "broker.client_id")
        _require(
            bool(self.client_id) or self.session_expiry_s == 0,
            "broker.client_id",
            "must be set (stable, one per hub process) when broker.session_expiry_s > 0",
        )
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


_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]")


def default_hub_id() -> str:
    """``<hostname>-<pid>`` made a valid id: distinct for every hub process on a network."""
    host = _NOT_ID.sub("-", socket.gethostname()).strip("-.") or "host"
    return f"{host[:40]}-{os.getpid()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSettings:
    """Several hub processes on one broker and one database (docs/guide/city.md)."""

    # This process's name: the holder of its job leases and, by default, its MQTT client id.
    # "" = <hostname>-<pid>.
    hub_id: str = ""
    # A job lease (lifecycle sweeper, parcel-flow metrics, a notice or desired-state publish
    # being worked on) lasts this long; a hub killed mid-job leaves it to expire.
    lease_s: float = 15.0
    # WatchEvents reads the shared journal this often for other hubs' writes (this hub's own
    # commits wake it at once).
    journal_poll_s: float = 0.2
    # A hole in a device's event sequence is asked back (ResendEvents) only once it has lasted
    # this long: several hubs apply one device's events out of order, so a hole is usually an
    # event still in another hub's batch. 0 = at once (one hub). Several hubs: a few seconds.
    resend_grace_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.hub_id:
            object.__setattr__(self, "hub_id", default_hub_id())
        _check_id(self.hub_id, "cluster.hub_id")
        _require(2 <= self.lease_s <= 600, "cluster.lease_s", "must be 2-600 seconds")
        _require(0 < self.journal_poll_s <= 10, "cluster.journal_poll_s", "must be 0-10 seconds")
        _require(
            0 <= self.resend_grace_s <= 3600, "cluster.resend_grace_s", "must be 0-3600 seconds"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSettings:
    """Where the hub keeps its state: a SQLite file (``path``, the embedded default) or, when
    ``url`` is set, a PostgreSQL database that several hubs share (``postgresql://...``;
    ``LOCKERHUB_HUB_STORAGE__URL`` overrides it like every other key)."""

    path: Path = Path("lockerhub-hub.db")
    url: str = field(default="", repr=False)  # may carry a password: never in logs
    # PostgreSQL connections per hub (writes use one at a time; reads use the others).
    pool_size: int = 4

    def __post_init__(self) -> None:
        _require(str(self.path) not in ("", "."), "storage.path", "must name a file")
        _require(
            self.url == "" or self.url.startswith(("postgresql://", "postgres://")),
            "storage.url",
            'must be empty (SQLite at storage.path) or a "postgresql://" URL',
        )
        _require(1 <= self.pool_size <= 100, "storage.pool_size", "must be 1-100")

    @property
    def target(self) -> Path | str:
        """What the store opens: the URL when set, else the SQLite file."""
        return self.url or self.path


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
    # Scopes the token to one carrier (tenant); empty = the city operator, who sees all.
    carrier: str = ""

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
        if self.carrier:
            _check_id(self.carrier, f"auth.tokens[{self.name}].carrier")
            # A carrier administers nothing of the hub itself.
            _require(
                self.role != "admin",
                f"auth.tokens[{self.name}].role",
                "a carrier-scoped token is a viewer or an operator, not an admin",
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
