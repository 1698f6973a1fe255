"""[ocpp]: the central system for charging piles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hub.settings.checks import check_id as _check_id
from hub.settings.checks import check_port as _check_port
from hub.settings.checks import require as _require

# Network and clock slack on top of two missed heartbeats before a pile counts as silent.
HEARTBEAT_SLACK_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppSettings:
    """The OCPP 1.6J central system that charging piles connect to (hub.ocpp)."""

    # Off by default: a hub without charging piles opens no extra port.
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9000
    # Piles connect to ws://host:port/<path_prefix>/<site>/<pile_id>.
    path_prefix: str = "ocpp"
    # Interval the BootNotification answer tells piles to send Heartbeat at. A pile that missed
    # two heartbeats (plus HEARTBEAT_SLACK_S) is silent: `silent_after_s`.
    heartbeat_interval_s: int = 300
    # How long a remote start/stop waits for the pile's answer.
    response_timeout_s: float = 10.0
    max_piles: int = 1000
    max_message_bytes: int = 64 * 1024
    # Charging sessions (with energy) are kept in this SQLite file, or, when sessions_url is set,
    # in that PostgreSQL database (several hubs: the same URL as storage.url).
    sessions_path: Path = Path("lockerhub-ocpp.db")
    sessions_url: str = field(default="", repr=False)
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

    @property
    def silent_after_s(self) -> float:
        """How long a pile may go unheard before it is reported silent (cabinet_offline)."""
        return 2 * self.heartbeat_interval_s + HEARTBEAT_SLACK_S

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
        _require(
            self.sessions_url == ""
            or self.sessions_url.startswith(("postgresql://", "postgres://")),
            "ocpp.sessions_url",
            'must be empty (SQLite at ocpp.sessions_path) or a "postgresql://" URL',
        )
