"""Local SQLite state: boot counter, event seq, compartments, outbox, processed commands.

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

from edge.cabinet import CompartmentRecord, CompartmentState
from edge.errors import StorageError
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2

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
)
SCHEMA_VERSION = len(MIGRATIONS)


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
        outbox_max: outbox bound in entries; above it the oldest non-business entries (command
            results) are dropped, business events never are.
    """

    def __init__(self, path: Path, *, outbox_max: int = 100_000) -> None:
        self._path = path
        self._outbox_max = outbox_max
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._depth = 0
        self.outbox_overflow = 0

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
        return await self._scalar("SELECT value FROM meta WHERE key = 'last_seq'")

    # -- compartments ----------------------------------------------------------------------

    async def load_compartments(self, ids: Iterable[str]) -> dict[str, CompartmentRecord]:
        """Records of ``ids`` (new compartments start free); unknown stored ids are ignored."""
        wanted = list(ids)
        try:
            async with self.db.execute(
                "SELECT compartment_id, state, parcel_id, reserved_until_ms, code_hash, "
                "code_deadline_ms FROM compartments"
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
    ) -> list[OutboxEntry]:
        """Atomically save compartment records, append events and command results to the outbox.

        Each event gets a fresh ``event_id`` (uuid4), the next ``seq`` and ``ts_ms`` if unset.
        Command results are also recorded as the command's stored result (duplicates re-use it).

        Returns:
            The new outbox entries, in publish order.
        """
        entries: list[OutboxEntry] = []
        async with self._transaction() as db:
            for rec in compartments:
                await db.execute(
                    "INSERT OR REPLACE INTO compartments (compartment_id, state, parcel_id, "
                    "reserved_until_ms, code_hash, code_deadline_ms) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        rec.compartment_id,
                        rec.state.value,
                        rec.parcel_id,
                        rec.reserved_until_ms,
                        rec.code_hash,
                        rec.code_deadline_ms,
                    ),
                )
            for event in events:
                await db.execute("UPDATE meta SET value = value + 1 WHERE key = 'last_seq'")
                async with db.execute("SELECT value FROM meta WHERE key = 'last_seq'") as cur:
                    row = await cur.fetchone()
                assert row is not None
                event.seq = int(row[0])
                event.event_id = str(uuid.uuid4())
                if not event.ts_ms:
                    event.ts_ms = now_ms
                entries.append(await self._append(db, Kind.EVENT, event.seq, event, now_ms))
            for result in results:
                payload = result.SerializeToString(deterministic=True)
                await db.execute(
                    "INSERT INTO commands (command_id, received_ms, state, result) "
                    "VALUES (?, ?, 'done', ?) ON CONFLICT (command_id) DO UPDATE "
                    "SET state = 'done', result = excluded.result",
                    (result.command_id, now_ms, payload),
                )
                entries.append(await self._append(db, Kind.COMMAND_RESULT, None, result, now_ms))
            await self._enforce_bound(db, len(entries))
        self._depth += len(entries)
        return entries

    async def _append(
        self,
        db: aiosqlite.Connection,
        kind: Kind,
        seq: int | None,
        message: device_pb2.DeviceEvent | device_pb2.CommandResult,
        now_ms: int,
    ) -> OutboxEntry:
        payload = message.SerializeToString(deterministic=True)
        cur = await db.execute(
            "INSERT INTO outbox (kind, seq, business, payload, created_ms) VALUES (?, ?, ?, ?, ?)",
            (kind.value, seq, int(kind is Kind.EVENT), payload, now_ms),
        )
        assert cur.lastrowid is not None
        return OutboxEntry(cur.lastrowid, kind, seq, payload)

    async def _enforce_bound(self, db: aiosqlite.Connection, adding: int) -> None:
        excess = self._depth + adding - self._outbox_max
        if excess <= 0:
            return
        # Simple policy for now: shed the oldest command results (the hub times commands out
        # anyway); business events are never dropped. Issue 4 adds byte bounds and a status flag.
        cur = await db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE business = 0 "
            "ORDER BY id LIMIT ?)",
            (excess,),
        )
        dropped = max(cur.rowcount, 0)
        self._depth -= dropped
        self.outbox_overflow += dropped

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

    async def outbox_ack(self, entry_id: int) -> None:
        """Remove an entry the broker acknowledged."""
        async with self._transaction() as db:
            cur = await db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))
            self._depth -= max(cur.rowcount, 0)
