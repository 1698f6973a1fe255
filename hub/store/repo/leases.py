"""Leases in the shared store: which hub does a job, so that several hubs do it once.

A lease is a row with a holder and an expiry (epoch ms on the holders' clocks, which are assumed
NTP-synchronised to well within a lease). Taking one is ONE conditional statement whose row count
says who won: two hubs racing run it one after the other (SQLite: the write lock; PostgreSQL: the
row lock, after which the loser re-evaluates the condition and changes nothing). A hub killed while
holding a lease simply stops renewing it; another hub takes it once it has expired.
"""

from __future__ import annotations

from hub.store import Tx


async def acquire(tx: Tx, name: str, holder: str, *, now_ms: int, ttl_ms: int) -> bool:
    """Take or renew the lease ``name`` for ``ttl_ms``; True when ``holder`` holds it now."""
    changed = await tx.execute(
        "INSERT INTO job_leases (name, holder, until_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms "
        "WHERE job_leases.holder = excluded.holder OR job_leases.until_ms <= ?",
        (name, holder, now_ms + ttl_ms, now_ms),
    )
    return changed == 1


async def release(tx: Tx, name: str, holder: str) -> None:
    """Give the lease up early (a clean shutdown), if ``holder`` still holds it."""
    await tx.execute(
        "UPDATE job_leases SET until_ms = 0 WHERE name = ? AND holder = ?", (name, holder)
    )


async def holder(tx: Tx, name: str, *, now_ms: int) -> str:
    """Who holds ``name`` now ("" = nobody)."""
    row = await tx.fetchone(
        "SELECT holder FROM job_leases WHERE name = ? AND until_ms > ?", (name, now_ms)
    )
    return "" if row is None else str(row["holder"])
