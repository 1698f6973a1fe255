"""Local SQLite state: boot counter, event seq, compartments, outbox, resend window, commands.

WAL with synchronous=FULL: a business event or a command result is on disk before anyone is told
about it (domain notes: store a result before publishing it). Every call runs off the event loop on
aiosqlite's thread; a lock keeps each multi-statement transaction whole.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from edge.cabinet import CompartmentRecord
from edge.errors import ResendWindowError, StorageError
from lockerhub.states import CompartmentState
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2

# Each entry migrates the schema from version i to i + 1 (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta (key, value) VALUES ('boot_count', 0), ('last_seq', 0);
    CREATE TABLE compartments (
        compartment_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        parcel_id TEXT,
        reserved_until_ms INTEGER,
        code_hash TEXT,
        code_deadline_ms INTEGER
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        seq INTEGER,
        business INTEGER NOT NULL,
        payload BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE commands (
        command_id TEXT PRIMARY KEY,
        received_ms INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('started', 'done')),
        result BLOB
    );
    CREATE INDEX commands_received ON commands (received_ms);
    """,
    # v2 (issue 4): disabled flag and last local transition per compartment, outbox sizes for the
    # byte bound, the window of acknowledged events kept for ResendEvents, small typed blobs.
    """
    ALTER TABLE compartments ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE compartments ADD COLUMN local_ms INTEGER;
    ALTER TABLE outbox ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    UPDATE outbox SET size = length(payload);
    CREATE TABLE sent (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    INSERT INTO meta (key, value) VALUES ('outbox_full', 0), ('outbox_full_total', 0);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# Once full, the outbox reports full until it drains below this share of its bound (hysteresis).
FULL_CLEAR_RATIO = 0.9


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A message waiting for the broker's acknowledgement."""

    id: int
    kind: Kind
    seq: int | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command id the agent has seen: ``result`` is None while (or if a crash left it) started."""

    command_id: str
    result: device_pb2.CommandResult | None


class Store:
    """The agent's SQLite database; an async context manager.

    Args:
        path: database file (created with its directory).
        outbox_max: outbox bound in entries, and ``outbox_max_bytes`` in payload bytes. At the
            bound the oldest non-business entries (telemetry, then command results) are shed;
            business events never are: the outbox grows past the bound and ``outbox_full`` says
            so until it drains below ``FULL_CLEAR_RATIO`` of the bound.
        resend_window: acknowledged events kept for ResendEvents.
    """

    def __init__(
        self,
        path: Path,
        *,
        outbox_max: int = 100_000,
        outbox_max_bytes: int = 64 * 1024 * 1024,
        resend_window: int = 10_000,
    ) -> None:
        self._path = path
        self._outbox_max = outbox_max
        self._outbox_max_bytes = outbox_max_bytes
        self._resend_window = resend_window
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._depth = 0
        self._bytes = 0
        self.outbox_overflow = 0
        self.outbox_full = False
        # Times the outbox reached its bound (persisted: a counter an operator can trust).
        self.outbox_full_total = 0

    async def __aenter__(self) -> Self:
        try:
            await asyncio.to_thread(self._path.parent.mkdir, parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self._path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {self._path}: {exc}") from exc
        try:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=FULL")
            await self._db.execute("PRAGMA foreign_keys=ON")
            await self._migrate()
            self._depth = await self._scalar("SELECT COUNT(*) FROM outbox")
            self._bytes = await self._scalar("SELECT COALESCE(SUM(size), 0) FROM outbox")
            self.outbox_full = bool(await self._meta("outbox_full"))
            self.outbox_full_total = await self._meta("outbox_full_total")
        except BaseException:
            await self._db.close()
            self._db = None
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            try:
                await db.close()
            except sqlite3.Error as err:
                raise StorageError(f"cannot close database: {err}") from err

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError("store is not open")
        return self._db

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"database write failed: {exc}") from exc

    async def _scalar(self, sql: str, params: Sequence[object] = ()) -> int:
        try:
            async with self.db.execute(sql, params) as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def _migrate(self) -> None:
        version = await self._scalar("PRAGMA user_version")
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"database {self._path} has schema v{version}, newer than this agent's "
                f"v{SCHEMA_VERSION}"
            )
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            async with self._transaction() as db:
                for statement in filter(str.strip, script.split(";")):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {target}")

    # -- meta ------------------------------------------------------------------------------

    async def next_boot(self) -> int:
        """Increment and return the persisted boot counter (one per agent start)."""
        async with self._transaction() as db:
            await db.execute("UPDATE meta SET value = value + 1 WHERE key = 'boot_count'")
        return await self._scalar("SELECT value FROM meta WHERE key = 'boot_count'")

    async def last_seq(self) -> int:
        """The last event sequence number assigned (0 before the first event)."""
        return await self._meta("last_seq")

    async def _meta(self, key: str) -> int:
        return await self._scalar("SELECT value FROM meta WHERE key = ?", (key,))

    async def get_blob(self, key: str) -> bytes | None:
        """A small persisted value (desired state, config overlay, keypad counters)."""
        try:
            async with self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        return None if row is None else bytes(row[0])

    async def put_blob(self, key: str, value: bytes) -> None:
        """Durably store a small value under ``key``."""
        async with self._transaction() as db:
            await _put(db, key, value)

    # -- compartments ----------------------------------------------------------------------

    async def load_compartments(self, ids: Iterable[str]) -> dict[str, CompartmentRecord]:
        """Records of ``ids`` (new compartments start free); unknown stored ids are ignored."""
        wanted = list(ids)
        try:
            async with self.db.execute(
                "SELECT compartment_id, state, parcel_id, reserved_until_ms, code_hash, "
                "code_deadline_ms, disabled, local_ms FROM compartments"
            ) as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        stored = {
            row[0]: CompartmentRecord(
                compartment_id=row[0],
                state=CompartmentState(row[1]),
                parcel_id=row[2],
                reserved_until_ms=row[3],
                code_hash=row[4],
                code_deadline_ms=row[5],
                disabled=bool(row[6]),
                local_ms=row[7],
            )
            for row in rows
        }
        return {cid: stored.get(cid, CompartmentRecord(compartment_id=cid)) for cid in wanted}

    # -- commands --------------------------------------------------------------------------

    async def command(self, command_id: str) -> CommandRecord | None:
        """The stored record of ``command_id``, or None if it was never seen."""
        try:
            async with self.db.execute(
                "SELECT result FROM commands WHERE command_id = ?", (command_id,)
            ) as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        if row is None:
            return None
        result = None
        if row[0] is not None:
            result = device_pb2.CommandResult()
            result.ParseFromString(row[0])
        return CommandRecord(command_id, result)

    async def begin_command(self, command_id: str, now_ms: int) -> None:
        """Durably mark ``command_id`` started, before any side effect (crash: never re-run)."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO commands (command_id, received_ms, state) VALUES (?, ?, 'started')",
                (command_id, now_ms),
            )

    async def interrupted_commands(self) -> list[str]:
        """Ids of commands a crash left started (never re-run; reported as INTERRUPTED)."""
        try:
            async with self.db.execute(
                "SELECT command_id FROM commands WHERE state = 'started' ORDER BY received_ms"
            ) as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        return [str(r[0]) for r in rows]

    async def prune_commands(self, before_ms: int) -> None:
        """Forget finished commands received before ``before_ms`` (far beyond any expiry)."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM commands WHERE state = 'done' AND received_ms < ?", (before_ms,)
            )

    # -- the one write path for business state ---------------------------------------------

    async def commit(
        self,
        *,
        now_ms: int,
        compartments: Iterable[CompartmentRecord] = (),
        events: Iterable[device_pb2.DeviceEvent] = (),
        results: Iterable[device_pb2.CommandResult] = (),
        blobs: Iterable[tuple[str, bytes]] = (),
    ) -> list[OutboxEntry]:
        """Atomically save compartment records and blobs, append events and results to the outbox.

        Each event gets a fresh ``event_id`` (uuid4), the next ``seq`` and ``ts_ms`` if unset.
        Command results are also recorded as the command's stored result (duplicates re-use it).
        When this commit makes the outbox reach its bound, an OUTBOX_FULL alarm is appended in the
        same transaction; when it has drained, the clearing alarm is appended by ``outbox_ack``.

        Returns:
            The new outbox entries, in publish order.
        """
        entries: list[OutboxEntry] = []
        async with self._transaction() as db:
            for rec in compartments:
                await db.execute(
                    "INSERT OR REPLACE INTO compartments (compartment_id, state, parcel_id, "
                    "reserved_until_ms, code_hash, code_deadline_ms, disabled, local_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rec.compartment_id,
                        rec.state.value,
                        rec.parcel_id,
                        rec.reserved_until_ms,
                        rec.code_hash,
                        rec.code_deadline_ms,
                        int(rec.disabled),
                        rec.local_ms,
                    ),
                )
            for key, value in blobs:
                await _put(db, key, value)
            for event in events:
                entries.append(await self._append_event(db, event, now_ms))
            for result in results:
                payload = result.SerializeToString(deterministic=True)
                await db.execute(
                    "INSERT INTO commands (command_id, received_ms, state, result) "
                    "VALUES (?, ?, 'done', ?) ON CONFLICT (command_id) DO UPDATE "
                    "SET state = 'done', result = excluded.result",
                    (result.command_id, now_ms, payload),
                )
                entries.append(await self._append(db, Kind.COMMAND_RESULT, None, result, now_ms))
            entries.extend(await self._enforce_bound(db, now_ms))
        return entries

    async def _append_event(
        self, db: aiosqlite.Connection, event: device_pb2.DeviceEvent, now_ms: int
    ) -> OutboxEntry:
        await db.execute("UPDATE meta SET value = value + 1 WHERE key = 'last_seq'")
        async with db.execute("SELECT value FROM meta WHERE key = 'last_seq'") as cur:
            row = await cur.fetchone()
        assert row is not None
        event.seq = int(row[0])
        event.event_id = str(uuid.uuid4())
        if not event.ts_ms:
            event.ts_ms = now_ms
        return await self._append(db, Kind.EVENT, event.seq, event, now_ms)

    async def _append(
        self,
        db: aiosqlite.Connection,
        kind: Kind,
        seq: int | None,
        message: device_pb2.DeviceEvent | device_pb2.CommandResult,
        now_ms: int,
    ) -> OutboxEntry:
        return await self._append_raw(
            db, kind, seq, message.SerializeToString(deterministic=True), now_ms
        )

    async def _append_raw(
        self, db: aiosqlite.Connection, kind: Kind, seq: int | None, payload: bytes, now_ms: int
    ) -> OutboxEntry:
        cur = await db.execute(
            "INSERT INTO outbox (kind, seq, business, payload, created_ms, size) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind.value, seq, int(kind is Kind.EVENT), payload, now_ms, len(payload)),
        )
        assert cur.lastrowid is not None
        self._depth += 1
        self._bytes += len(payload)
        return OutboxEntry(cur.lastrowid, kind, seq, payload)

    def _over(self, ratio: float = 1.0) -> bool:
        return (
            self._depth >= self._outbox_max * ratio or self._bytes >= self._outbox_max_bytes * ratio
        )

    async def _enforce_bound(self, db: aiosqlite.Connection, now_ms: int) -> list[OutboxEntry]:
        """Shed non-business entries above the bound; raise the OUTBOX_FULL flag and alarm."""
        while self._over():
            # Telemetry first (a newer sample supersedes it), then the oldest command results
            # (the hub times commands out anyway). Business events are never dropped.
            async with db.execute(
                "SELECT id, size FROM outbox WHERE business = 0 "
                "ORDER BY kind = 'telemetry' DESC, id LIMIT 64"
            ) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                break
            for row_id, size in rows:
                if not self._over():
                    break
                await db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                self._depth -= 1
                self._bytes -= int(size)
                self.outbox_overflow += 1
        if not self._over() or self.outbox_full:
            return []
        self.outbox_full = True
        self.outbox_full_total += 1
        await db.execute("UPDATE meta SET value = 1 WHERE key = 'outbox_full'")
        await db.execute("UPDATE meta SET value = value + 1 WHERE key = 'outbox_full_total'")
        alarm = device_pb2.DeviceEvent(
            alarm=device_pb2.AlarmRaised(
                kind=common_pb2.ALARM_KIND_OUTBOX_FULL,
                detail=f"outbox at its bound ({self._depth} entries, {self._bytes} bytes); "
                "events kept, telemetry coalesced",
                active=True,
            )
        )
        return [await self._append_event(db, alarm, now_ms)]

    async def coalesce_telemetry(self, payload: bytes, now_ms: int) -> None:
        """Keep ``payload`` as the only telemetry sample waiting (each supersedes the last)."""
        async with self._transaction() as db:
            cur = await db.execute("DELETE FROM outbox WHERE kind = 'telemetry' RETURNING size")
            for (size,) in await cur.fetchall():
                self._depth -= 1
                self._bytes -= int(size)
            await self._append_raw(db, Kind.TELEMETRY, None, payload, now_ms)
            await self._enforce_bound(db, now_ms)

    # -- outbox ----------------------------------------------------------------------------

    @property
    def outbox_depth(self) -> int:
        """Entries not yet acknowledged by the broker."""
        return self._depth

    async def outbox_peek(self, limit: int = 100) -> list[OutboxEntry]:
        """The oldest ``limit`` outbox entries, in publish (id, hence seq) order."""
        try:
            async with self.db.execute(
                "SELECT id, kind, seq, payload FROM outbox ORDER BY id LIMIT ?", (limit,)
            ) as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        return [OutboxEntry(int(r[0]), Kind(r[1]), r[2], bytes(r[3])) for r in rows]

    async def oldest_pending_event_ms(self) -> int | None:
        """When the oldest unacknowledged business event was made (None: none pending)."""
        try:
            async with self.db.execute(
                "SELECT MIN(created_ms) FROM outbox WHERE business = 1"
            ) as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        return None if row is None or row[0] is None else int(row[0])

    @property
    def outbox_bytes(self) -> int:
        """Payload bytes of the entries not yet acknowledged."""
        return self._bytes

    async def outbox_ack(self, *entry_ids: int, now_ms: int = 0) -> None:
        """Remove entries the broker acknowledged; their events enter the resend window."""
        if not entry_ids:
            return
        # Only "?" placeholders are interpolated; the ids are bound parameters.
        marks = ",".join("?" * len(entry_ids))
        keep = f"INSERT OR REPLACE INTO sent SELECT seq, payload FROM outbox WHERE id IN ({marks})"  # noqa: S608
        drop = f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING size"  # noqa: S608
        async with self._transaction() as db:
            await db.execute(keep + " AND kind = 'event'", entry_ids)
            cur = await db.execute(drop, entry_ids)
            for (size,) in await cur.fetchall():
                self._depth -= 1
                self._bytes -= int(size)
            last = await _one(db, "SELECT value FROM meta WHERE key = 'last_seq'")
            await db.execute("DELETE FROM sent WHERE seq <= ?", (last - self._resend_window,))
            if self.outbox_full and not self._over(FULL_CLEAR_RATIO):
                self.outbox_full = False
                await db.execute("UPDATE meta SET value = 0 WHERE key = 'outbox_full'")
                clear = device_pb2.DeviceEvent(
                    alarm=device_pb2.AlarmRaised(
                        kind=common_pb2.ALARM_KIND_OUTBOX_FULL,
                        detail="outbox drained below its bound",
                        active=False,
                    )
                )
                await self._append_event(db, clear, now_ms)

    async def resend(self, from_seq: int, to_seq: int, now_ms: int) -> int:
        """Queue events ``from_seq..to_seq`` again (same event id and seq) for ResendEvents.

        Returns:
            How many were queued (events still in the outbox go out anyway and are not copied).

        Raises:
            ResendWindowError: part of the range is neither pending nor in the resend window.
        """
        async with self._transaction() as db:
            last = await _one(db, "SELECT value FROM meta WHERE key = 'last_seq'")
            if not 1 <= from_seq <= to_seq <= last:
                raise ResendWindowError(f"range {from_seq}..{to_seq} outside 1..{last}")
            if to_seq - from_seq >= self._resend_window:
                raise ResendWindowError(f"range longer than the window ({self._resend_window})")
            async with db.execute(
                "SELECT seq FROM outbox WHERE kind = 'event' AND seq BETWEEN ? AND ?",
                (from_seq, to_seq),
            ) as cur:
                pending = {int(r[0]) for r in await cur.fetchall()}
            async with db.execute(
                "SELECT seq, payload FROM sent WHERE seq BETWEEN ? AND ? ORDER BY seq",
                (from_seq, to_seq),
            ) as cur:
                kept = [(int(r[0]), bytes(r[1])) for r in await cur.fetchall()]
            have = pending | {seq for seq, _ in kept}
            if len(have) != to_seq - from_seq + 1:
                raise ResendWindowError(
                    f"events {from_seq}..{to_seq} are no longer in the resend window"
                )
            queued = 0
            for seq, payload in kept:
                if seq not in pending:
                    await self._append_raw(db, Kind.EVENT, seq, payload, now_ms)
                    queued += 1
        return queued


async def _one(db: aiosqlite.Connection, sql: str) -> int:
    async with db.execute(sql) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


async def _put(db: aiosqlite.Connection, key: str, value: bytes) -> None:
    await db.execute(
        "INSERT INTO kv (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
