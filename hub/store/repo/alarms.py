"""Alarms: raised -> acknowledged -> cleared (cleared from either), one open row per condition."""

from __future__ import annotations

from hub.models import AlarmRecord
from hub.store import Row, Tx
from hub.store.repo import ROWS_PER_STATEMENT

OPEN = ("raised", "acknowledged")


def _alarm(r: Row) -> AlarmRecord:
    return AlarmRecord(
        alarm_id=r["id"],
        kind=r["kind"],
        site=r["site"],
        device_id=r["device"],
        compartment_id=r["compartment"],
        detail=r["detail"],
        raised_ms=r["received_ms"],
        status=r["status"],
        acknowledged_by=r["acknowledged_by"],
    )


async def find_open(tx: Tx, device: str, kind: str, compartment: str) -> AlarmRecord | None:
    row = await tx.fetchone(
        "SELECT * FROM alarms WHERE device = ? AND kind = ? AND compartment = ? "
        "AND status IN ('raised', 'acknowledged') ORDER BY id DESC LIMIT 1",
        (device, kind, compartment),
    )
    return None if row is None else _alarm(row)


async def insert(
    tx: Tx,
    *,
    site: str,
    device: str,
    kind: str,
    compartment: str,
    detail: str,
    device_ts_ms: int,
    now_ms: int,
) -> int:
    row = await tx.fetchone(
        "INSERT INTO alarms (device, kind, compartment, detail, active, device_ts_ms, "
        "received_ms, site, status, updated_ms) VALUES (?, ?, ?, ?, 1, ?, ?, ?, 'raised', ?) "
        "RETURNING id",
        (device, kind, compartment, detail, device_ts_ms, now_ms, site, now_ms),
    )
    assert row is not None
    return int(row["id"])


async def set_detail(tx: Tx, alarm_id: int, detail: str, now_ms: int) -> None:
    await tx.execute(
        "UPDATE alarms SET detail = ?, updated_ms = ? WHERE id = ?", (detail, now_ms, alarm_id)
    )


async def set_status(tx: Tx, alarm_id: int, status: str, now_ms: int, *, by: str = "") -> None:
    if status == "acknowledged":
        await tx.execute(
            "UPDATE alarms SET status = ?, acknowledged_by = ?, updated_ms = ? WHERE id = ?",
            (status, by, now_ms, alarm_id),
        )
    else:
        await tx.execute(
            "UPDATE alarms SET status = ?, active = ?, updated_ms = ? WHERE id = ?",
            (status, int(status != "cleared"), now_ms, alarm_id),
        )


async def get(tx: Tx, alarm_id: int) -> AlarmRecord | None:
    row = await tx.fetchone("SELECT * FROM alarms WHERE id = ?", (alarm_id,))
    return None if row is None else _alarm(row)


async def list_alarms(tx: Tx, *, site: str, include_cleared: bool, limit: int) -> list[AlarmRecord]:
    clauses, params = ["1 = 1"], []
    if site:
        clauses.append("site = ?")
        params.append(site)
    if not include_cleared:
        clauses.append("status != 'cleared'")
    rows = await tx.fetchall(
        f"SELECT * FROM alarms WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed clauses
        [*params, limit],
    )
    return [_alarm(r) for r in rows]


async def devices_with_open(tx: Tx, devices: list[str], kind: str) -> set[str]:
    """Which of ``devices`` have an open device-wide alarm of ``kind`` (no compartment)."""
    found: set[str] = set()
    for start in range(0, len(devices), ROWS_PER_STATEMENT):
        chunk = devices[start : start + ROWS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetchall(
            "SELECT DISTINCT device FROM alarms WHERE kind = ? AND compartment = '' "  # noqa: S608
            f"AND status IN ('raised', 'acknowledged') AND device IN ({marks})",
            [kind, *chunk],
        )
        found.update(r[0] for r in rows)
    return found
