"""Pickup codes: generated once by the hub, stored (hub and cabinet) only as salted hashes.

Encoded hash format: ``pbkdf2_sha256$<iterations>$<salt hex>$<digest hex>`` so the cost factor can
grow without breaking codes already issued.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from lockerhub.errors import ContractError

_SCHEME = "pbkdf2_sha256"
# Cheap enough for a cabinet board to try every live code of the cabinet on one keypad entry;
# brute force is stopped by the keypad lockout, not by the hash cost.
DEFAULT_ITERATIONS = 5_000
MIN_DIGITS, MAX_DIGITS = 6, 8


def generate_code(digits: int = 6) -> str:
    """A random numeric pickup code of ``digits`` digits (6-8), from a CSPRNG."""
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ContractError(f"pickup codes have {MIN_DIGITS}-{MAX_DIGITS} digits, not {digits}")
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def hash_code(code: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """Salted PBKDF2 hash of ``code`` in the encoded format above."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify_code(code: str, encoded: str) -> bool:
    """True when ``code`` matches ``encoded``; False for a wrong code or a malformed hash."""
    try:
        scheme, iters, salt_hex, digest_hex = encoded.split("$")
        iterations = int(iters)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != _SCHEME or not 1 <= iterations <= 10_000_000 or not code.isdigit():
        return False
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)
