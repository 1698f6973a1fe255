"""Charge point credentials: OCPP 1.6 security profile 1 (HTTP Basic) and 2 (the same over TLS).

Each pile has a password made at provisioning (``lockerhub devices ... add-pile``), printed once
and stored only as a salted PBKDF2 hash in a JSON file (pile id -> site and hash, the file named
by ``ocpp.credentials_path``). The Basic-auth username is the pile's identity (OCPP 1.6 security
whitepaper, profile 1), so a pile can connect only under its own id, at its own site.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import ssl
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hub.errors import ConfigError
from lockerhub.errors import TopicError
from lockerhub.topics import validate_id

_SCHEME = "pbkdf2_sha256"
# ~30 ms per check on a hub core; checks run in a thread, at most two at a time (a flood of
# wrong passwords costs at most two cores' worth of hashing, never the event loop).
ITERATIONS = 100_000
MAX_FILE_BYTES = 16 * 1024 * 1024
_PASSWORD_BYTES = 20  # 40 hex characters (the 1.6 AuthorizationKey carries 16-20 bytes)


def new_password() -> str:
    return secrets.token_hex(_PASSWORD_BYTES)


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded`` (False for a malformed hash)."""
    try:
        scheme, iters, salt_hex, digest_hex = encoded.split("$")
        iterations = int(iters)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != _SCHEME or not 1 <= iterations <= 10_000_000 or len(password) > 256:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic ...`` header, None if absent/bad."""
    if header is None or len(header) > 1024:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def basic_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


@dataclass(frozen=True, slots=True)
class PileCredential:
    site: str
    hash: str


class PileCredentials:
    """The provisioned piles; :meth:`check` verifies a Basic-auth header for one of them."""

    def __init__(self, piles: dict[str, PileCredential] | None = None) -> None:
        self.piles: dict[str, PileCredential] = dict(piles or {})
        self._checks = asyncio.Semaphore(2)

    @classmethod
    def load(cls, path: Path) -> PileCredentials:
        """Raises ConfigError (naming ``ocpp.credentials_path``) for a missing or bad file."""
        key = "ocpp.credentials_path"
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ConfigError(f"{key}: {path} is too large to be a credentials file")
            raw = json.loads(path.read_text(encoding="utf-8"))
            piles = {}
            for pile, item in raw["piles"].items():
                validate_id(pile, "pile id")
                validate_id(item["site"], "site")
                if not str(item["hash"]).startswith(f"{_SCHEME}$"):
                    raise ValueError(f"pile {pile}: not a {_SCHEME} hash")
                piles[pile] = PileCredential(site=item["site"], hash=str(item["hash"]))
        except ConfigError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, TopicError) as exc:
            raise ConfigError(f"{key}: {path}: not a pile credentials file ({exc})") from exc
        return cls(piles)

    def add(self, pile: str, site: str, *, rotate: bool) -> str:
        """Create (or with ``rotate`` replace) a pile's password; returns it (shown once)."""
        try:
            validate_id(pile, "pile id")
            validate_id(site, "site")
        except TopicError as exc:
            raise ConfigError(str(exc)) from exc
        if pile in self.piles and not rotate:
            raise ConfigError(f"pile {pile} already has a password (use --rotate)")
        password = new_password()
        self.piles[pile] = PileCredential(site=site, hash=hash_password(password))
        return password

    def remove(self, pile: str) -> None:
        if self.piles.pop(pile, None) is None:
            raise ConfigError(f"no pile {pile!r}")

    def save(self, path: Path) -> None:
        """Write the file atomically, mode 0600."""
        text = json.dumps(
            {"piles": {p: {"site": c.site, "hash": c.hash} for p, c in sorted(self.piles.items())}},
            indent=1,
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def check(self, site: str, pile: str, authorization: str | None) -> bool:
        """True when the header names ``pile`` with its password and ``pile`` belongs to ``site``.

        Unknown piles are refused without hashing (pile ids are not secrets).
        """
        credential = self.piles.get(pile)
        given = basic_credentials(authorization)
        if credential is None or credential.site != site or given is None or given[0] != pile:
            return False
        async with self._checks:
            return await asyncio.to_thread(verify_password, given[1], credential.hash)


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS for security profile 2 (TLS 1.2 or newer; OCPP 1.6 security whitepaper section 2.3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ocpp.tls_cert/ocpp.tls_key: cannot load {cert}, {key}: {exc}") from exc
    return context


PILES_FILE = "ocpp-piles.json"


def pile_command(args: argparse.Namespace) -> int:
    """``lockerhub devices --broker-dir D add-pile|remove-pile``: edit ``D/ocpp-piles.json``.

    The new password is printed once (for the pile's AuthorizationKey) and kept nowhere.
    """
    path = Path(args.broker_dir) / PILES_FILE
    try:
        book = PileCredentials.load(path) if path.exists() else PileCredentials()
        if args.devices_command == "add-pile":
            secret = book.add(args.pile, args.site, rotate=args.rotate)
        else:
            book.remove(args.pile)
            secret = None
        book.save(path)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if secret is not None:
        print(f"pile: {args.pile}")
        print(f"password: {secret}")
    print(f"updated {path}: point ocpp.credentials_path at it and restart the hub")
    return 0
