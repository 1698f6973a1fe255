"""Courier app tokens: short-lived, Ed25519-signed by the hub, verified offline by cabinets.

Format (what the courier's app shows as a QR code)::

    LHC1.<base64url(payload JSON)>.<base64url(64-byte Ed25519 signature of the payload bytes)>

payload: ``{"c": courier id, "k": carrier id, "e": expiry epoch ms, "n": 16-byte nonce hex}``.
The cabinet checks the signature with the hub's public key from its desired state, the expiry on
its own clock, and refuses a nonce it has seen (replay). The private key never leaves the hub.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lockerhub.errors import ContractError

PREFIX = "LHC1"
MAX_TOKEN_CHARS = 512
_ID_MAX = 64


@dataclass(frozen=True, slots=True)
class CourierClaims:
    courier_id: str
    carrier_id: str
    expires_ms: int
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: Ed25519PrivateKey, courier_id: str, carrier_id: str, expires_ms: int) -> str:
    """A new token for ``courier_id`` (a fresh random nonce each time)."""
    payload = json.dumps(
        {"c": courier_id, "k": carrier_id, "e": expires_ms, "n": secrets.token_hex(16)},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return f"{PREFIX}.{_b64(payload)}.{_b64(key.sign(payload))}"


def verify(token: str, public_key: bytes, now_ms: int) -> CourierClaims:
    """The claims of a well-formed, correctly signed, unexpired token.

    Raises:
        ContractError: malformed, oversized, wrong signature or key, or expired (the message says
            which, never echoing the token).
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise ContractError("courier token: too long")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise ContractError("courier token: not a courier token")
    try:
        payload, signature = _unb64(parts[1]), _unb64(parts[2])
        key = Ed25519PublicKey.from_public_bytes(public_key)
    except (ValueError, binascii.Error) as exc:
        raise ContractError("courier token: malformed") from exc
    if _b64(payload) != parts[1] or _b64(signature) != parts[2]:
        raise ContractError("courier token: malformed")  # one spelling per token, no variants
    try:
        key.verify(signature, payload)
    except InvalidSignature as exc:
        raise ContractError("courier token: bad signature") from exc
    try:
        raw = json.loads(payload)
        claims = CourierClaims(str(raw["c"]), str(raw["k"]), int(raw["e"]), str(raw["n"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ContractError("courier token: malformed claims") from exc
    if not (0 < len(claims.courier_id) <= _ID_MAX and 16 <= len(claims.nonce) <= 64):
        raise ContractError("courier token: malformed claims")
    if claims.expires_ms <= now_ms:
        raise ContractError("courier token: expired")
    return claims
