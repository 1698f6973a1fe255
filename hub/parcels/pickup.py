"""Pickup codes: generated per deposit, hashed off the event loop; only the hash is kept."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hub.settings import PickupSettings
from lockerhub.codes import generate_code, hash_code


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    code_hash: str

    def __repr__(self) -> str:  # the plaintext never reaches a log line
        return "IssuedCode(code=<hidden>)"


async def issue_code(settings: PickupSettings) -> IssuedCode:
    """A fresh code and its salted hash (PBKDF2 runs in a thread: it is deliberately slow)."""
    code = generate_code(settings.code_digits)
    digest = await asyncio.to_thread(hash_code, code, iterations=settings.hash_iterations)
    return IssuedCode(code, digest)
