"""Couriers at the cabinet: who may deposit, checked offline from the retained desired state.

A courier signs in before scanning parcels, with either

- the app token (a QR code the scanner reads, ``LHC1.…``): its Ed25519 signature is checked
  with the hub's public key from the desired state, its expiry on the cabinet's clock, and its
  nonce against the nonces already used (a replay is refused; used nonces are kept, persisted,
  until their token expires); or
- a keypad entry ``*<courier id>*<code>``: the code is checked against the salted PBKDF2 hash
  in the desired state (never the code itself).

Either way the courier must be listed in the desired state (active at the hub) and not on its
bad-conduct list. Wrong credentials count on the cabinet's keypad counter, so repeated failures
lock credential entry out like wrong pickup codes do. A signed-in courier may, for
``session_ms``, open only reservations of parcels of the courier's own carrier; the deposit
event then names the courier. The check needs no hub: it reads the desired state the cabinet
keeps on disk.

While the applied desired state lists no courier (a hub that does not manage couriers), a scan
alone opens a reservation, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from lockerhub import courier_token
from lockerhub.errors import ContractError
from lockerhub.v1 import device_pb2

TOKEN_PREFIX = courier_token.PREFIX + "."
CODE_PREFIX = "*"
_MAX_NONCES = 10_000
_MAX_ITERATIONS = 1_000_000


@dataclass(frozen=True, slots=True)
class CourierSession:
    courier_id: str
    carrier_id: str
    until_ms: int


def is_credential(text: str, *, keypad: bool) -> bool:
    """A keypad entry or scan meant as a courier sign-in (not a pickup code or a parcel label)."""
    return text.startswith(CODE_PREFIX) if keypad else text.startswith(TOKEN_PREFIX)


def required(desired: device_pb2.DesiredState | None) -> bool:
    """Deposits need a signed-in courier when the hub sent a courier list."""
    return desired is not None and len(desired.couriers) > 0


def check_allowed(
    desired: device_pb2.DesiredState, courier_id: str
) -> device_pb2.CourierCredential:
    """The courier's credential when listed and not barred.

    Raises:
        ContractError: barred or not listed (suspended, barred, unknown).
    """
    if courier_id in desired.barred_couriers:
        raise ContractError("courier is on the bad-conduct list")
    for cred in desired.couriers:
        if cred.courier_id == courier_id:
            return cred
    raise ContractError("courier not active at this cabinet")


def check_code(entry: str, desired: device_pb2.DesiredState) -> device_pb2.CourierCredential:
    """The credential of a ``*<courier>*<code>`` entry (runs PBKDF2: call it off the loop).

    Raises:
        ContractError: malformed, unknown, barred or wrong code.
    """
    parts = entry.split(CODE_PREFIX)
    if len(entry) > 100 or len(parts) != 3 or parts[0] or not parts[2].isdigit():
        raise ContractError("malformed courier entry")
    cred = check_allowed(desired, parts[1])
    if not cred.code_hash or not 1 <= cred.code_iterations <= _MAX_ITERATIONS:
        raise ContractError("courier has no code")
    digest = hashlib.pbkdf2_hmac("sha256", parts[2].encode(), cred.code_salt, cred.code_iterations)
    if not hmac.compare_digest(digest, cred.code_hash):
        raise ContractError("wrong courier code")
    return cred


class NonceBook:
    """Nonces of courier tokens already used, each kept until its token expires."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def use(self, nonce: str, expires_ms: int, now_ms: int) -> bool:
        """False when ``nonce`` was used before (a replay); else remember it."""
        self._seen = {n: e for n, e in self._seen.items() if e > now_ms}
        if nonce in self._seen:
            return False
        if len(self._seen) >= _MAX_NONCES:  # a flood of valid tokens: forget the oldest
            oldest = min(self._seen, key=self._seen.__getitem__)
            del self._seen[oldest]
        self._seen[nonce] = expires_ms
        return True

    def to_blob(self) -> bytes:
        return json.dumps(self._seen, sort_keys=True).encode()

    def load_blob(self, raw: bytes) -> None:
        try:
            saved = json.loads(raw)
        except ValueError:
            return
        if isinstance(saved, dict):
            self._seen = {
                str(n): int(e) for n, e in saved.items() if isinstance(e, int) and len(n) <= 64
            }


def check_token(
    token: str, desired: device_pb2.DesiredState, nonces: NonceBook, now_ms: int
) -> device_pb2.CourierCredential:
    """The credential of a valid, unused app token (its nonce is then used up).

    Raises:
        ContractError: forged, expired, replayed, unknown, barred or another carrier's claim.
    """
    if not desired.courier_token_key:
        raise ContractError("this cabinet has no courier token key")
    claims = courier_token.verify(token, desired.courier_token_key, now_ms)
    cred = check_allowed(desired, claims.courier_id)
    if cred.carrier_id != claims.carrier_id:
        raise ContractError("token carrier does not match the courier's")
    if not nonces.use(claims.nonce, claims.expires_ms, now_ms):
        raise ContractError("courier token replayed")
    return cred


def parcel_carrier(desired: device_pb2.DesiredState | None, parcel_id: str) -> str | None:
    """The carrier of a reserved parcel as the desired state says (None: not in it)."""
    if desired is None:
        return None
    for r in desired.reservations:
        if r.parcel_id == parcel_id:
            return r.carrier_id
    return None
