"""The notice outbox: recipient notices written with the change that causes them, sent later.

A pending row holds the plaintext pickup code (the only place it is stored) until it is
delivered or superseded; both erase it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class PendingNotice:
    row_id: int
    key: str
    parcel_id: str
    kind: str
    code: str
    phone: str
    site: str
    cabinet: str
    compartment: str
    deadline_ms: int
    attempts: int

    def __repr__(self) -> str:  # never the code or the phone in a log line
        return f"PendingNotice(key={self.key!r}, kind={self.kind!r})"


async def add(
    tx: Tx,
    *,
    key: str,
    parcel_id: str,
    kind: str,
    code: str,
    site: str,
    cabinet: str,
    compartment: str,
    deadline_ms: int,
    now_ms: int,
) -> None:
    await tx.execute(
        "INSERT INTO notice_outbox (key, parcel_id, kind, code, site, cabinet, compartment, "
        "deadline_ms, next_attempt_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, parcel_id, kind, code, site, cabinet, compartment, deadline_ms, now_ms, now_ms),
    )


async def due(tx: Tx, now_ms: int, limit: int) -> list[PendingNotice]:
    """Pending notices whose next attempt is due, oldest first (with the recipient's phone)."""
    rows = await tx.fetchall(
        "SELECT n.*, COALESCE(r.phone, '') AS phone FROM notice_outbox n "
        "LEFT JOIN recipient_contacts r ON r.parcel_id = n.parcel_id "
        "WHERE n.state = 'pending' AND n.next_attempt_ms <= ? ORDER BY n.id LIMIT ?",
        (now_ms, limit),
    )
    return [
        PendingNotice(
            r["id"],
            r["key"],
            r["parcel_id"],
            r["kind"],
            r["code"],
            r["phone"],
            r["site"],
            r["cabinet"],
            r["compartment"],
            r["deadline_ms"],
            r["attempts"],
        )
        for r in rows
    ]


async def claim(tx: Tx, row_id: int, holder: str, *, now_ms: int, until_ms: int) -> bool:
    """Take a due notice for sending until ``until_ms``; False when another hub has it (or it
    is no longer due). The claim is the row's next attempt time: a hub that dies while sending
    leaves the notice due again at ``until_ms``, for any hub."""
    changed = await tx.execute(
        "UPDATE notice_outbox SET claimed_by = ?, next_attempt_ms = ? "
        "WHERE id = ? AND state = 'pending' AND next_attempt_ms <= ?",
        (holder, until_ms, row_id, now_ms),
    )
    return changed == 1


async def reclaim(tx: Tx, holder: str, now_ms: int) -> int:
    """A hub restarted under the same id: its claims of notices not delivered are due now."""
    return await tx.execute(
        "UPDATE notice_outbox SET next_attempt_ms = ? "
        "WHERE claimed_by = ? AND state = 'pending' AND next_attempt_ms > ?",
        (now_ms, holder, now_ms),
    )


async def mark_delivered(tx: Tx, row_id: int, now_ms: int) -> None:
    """Delivered: the plaintext code is erased."""
    await tx.execute(
        "UPDATE notice_outbox SET state = 'delivered', code = '', delivered_ms = ?, "
        "last_error = '' WHERE id = ? AND state = 'pending'",
        (now_ms, row_id),
    )


async def mark_failed(tx: Tx, row_id: int, *, next_attempt_ms: int, error: str) -> None:
    await tx.execute(
        "UPDATE notice_outbox SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ? "
        "WHERE id = ? AND state = 'pending'",
        (next_attempt_ms, error[:200], row_id),
    )


async def supersede(tx: Tx, parcel_id: str) -> int:
    """Pending notices of a parcel whose code was replaced: never sent, code erased."""
    return await tx.execute(
        "UPDATE notice_outbox SET state = 'superseded', code = '' "
        "WHERE parcel_id = ? AND state = 'pending' AND kind != 'reminder'",
        (parcel_id,),
    )


async def pending(tx: Tx) -> int:
    row = await tx.fetchone("SELECT COUNT(*) FROM notice_outbox WHERE state = 'pending'")
    return 0 if row is None else int(row[0])
