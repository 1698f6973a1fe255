"""The command table: queued -> sent -> succeeded / failed / expired / timed_out."""

from __future__ import annotations

from hub.models import CommandRecord, CommandState
from hub.store import Tx


async def insert_command(
    tx: Tx,
    *,
    command_id: str,
    device_id: str,
    type_: str,
    body: bytes,
    actor: str,
    created_ms: int,
    expires_ms: int,
) -> None:
    await tx.execute(
        "INSERT INTO commands (id, device, type, body, actor, state, created_ms, expires_ms) "
        "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
        (command_id, device_id, type_, body, actor, created_ms, expires_ms),
    )


async def insert_commands(tx: Tx, rows: list[tuple[str, str, str, bytes, str, int, int]]) -> None:
    """Bulk :func:`insert_command`: (id, device, type, body, actor, created_ms, expires_ms)."""
    await tx.insert_many(
        "commands",
        ("id", "device", "type", "body", "actor", "state", "created_ms", "expires_ms"),
        [(c, d, t, b, a, "queued", created, expires) for c, d, t, b, a, created, expires in rows],
    )


async def mark_sent(tx: Tx, command_id: str, now_ms: int) -> None:
    await tx.execute(
        "UPDATE commands SET state = 'sent', sent_ms = ? WHERE id = ? AND state = 'queued'",
        (now_ms, command_id),
    )


async def mark_sent_many(tx: Tx, command_ids: list[str], now_ms: int) -> None:
    await tx.executemany(
        "UPDATE commands SET state = 'sent', sent_ms = ? WHERE id = ? AND state = 'queued'",
        [(now_ms, command_id) for command_id in command_ids],
    )


async def get_command(tx: Tx, command_id: str) -> CommandRecord | None:
    row = await tx.fetchone("SELECT * FROM commands WHERE id = ?", (command_id,))
    if row is None:
        return None
    return CommandRecord(
        command_id=row["id"],
        device_id=row["device"],
        type=row["type"],
        state=CommandState(row["state"]),
        outcome=row["outcome"],
        relay_fired=bool(row["relay_fired"]),
        detail=row["detail"],
        expires_ms=row["expires_ms"],
        sent_ms=row["sent_ms"],
    )


_COMPLETE = (
    "UPDATE commands SET state = ?, outcome = ?, relay_fired = ?, detail = ?, completed_ms = ? "
    "WHERE id = ? AND state IN "
)
_COMPLETE_OPEN = _COMPLETE + "('queued', 'sent')"
_COMPLETE_ANY = _COMPLETE + "('queued', 'sent', 'expired', 'timed_out')"


async def complete(
    tx: Tx,
    command_id: str,
    *,
    state: CommandState,
    outcome: str,
    relay_fired: bool,
    detail: str,
    now_ms: int,
    only_open: bool,
) -> bool:
    """Record a final state. ``only_open`` limits it to queued/sent rows (hub-side timeouts);
    otherwise a device's late result may also replace an expired/timed_out verdict."""
    changed = await tx.execute(
        _COMPLETE_OPEN if only_open else _COMPLETE_ANY,
        (str(state), outcome, int(relay_fired), detail, now_ms, command_id),
    )
    return changed == 1


async def expire_due(tx: Tx, cutoff_ms: int, now_ms: int) -> int:
    """Mark open commands whose expiry is before ``cutoff_ms`` as expired; return how many."""
    return await tx.execute(
        "UPDATE commands SET state = 'expired', outcome = 'expired', completed_ms = ? "
        "WHERE state IN ('queued', 'sent') AND expires_ms < ?",
        (now_ms, cutoff_ms),
    )


async def queued(tx: Tx, now_ms: int, limit: int = 1000) -> list[tuple[str, str, bytes, int]]:
    """Unexpired commands never published: (id, device, body, expires_ms)."""
    rows = await tx.fetchall(
        "SELECT id, device, body, expires_ms FROM commands WHERE state = 'queued' "
        "AND expires_ms > ? ORDER BY created_ms LIMIT ?",
        (now_ms, limit),
    )
    return [(r["id"], r["device"], bytes(r["body"]), r["expires_ms"]) for r in rows]
