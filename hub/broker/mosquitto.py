"""The project's own mosquitto: config, per-device accounts and roles, and a managed process.

Each device gets its own account, bound to its own client id, whose role lets it publish only on
its own subtree's device-to-hub topics and subscribe only to its own hub-to-device topics, deny by
default (see domain notes on ACLs); subscriptions are checked too, shared ones included, by
mosquitto's dynamic-security plugin (:mod:`hub.broker.dynsec`). Devices may instead present a
client certificate on a TLS listener (:mod:`hub.broker.pki`). The demo, the tests and
``lockerhub broker config`` use the same renderers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from hub.broker import dynsec, pki
from hub.errors import BrokerError
from lockerhub.topics import validate_id

# Broker-side cap; the hub drops anything above its own (smaller) limit and counts it.
DEFAULT_MAX_PACKET_BYTES = 256 * 1024
_PR_SET_PDEATHSIG = 1
# Where Debian/Ubuntu (and mosquitto's own packages) install the plugin.
_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
DYNSEC_FILE = "dynamic-security.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A broker account. ``device``/``site`` set: a device confined to its subtree; else a hub.

    An empty ``password`` means no password login: a device that connects with its certificate.
    """

    username: str
    password: str
    site: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if (self.site is None) != (self.device is None):
            raise BrokerError("a device account needs both site and device")
        if self.device is not None and self.site is not None:
            validate_id(self.site, "site")
            validate_id(self.device, "device")
            if self.device != self.username:
                raise BrokerError("a device account's username is its device id")
        if self.username in dynsec.RESERVED:
            raise BrokerError(f"{self.username!r} is a reserved broker account name")

    @property
    def is_device(self) -> bool:
        return self.device is not None

    def client(self) -> dynsec.Client:
        """The plugin's view of this account (the password hashed)."""
        credential = dynsec.Credential.of(self.password) if self.password else None
        return dynsec.Client(
            username=self.username, credential=credential, site=self.site, device=self.device
        )


def new_password() -> str:
    """A random broker password."""
    return secrets.token_urlsafe(24)


def dynsec_plugin() -> str:
    """Path of mosquitto's dynamic-security plugin; BrokerError naming the package if absent."""
    for path in _PLUGIN_PATHS:
        if Path(path).exists():
            return path
    raise BrokerError(
        "mosquitto's dynamic-security plugin is not installed "
        f"(looked for {', '.join(_PLUGIN_PATHS)}): apt-get install mosquitto"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    """Where and how mosquitto listens, authenticates and keeps its state.

    Two listeners: ``host:port`` for hubs (and devices with a password, unless the operator binds
    it to a private address), and, with ``tls_port`` set (0 = a free port), a TLS listener on
    ``tls_host`` that admits only clients with a certificate from the broker directory's CA.
    """

    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    tls_port: int | None = None
    tls_host: str | None = None
    # Host names and addresses the server certificate is valid for (devices check it).
    tls_hostnames: tuple[str, ...] = ("localhost", "127.0.0.1")
    max_packet_bytes: int = DEFAULT_MAX_PACKET_BYTES
    # Messages queued per offline persistent session (QoS 1 commands for a cabinet that is away).
    max_queued_messages: int = 10_000
    # QoS 1 messages in flight to one client; the hub asks for less with Receive Maximum.
    max_inflight_messages: int = 1000
    # Keepalive the broker accepts at most (MQTT 5 Server Keep Alive for longer requests).
    max_keepalive_s: int = 600
    # Run as this system user when started as root (None: the invoking user).
    user: str | None = None
    plugin: str | None = None
    log_file: Path | None = None

    def __post_init__(self) -> None:
        for name, value in (("port", self.port), ("tls_port", self.tls_port or 0)):
            if not 0 <= value <= 65535:
                raise BrokerError(f"{name}: {value} is not a port number")
        if self.max_packet_bytes < 1024:
            raise BrokerError("max_packet_bytes: at least 1024")

    @property
    def pki(self) -> pki.Pki:
        return pki.Pki(self.workdir / "pki")


def render_config(cfg: BrokerConfig, port: int, tls_port: int | None = None) -> str:
    """The whole mosquitto.conf: listeners, TLS, auth (dynamic security), persistence, limits.

    ``port``/``tls_port`` are the resolved ports (``cfg`` may say 0, "any free port").
    """
    wd = cfg.workdir.resolve()
    user = cfg.user or pwd.getpwuid(os.getuid()).pw_name
    tls_port = cfg.tls_port if tls_port is None else tls_port
    lines = [
        "# Generated by lockerhub (`lockerhub broker config`, hub.broker.mosquitto); regenerate",
        "# rather than edit. Run: mosquitto -c <this file>",
        "per_listener_settings false",
        # Started as root, mosquitto switches to this user; it must own the broker directory.
        f"user {user}",
        "allow_anonymous false",
        # Accounts, roles and ACLs: the dynamic-security plugin (SUBSCRIBE is checked, $share
        # included; client ids bound to device accounts). See hub/broker/dynsec.py.
        f"plugin {cfg.plugin or dynsec_plugin()}",
        f"plugin_opt_config_file {wd / DYNSEC_FILE}",
        # Sessions of edge agents (Clean Start 0) survive a broker restart.
        "persistence true",
        f"persistence_location {wd}/",
        "autosave_interval 5",
        # Limits: one packet (hence one message), the per-session queue, and in-flight QoS 1.
        f"max_packet_size {cfg.max_packet_bytes}",
        f"max_queued_messages {cfg.max_queued_messages}",
        f"max_inflight_messages {cfg.max_inflight_messages}",
        f"max_keepalive {cfg.max_keepalive_s}",
        "",
        "# Hubs (and devices with a password): bind it to a private address in production.",
        f"listener {port} {cfg.host}",
        "",
    ]
    if tls_port is not None:
        p = cfg.pki
        lines += [
            "# Devices with a client certificate from the broker's CA; the certificate's",
            "# Common Name is the device id, taken as username and client id.",
            f"listener {tls_port} {cfg.tls_host or cfg.host}",
            f"cafile {p.ca_cert.resolve()}",
            f"certfile {p.server_cert.resolve()}",
            f"keyfile {p.server_key.resolve()}",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
            "use_username_as_clientid true",
            "",
        ]
    log = cfg.log_file or wd / "mosquitto.log"
    lines += [
        f"log_dest file {log}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "",
    ]
    return "\n".join(lines)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename), mode 0600."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(slots=True)
class Mosquitto:
    """A mosquitto process run with the project's config; an async context manager.

    ``stop()``/``start()`` restart it on the same ports and state directory (fault tests), and
    ``add_account()`` provisions an account on the running broker through the dynamic-security
    plugin's API (and in its file, for the next start).
    """

    config: BrokerConfig
    accounts: dict[str, Account] = field(default_factory=dict)
    binary: str | None = None
    port: int = 0
    tls_port: int | None = None
    admin_password: str = field(default_factory=new_password)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return self.config.host

    async def __aenter__(self) -> Mosquitto:
        await asyncio.to_thread(self._prepare)
        await self.start()
        return self

    def _prepare(self) -> None:
        binary = self.binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise BrokerError(
                "the mosquitto binary is not installed (apt-get install mosquitto); "
                "`make test` installs it"
            )
        self.binary = binary
        self.config.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.config.port or free_port(self.config.host)
        if self.config.tls_port is not None:
            tls_host = self.config.tls_host or self.config.host
            self.tls_port = self.config.tls_port or free_port(tls_host)
            if pki.ensure_ca(self.config.pki) or not self.config.pki.server_cert.exists():
                pki.issue_server(self.config.pki, self.config.tls_hostnames)
        self._write_auth()
        conf = render_config(self.config, self.port, self.tls_port)
        (self.config.workdir / "mosquitto.conf").write_text(conf)

    def issue_device_certificate(self, device: str) -> tuple[Path, Path]:
        """A client certificate (and key) for ``device`` from this broker's CA."""
        return pki.issue_device(self.config.pki, device)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _write_auth(self) -> None:
        admin = dynsec.Credential.of(self.admin_password)
        text = dynsec.render((a.client() for a in self.accounts.values()), admin)
        write_private(self.config.workdir / DYNSEC_FILE, text)

    async def start(self) -> None:
        """Start the process (again) and wait until it accepts connections."""
        if self._proc is not None and self._proc.poll() is None:
            return
        # Spawned on this thread, not in an executor: PR_SET_PDEATHSIG fires when the *thread*
        # that forked the child exits, and executor threads come and go.
        self._proc = self._spawn()
        for _ in range(200):
            if self._proc.poll() is not None:
                log = self.config.workdir / "stderr.log"
                err = log.read_text(errors="replace")[-400:]
                raise BrokerError(f"mosquitto exited with {self._proc.returncode}: {err}")
            if await _accepts(self.host, self.port):
                return
            await asyncio.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within 10 s")

    def _spawn(self) -> subprocess.Popen[bytes]:
        assert self.binary is not None
        command = [self.binary, "-c", str(self.config.workdir / "mosquitto.conf")]
        # Die with the parent (Linux PR_SET_PDEATHSIG). util-linux's setpriv sets it and execs
        # mosquitto; a preexec_fn would do the same but makes Python run its at-fork hooks in
        # the child, where gRPC's restart its poller threads and abort once the child closes
        # their file descriptors (seen as "mosquitto exited with -6: ... epoll_wait error").
        setpriv = shutil.which("setpriv")
        preexec = None if setpriv else _die_with_parent
        if setpriv:
            command = [setpriv, "--pdeathsig", "SIGTERM", *command]
        with (self.config.workdir / "stderr.log").open("ab") as stderr:
            return subprocess.Popen(  # noqa: S603  (our own binary and config)
                command,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # Ctrl-C signals the terminal's whole process group: the broker must outlive the
                # agents and the hub while they shut down in order, so it gets its own session
                # and is stopped by stop() -- or by the kernel if its parent dies.
                start_new_session=True,
                preexec_fn=preexec,  # only without setpriv
            )

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the process (SIGTERM, or SIGKILL with ``kill``); a no-op when it is not running."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    async def add_account(self, account: Account) -> Account:
        """Provision ``account`` on the running broker (and in its file for the next start)."""
        return await asyncio.to_thread(self.add_account_blocking, account)

    def add_account_blocking(self, account: Account) -> Account:
        """``add_account`` for synchronous callers (test fixtures, provisioning scripts)."""
        self.accounts[account.username] = account
        self._write_auth()
        if self._proc is not None and self._proc.poll() is None:
            commands = dynsec.add_commands(account.client(), account.password or None)
            dynsec.apply(self.host, self.port, self.admin_password, commands)
        return account


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
