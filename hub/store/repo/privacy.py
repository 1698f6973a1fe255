"""Personal data: locker consent, the retention purge of phone numbers, the audit of reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class DataRead:
    """One audited read of a full phone number."""

    id: int
    ts_ms: int
    actor: str
    parcel_id: str
    purpose: str


async def set_consents(tx: Tx, consents: Iterable[tuple[str, str]]) -> None:
    """Record each (consent, parcel id) pair given at announce, in one batch."""
    await tx.executemany("UPDATE parcels SET locker_consent = ? WHERE id = ?", consents)


async def due_purges(tx: Tx, states: Iterable[str], closed_before_ms: int, limit: int) -> list[str]:
    """Parcels in one of ``states`` since before ``closed_before_ms`` whose contact is kept."""
    wanted = sorted(states)
    marks = ",".join("?" * len(wanted))
    rows = await tx.fetchall(
        f"SELECT id FROM parcels WHERE pii_purged_ms = 0 AND state IN ({marks}) "  # noqa: S608
        "AND updated_ms <= ? ORDER BY updated_ms LIMIT ?",
        (*wanted, closed_before_ms, limit),
    )
    return [str(r["id"]) for r in rows]


async def purge(tx: Tx, parcel_id: str, now_ms: int) -> None:
    """Erase everything personal about a closed parcel's recipient: the full number, its masked
    form, the pickup code's hash, plaintext codes and errors of its notices."""
    await tx.execute("DELETE FROM recipient_contacts WHERE parcel_id = ?", (parcel_id,))
    await tx.execute("DELETE FROM pickup_codes WHERE parcel_id = ?", (parcel_id,))
    await tx.execute(
        "UPDATE notice_outbox SET code = '', last_error = '', "
        "state = CASE WHEN state = 'pending' THEN 'purged' ELSE state END WHERE parcel_id = ?",
        (parcel_id,),
    )
    await tx.execute(
        "UPDATE parcels SET phone_masked = '', pii_purged_ms = ? WHERE id = ?",
        (now_ms, parcel_id),
    )


async def record_read(tx: Tx, *, ts_ms: int, actor: str, parcel_id: str, purpose: str) -> None:
    await tx.execute(
        "INSERT INTO personal_data_reads (ts_ms, actor, parcel_id, purpose) VALUES (?, ?, ?, ?)",
        (ts_ms, actor, parcel_id, purpose),
    )


async def reads(tx: Tx, *, parcel_id: str, after_id: int, limit: int) -> list[DataRead]:
    """Audited reads after ``after_id`` (optionally of one parcel), oldest first."""
    if parcel_id:
        rows = await tx.fetchall(
            "SELECT * FROM personal_data_reads WHERE id > ? AND parcel_id = ? ORDER BY id LIMIT ?",
            (after_id, parcel_id, limit),
        )
    else:
        rows = await tx.fetchall(
            "SELECT * FROM personal_data_reads WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
    return [DataRead(r["id"], r["ts_ms"], r["actor"], r["parcel_id"], r["purpose"]) for r in rows]
