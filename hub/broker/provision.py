"""``lockerhub devices``: per-device MQTT accounts, kept in mosquitto's dynamic-security file.

The accounts live in ``accounts.json`` in the broker directory (username -> site, device and a
PBKDF2 hash in mosquitto's ``$7$`` form, or no hash for a device that logs in with a client
certificate). Every change rewrites ``dynamic-security.json`` from it atomically (temp file +
rename, mode 0600); the plugin reads that file when mosquitto starts, so either restart mosquitto
or pass ``--broker HOST:PORT`` to apply the change to the running broker through the plugin's API
(as the ``lockerhub-admin`` account, whose password is in ``admin-password``). A new password is
printed once, for the device's settings, and is not kept anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.broker import dynsec, pki
from hub.broker.mosquitto import DYNSEC_FILE, new_password, write_private
from hub.errors import BrokerError, ConfigError
from hub.ocpp.credentials import pile_command
from lockerhub.errors import TopicError
from lockerhub.layout import parse_layout
from lockerhub.topics import validate_id

_ACCOUNTS = "accounts.json"
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105  (a file name)
_MAX_ACCOUNTS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One provisioned account: a device (site and device set) or a hub (neither).

    ``hash_line`` None: no password login (a device with a client certificate only).
    """

    username: str
    hash_line: str | None
    site: str | None = None
    device: str | None = None

    def client(self) -> dynsec.Client:
        cred = (
            None if self.hash_line is None else dynsec.Credential.from_password_line(self.hash_line)
        )
        return dynsec.Client(
            username=self.username, credential=cred, site=self.site, device=self.device
        )


def admin_password(directory: Path) -> str:
    """The broker directory's admin password (made on first use, mode 0600)."""
    path = directory / ADMIN_PASSWORD_FILE
    if not path.exists():
        write_private(path, new_password() + "\n")
    return path.read_text(encoding="utf-8").strip()


class AccountBook:
    """The broker directory's accounts; :meth:`save` rewrites accounts.json and the plugin file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: dict[str, Entry] = {}

    @classmethod
    def load(cls, directory: Path) -> AccountBook:
        """Raises ConfigError when the directory or accounts.json is unusable."""
        book = cls(directory)
        path = directory / _ACCOUNTS
        if not directory.is_dir():
            raise ConfigError(f"--broker-dir {directory}: not a directory")
        if not path.exists():
            return book
        try:
            if path.stat().st_size > _MAX_ACCOUNTS_BYTES:
                raise ConfigError(f"{path}: too large to be an accounts file")
            raw = json.loads(path.read_text(encoding="utf-8"))
            for username, item in raw.items():
                h = item["hash"]
                entry = Entry(
                    username, None if h is None else str(h), item.get("site"), item.get("device")
                )
                _check_entry(entry)
                book.entries[username] = entry
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: not a lockerhub accounts file ({exc})") from exc
        return book

    def add_device(
        self, device: str, site: str, *, rotate: bool, password: bool = True
    ) -> str | None:
        """Create (or with ``rotate`` replace) a device account; return its new password (None
        with ``password=False``: the device logs in with a client certificate only).

        Raises:
            ConfigError: invalid id, or the device exists and ``rotate`` is not set.
        """
        _valid(site, "--site")
        _valid(device, "device")
        existing = self.entries.get(device)
        if existing is not None and not rotate:
            raise ConfigError(f"device {device} already has an account (use --rotate)")
        if existing is not None and existing.device is None:
            raise ConfigError(f"{device} is a hub account, not a device")
        if device in dynsec.RESERVED:
            raise ConfigError(f"{device} is a reserved account name")
        if not password:
            self.entries[device] = Entry(device, None, site, device)
            return None
        secret = new_password()
        line = dynsec.Credential.of(secret).password_line(device)
        self.entries[device] = Entry(device, line, site, device)
        return secret

    def add_hub(self, username: str, *, rotate: bool) -> str:
        _valid(username, "username")
        if username in dynsec.RESERVED:
            raise ConfigError(f"{username} is a reserved account name")
        existing = self.entries.get(username)
        if existing is not None and existing.device is not None:
            raise ConfigError(f"{username} is a device account, not a hub")
        if username in self.entries and not rotate:
            raise ConfigError(f"account {username} already exists (use --rotate)")
        password = new_password()
        self.entries[username] = Entry(
            username, dynsec.Credential.of(password).password_line(username)
        )
        return password

    def remove(self, username: str) -> Entry:
        entry = self.entries.pop(username, None)
        if entry is None:
            raise ConfigError(f"no account {username!r}")
        return entry

    def save(self) -> None:
        """Write accounts.json and dynamic-security.json atomically (each file whole or old)."""
        accounts = {
            e.username: {"hash": e.hash_line, "site": e.site, "device": e.device}
            for e in sorted(self.entries.values(), key=lambda e: e.username)
        }
        admin = dynsec.Credential.of(admin_password(self.directory))
        config = dynsec.render((e.client() for e in self.entries.values()), admin)
        write_private(self.directory / _ACCOUNTS, json.dumps(accounts, indent=1) + "\n")
        write_private(self.directory / DYNSEC_FILE, config)


def _key(e: Entry) -> tuple[bool, str]:
    return (e.device is not None, e.username)


def _valid(value: str, what: str) -> None:
    try:
        validate_id(value, what)
    except TopicError as exc:
        raise ConfigError(str(exc)) from exc


def _check_entry(e: Entry) -> None:
    _valid(e.username, "username")
    if (e.site is None) != (e.device is None):
        raise ValueError(f"bad entry for {e.username!r}")
    if e.hash_line is None:
        if e.device is None:
            raise ValueError(f"hub account {e.username!r} without a password")
    else:
        if not e.hash_line.startswith(f"{e.username}:$7$"):
            raise ValueError(f"bad entry for {e.username!r}")
        dynsec.Credential.from_password_line(e.hash_line)
    if e.site is not None and e.device is not None:
        _valid(e.site, "site")
        _valid(e.device, "device")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lockerhub devices add|add-hub|remove|list``."""
    devices = subparsers.add_parser(
        "devices", help="provision per-device MQTT accounts (dynamic-security file, certificates)"
    )
    devices.add_argument(
        "--broker-dir",
        type=Path,
        required=True,
        help="the broker directory (accounts.json, dynamic-security.json, pki/)",
    )
    devices.add_argument(
        "--broker",
        metavar="HOST:PORT",
        help="also apply the change to this running mosquitto (its hub listener) right away",
    )
    sub = devices.add_subparsers(dest="devices_command", required=True)
    p = sub.add_parser("add", help="a device account confined to its own topics")
    p.add_argument("device")
    p.add_argument("--site", required=True)
    p.add_argument("--rotate", action="store_true", help="replace an existing password")
    p.add_argument(
        "--cert",
        action="store_true",
        help="issue a client certificate (pki/devices/) and no password: TLS listener only",
    )
    p.add_argument(
        "--hub-config",
        type=Path,
        help="the hub's settings file: refuse a site the hub does not know",
    )
    p.add_argument(
        "--kind",
        choices=_KINDS,
        default=None,
        help="what the device is (cabinet): printed as the [[devices]] entry for the hub",
    )
    p.add_argument(
        "--layout",
        default="",
        help="a cabinet's compartments, e.g. S:10,M:8,L:4: printed as the [[devices]] entry "
        "for the hub's settings (births may only confirm it)",
    )
    p = sub.add_parser("add-hub", help="a hub account (reads and writes the whole tree)")
    p.add_argument("username")
    p.add_argument("--rotate", action="store_true")
    p = sub.add_parser("remove", help="delete an account")
    p.add_argument("username")
    sub.add_parser("list", help="list accounts")
    # OCPP charging piles: HTTP Basic passwords (security profile 1/2) in ocpp-piles.json.
    p = sub.add_parser("add-pile", help="a charging pile's OCPP password (ocpp-piles.json)")
    p.add_argument("pile")
    p.add_argument("--site", required=True)
    p.add_argument("--rotate", action="store_true", help="replace an existing password")
    p = sub.add_parser("remove-pile", help="delete a charging pile's OCPP password")
    p.add_argument("pile")
    devices.set_defaults(func=_main)


def _check_site(site: str, hub_config: Path | None) -> None:
    """Refuse a site the hub does not know (it would drop the cabinet's birth)."""
    if hub_config is None:
        print(
            f"warning: no --hub-config, so site {site!r} is not checked: if the hub's settings "
            "have no [[sites]] entry with this id, the hub drops this cabinet's birth and never "
            "registers it",
            file=sys.stderr,
        )
        return
    from hub.settings import HubSettings  # only when asked: the settings pull in more modules

    known = [s.id for s in HubSettings.load(hub_config, env={}).sites]
    if site not in known:
        raise ConfigError(
            f"--site {site}: the hub ({hub_config}) knows only sites {known}; it would drop "
            "this cabinet's birth (add the site to its [[sites]] first)"
        )


def _parse_hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--broker {value[:60]!r}: expected HOST:PORT")
    return host, int(port)


def _main(args: argparse.Namespace) -> int:
    if args.devices_command in ("add-pile", "remove-pile"):
        return pile_command(args)
    try:
        live = None if args.broker is None else _parse_hostport(args.broker)
        book = AccountBook.load(args.broker_dir)
        command = args.devices_command
        if command == "list":
            for e in sorted(book.entries.values(), key=_key):
                where = f"{e.site}/{e.device}" if e.device else "hub (lockerhub/v1/#)"
                login = "certificate" if e.hash_line is None else "password"
                print(f"{e.username:<24} {where:<40} {login}")
            return 0
        password = None
        cert: tuple[Path, Path] | None = None
        inventory = ""
        if command == "add":
            if args.layout or args.kind:
                inventory = _inventory_entry(
                    args.device, args.site, args.kind or "cabinet", args.layout
                )
            password = book.add_device(
                args.device, args.site, rotate=args.rotate, password=not args.cert
            )
            _check_site(args.site, args.hub_config)
            username = args.device
            commands = dynsec.add_commands(book.entries[username].client(), password)
            if args.cert:
                ca = pki.Pki(args.broker_dir / "pki")
                pki.ensure_ca(ca)
                cert = pki.issue_device(ca, args.device)
        elif command == "add-hub":
            password = book.add_hub(args.username, rotate=args.rotate)
            username = args.username
            commands = dynsec.add_commands(book.entries[username].client(), password)
        else:
            entry = book.remove(args.username)
            commands = dynsec.remove_commands(entry.username, entry.device is not None)
        book.save()
        if live is not None:
            dynsec.apply(*live, admin_password(args.broker_dir), commands)
    except (ConfigError, BrokerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if command != "remove":
        print(f"username: {username}")
    if password is not None:
        print(f"password: {password}")
    if cert is not None:
        print(f"certificate: {cert[0]}")
        print(f"key: {cert[1]}")
        print(f"ca: {args.broker_dir / 'pki' / 'ca.pem'}")
    if live is not None:
        print(f"applied to the running broker at {args.broker}")
    else:
        print(
            f"updated {args.broker_dir / DYNSEC_FILE}: restart mosquitto to load it, or re-run "
            "with --broker HOST:PORT to apply it to a running broker"
        )
    if inventory:
        print("add to the hub's settings (then restart the hub):")
        print(inventory, end="")
    return 0


_KINDS = ("cabinet", "sorting_line", "charging_pile", "screening_station")


def _inventory_entry(device: str, site: str, kind: str, layout: str) -> str:
    """The hub's ``[[devices]]`` entry for a device (docs/hub.md "Compartment layouts").

    Raises:
        ConfigError: a cabinet without a valid layout, or a layout for another kind.
    """
    if kind != "cabinet":
        if layout:
            raise ConfigError(f"--layout: a {kind} has no compartments")
    else:
        try:
            parse_layout(layout)
        except ValueError as exc:
            raise ConfigError(f"--layout: {exc} (a cabinet needs one, e.g. S:10,M:8,L:4)") from exc
    text = f'[[devices]]\nid = "{device}"\nsite = "{site}"\nkind = "{kind}"\n'
    return text + (f'layout = "{layout}"\n' if layout else "")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hub.broker.provision devices ...`` when the root CLI is not at hand."""
    parser = argparse.ArgumentParser(prog="lockerhub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
