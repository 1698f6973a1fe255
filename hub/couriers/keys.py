"""The hub's Ed25519 key that signs courier app tokens: a PEM file, 0600, created when missing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.errors import ConfigError
from lockerhub.files import FILE_MODE, private_dir


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``; a new one written there (0600) when the file does not exist.

    Raises:
        ConfigError: the file is readable by group or others, unreadable, or not an Ed25519 key.
    """
    if not path.exists():
        private_dir(path.parent)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, pem)
        finally:
            os.close(fd)
        return key
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"couriers.token_key: cannot read {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(
            f"couriers.token_key: {path} is mode {mode:o}; it must be readable by the hub only "
            "(chmod 600)"
        )
    try:
        loaded = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"couriers.token_key: {path} is not a PEM private key") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"couriers.token_key: {path} is not an Ed25519 key")
    return loaded


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key cabinets get in their desired state."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
