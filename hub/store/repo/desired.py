"""Retained desired state bookkeeping: which device's state is pending, and who publishes it.

A hub publishes a device's state only while it holds the row's publish claim (``publishing_by``
until ``publishing_until_ms``), so two hubs never publish one device's state at once and the
retained message never goes back to an older version. A hub that finds its claim taken over when
it records its publish (it stalled past the claim: another hub may have published a newer state
before this one's older publish landed) bumps the version, so a newer state is published after.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class Pending:
    device: str
    site: str
    accept: str
    version: int


async def any_pending(tx: Tx) -> bool:
    """True when some device's state is ahead of what was published."""
    row = await tx.fetchone("SELECT 1 FROM desired_state WHERE published_version < version LIMIT 1")
    return row is not None


async def claim_pending(
    tx: Tx, holder: str, *, now_ms: int, until_ms: int, limit: int
) -> list[Pending]:
    """Claim up to ``limit`` devices whose state is ahead of what was published (not claimed by
    another hub); return them with the version to publish (read in the caller's transaction)."""
    rows = await tx.fetchall(
        "SELECT s.device, s.version, d.site, d.accept FROM desired_state s "
        "JOIN devices d ON d.id = s.device WHERE s.published_version < s.version "
        "AND (s.publishing_until_ms <= ? OR s.publishing_by = ?) "
        "ORDER BY s.updated_ms LIMIT ?",
        (now_ms, holder, limit),
    )
    claimed: list[Pending] = []
    for r in rows:
        won = await tx.execute(
            "UPDATE desired_state SET publishing_by = ?, publishing_until_ms = ? "
            "WHERE device = ? AND (publishing_until_ms <= ? OR publishing_by = ?)",
            (holder, until_ms, r["device"], now_ms, holder),
        )
        if won == 1:
            # Re-read after the claim: on PostgreSQL the claim may have waited for a newer commit.
            row = await tx.fetchone(
                "SELECT version FROM desired_state WHERE device = ?", (r["device"],)
            )
            version = int(row["version"]) if row is not None else int(r["version"])
            claimed.append(Pending(r["device"], r["site"], r["accept"], version))
    return claimed


async def record_published(
    tx: Tx, published: list[tuple[int, str]], holder: str, *, config_hash: str, now_ms: int
) -> int:
    """Record (version, device) pairs published under ``holder``'s claim; return how many had
    lost the claim (their version is bumped so that a newer state follows)."""
    lost = 0
    for version, device in published:
        changed = await tx.execute(
            "UPDATE desired_state SET published_version = CASE WHEN published_version > ? "
            "THEN published_version ELSE ? END, config_hash = ? "
            "WHERE device = ? AND publishing_by = ?",
            (version, version, config_hash, device, holder),
        )
        if changed != 1:
            lost += 1
            await tx.execute(
                "UPDATE desired_state SET version = version + 1, updated_ms = ? WHERE device = ?",
                (now_ms, device),
            )
    return lost


async def release(tx: Tx, devices: list[str], holder: str) -> None:
    """End ``holder``'s publish claims on ``devices`` (published or not)."""
    await tx.executemany(
        "UPDATE desired_state SET publishing_by = '', publishing_until_ms = 0 "
        "WHERE device = ? AND publishing_by = ?",
        [(device, holder) for device in devices],
    )


async def retained_version(tx: Tx, device: str) -> tuple[int, int]:
    """(version, published_version) of ``device`` (0, 0 when it has none)."""
    row = await tx.fetchone(
        "SELECT version, published_version FROM desired_state WHERE device = ?", (device,)
    )
    return (0, 0) if row is None else (int(row["version"]), int(row["published_version"]))


async def bump(tx: Tx, device: str, now_ms: int) -> None:
    """Raise ``device``'s desired-state version by one (the first version is 1)."""
    await tx.execute(
        "INSERT INTO desired_state (device, version, updated_ms) VALUES (?, 1, ?) "
        "ON CONFLICT(device) DO UPDATE SET version = desired_state.version + 1, "
        "updated_ms = excluded.updated_ms",
        (device, now_ms),
    )


async def bump_other_config(tx: Tx, config_hash: str, now_ms: int) -> None:
    """Raise the version of every device whose last state carried another config than
    ``config_hash``, and record ``config_hash`` as theirs."""
    await tx.execute(
        "UPDATE desired_state SET version = version + 1, config_hash = ?, updated_ms = ? "
        "WHERE config_hash != ?",
        (config_hash, now_ms, config_hash),
    )
