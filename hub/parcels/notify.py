"""Recipient notification: the one place a plaintext pickup code leaves the hub.

:class:`FileNotifier` stands in for the SMS gateway. It appends one JSON object per line to a file::

    {"parcel_id": "P1", "phone_masked": "138****1234", "code": "483920", "site": "S1",
     "cabinet": "CAB-1", "compartment": "A03", "deadline_ms": 1800172800000,
     "kind": "deposited", "key": "deposited-9f1c..."}

A reminder before the deadline has ``"kind": "reminder"`` and an empty code (the hub keeps only
the code's hash); a code an operator replaced comes with ``"kind": "reissued"``. Notices are
delivered by the outbox (:mod:`hub.parcels.outbox`) at least once: ``key`` tells repeats apart.

The full phone number is passed to :meth:`Notifier.notify` (a real gateway needs it) but the file
keeps only the masked form.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hub.parcels.phones import mask_phone
from lockerhub.files import open_private_append


@dataclass(frozen=True, slots=True)
class PickupNotice:
    """What a recipient is told once their parcel is deposited."""

    parcel_id: str
    phone: str
    code: str
    site: str
    cabinet: str
    compartment: str
    deadline_ms: int
    # "deposited" or "reissued" (carry the code), or "reminder" (deadline near; no code: only
    # its hash is kept).
    kind: str = "deposited"
    # The notice's idempotency key: delivery is at least once, so a gateway may see a key again
    # (after a crash between its answer and the outbox's commit) and must send it once.
    key: str = ""

    def __repr__(self) -> str:  # never let the code or phone reach a log line by accident
        return f"PickupNotice(parcel_id={self.parcel_id!r}, phone={mask_phone(self.phone)!r})"


class Notifier(Protocol):
    """Delivers a pickup notice to the recipient; raising means it was not delivered."""

    async def notify(self, notice: PickupNotice) -> None: ...


class FileNotifier:
    """Appends each notice as a JSON line to ``path`` (written off the event loop)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()

    async def notify(self, notice: PickupNotice) -> None:
        line = json.dumps(
            {
                "parcel_id": notice.parcel_id,
                "phone_masked": mask_phone(notice.phone),
                "code": notice.code,
                "site": notice.site,
                "cabinet": notice.cabinet,
                "compartment": notice.compartment,
                "deadline_ms": notice.deadline_ms,
                "kind": notice.kind,
                "key": notice.key,
            }
        )
        async with self._lock:  # keep lines whole when notices overlap
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with open_private_append(self._path) as f:  # 0600: lines hold plaintext pickup codes
            f.write(line + "\n")
