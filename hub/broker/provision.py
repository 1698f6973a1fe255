"""``lockerhub devices``: per-device MQTT accounts, with the broker's password and ACL files kept
in step (mosquitto formats, rendered by :mod:`hub.broker.mosquitto`).

The accounts live in ``accounts.json`` in the broker directory (username -> site, device and the
mosquitto PBKDF2 hash line; never a plaintext password). Every change rewrites ``passwords`` and
``acl`` from it atomically (temp file + rename, mode 0600); send mosquitto SIGHUP to reload.
A new password is printed once, for the device's settings, and is not kept anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.broker.mosquitto import Account, new_password, password_line, render_acl
from hub.errors import BrokerError, ConfigError
from lockerhub.errors import TopicError
from lockerhub.layout import parse_layout
from lockerhub.topics import validate_id

_ACCOUNTS = "accounts.json"
_MAX_ACCOUNTS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One provisioned account: a device (site and device set) or a hub (neither)."""

    username: str
    hash_line: str
    site: str | None = None
    device: str | None = None


class AccountBook:
    """The broker directory's accounts; :meth:`save` rewrites all three files."""

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
                entry = Entry(username, str(item["hash"]), item.get("site"), item.get("device"))
                _check_entry(entry)
                book.entries[username] = entry
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: not a lockerhub accounts file ({exc})") from exc
        return book

    def add_device(self, device: str, site: str, *, rotate: bool) -> str:
        """Create (or with ``rotate`` replace) a device account; return its new password.

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
        password = new_password()
        self.entries[device] = Entry(device, password_line(device, password), site, device)
        return password

    def add_hub(self, username: str, *, rotate: bool) -> str:
        _valid(username, "username")
        if username in self.entries and not rotate:
            raise ConfigError(f"account {username} already exists (use --rotate)")
        password = new_password()
        self.entries[username] = Entry(username, password_line(username, password))
        return password

    def remove(self, username: str) -> None:
        if self.entries.pop(username, None) is None:
            raise ConfigError(f"no account {username!r}")

    def save(self) -> None:
        """Write accounts.json, passwords and acl atomically (each file is whole or old)."""
        accounts = {
            e.username: {"hash": e.hash_line, "site": e.site, "device": e.device}
            for e in sorted(self.entries.values(), key=lambda e: e.username)
        }
        passwords = "".join(e.hash_line + "\n" for e in sorted(self.entries.values(), key=_key))
        acl = render_acl(
            Account(username=e.username, password="", site=e.site, device=e.device)
            for e in sorted(self.entries.values(), key=_key)
        )
        _write(self.directory / _ACCOUNTS, json.dumps(accounts, indent=1) + "\n")
        _write(self.directory / "passwords", passwords)
        _write(self.directory / "acl", acl)


def _key(e: Entry) -> tuple[bool, str]:
    return (e.device is not None, e.username)


def _valid(value: str, what: str) -> None:
    try:
        validate_id(value, what)
    except TopicError as exc:
        raise ConfigError(str(exc)) from exc


def _check_entry(e: Entry) -> None:
    _valid(e.username, "username")
    if (e.site is None) != (e.device is None) or not e.hash_line.startswith(f"{e.username}:$7$"):
        raise ValueError(f"bad entry for {e.username!r}")
    if e.site is not None and e.device is not None:
        _valid(e.site, "site")
        _valid(e.device, "device")


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lockerhub devices add|add-hub|remove|list``."""
    devices = subparsers.add_parser(
        "devices", help="provision per-device MQTT accounts (password + ACL files)"
    )
    devices.add_argument(
        "--broker-dir", type=Path, required=True, help="directory of passwords, acl, accounts.json"
    )
    sub = devices.add_subparsers(dest="devices_command", required=True)
    p = sub.add_parser("add", help="a device account confined to its own topics")
    p.add_argument("device")
    p.add_argument("--site", required=True)
    p.add_argument("--rotate", action="store_true", help="replace an existing password")
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
    devices.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    try:
        book = AccountBook.load(args.broker_dir)
        command = args.devices_command
        if command == "list":
            for e in sorted(book.entries.values(), key=_key):
                where = f"{e.site}/{e.device}" if e.device else "hub (lockerhub/v1/#)"
                print(f"{e.username:<24} {where}")
            return 0
        password = None
        entry = ""
        if command == "add":
            if args.layout or args.kind:
                entry = _inventory_entry(
                    args.device, args.site, args.kind or "cabinet", args.layout
                )
            password = book.add_device(args.device, args.site, rotate=args.rotate)
        elif command == "add-hub":
            password = book.add_hub(args.username, rotate=args.rotate)
        else:
            book.remove(args.username)
        book.save()
    except (ConfigError, BrokerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if password is not None:
        print(f"username: {args.device if command == 'add' else args.username}")
        print(f"password: {password}")
    print("updated passwords and acl: reload the broker (kill -HUP <mosquitto pid>)")
    if entry:
        print("add to the hub's settings (then restart the hub):")
        print(entry, end="")
    return 0


_KINDS = ("cabinet", "sorting_line", "charging_pile")


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
