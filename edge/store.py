"""Local SQLite state: boot counter, compartments, blobs, commands; the outbox through the journal.

A cabinet's store has its own file and one connection on a thread of ours
(``lockerhub.sqlite.Database``), WAL with synchronous=FULL: a business event or a command result is
on disk before anyone is told about it (domain notes: store a result before publishing it). A
simulated fleet's stores share one database and its thread instead (``Store.attached``, made by
``edge.storage``), each reading and writing only its cabinet's rows (``edge.sql``). sqlite3
errors become ``StorageError`` here and nowhere else. The outbox counters are replaced only after
the transaction that changed them committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from edge.cabinet import CompartmentRecord
from edge.errors import StorageError
from edge.journal import (
    FULL_CLEAR_RATIO,
    Journal,
    OutboxBound,
    OutboxCounters,
    OutboxEntry,
    load_counters,
    meta,
)
from edge.schema import SCHEMA_VERSION, prepare, seed_cabinet
from edge.sql import OWN, Scope
from lockerhub.sqlite import Database, open_database
from lockerhub.states import CompartmentState
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2

__all__ = ["FULL_CLEAR_RATIO", "SCHEMA_VERSION", "CommandRecord", "OutboxEntry", "Store"]

T = TypeVar("T")
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


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
        self._bound = OutboxBound(
            max_entries=outbox_max, max_bytes=outbox_max_bytes, resend_window=resend_window
        )
        self._db: Database | None = None
        # A fleet's database this store's cabinet shares (None: its own file, opened here).
        self._shared: Database | None = None
        self._scope: Scope = OWN
        # Write transactions and the counter swap after each commit happen one at a time.
        self._write_lock = asyncio.Lock()
        self._counters = OutboxCounters()
        # Set whenever ``outbox_full`` changes (the session republishes its status then).
        self.full_changed = asyncio.Event()

    @classmethod
    def attached(
        cls,
        db: Database,
        cabinet: str,
        *,
        outbox_max: int = 100_000,
        outbox_max_bytes: int = 64 * 1024 * 1024,
        resend_window: int = 10_000,
    ) -> Self:
        """A store for ``cabinet``'s rows in a fleet's open database (``edge.storage``).

        Entering it seeds the cabinet's rows; exiting leaves the database open (its owner closes
        it). Same semantics as a cabinet's own file: a commit returns once it is in the database.
        """
        store = cls(
            db.path,
            outbox_max=outbox_max,
            outbox_max_bytes=outbox_max_bytes,
            resend_window=resend_window,
        )
        store._shared, store._scope = db, Scope(cabinet)
        return store

    async def __aenter__(self) -> Self:
        scope = self._scope

        def setup(conn: sqlite3.Connection) -> OutboxCounters:
            prepare(conn)
            return load_counters(conn)

        def seed(conn: sqlite3.Connection) -> OutboxCounters:
            assert scope.cabinet is not None
            seed_cabinet(conn, scope.cabinet)
            return load_counters(conn, scope=scope)

        try:
            if self._shared is not None:
                self._counters = await self._shared.transaction(seed)
                self._db = self._shared
            else:
                self._db, self._counters = await open_database(
                    self._path, setup, pragmas=_PRAGMAS, thread_name="edge-sqlite"
                )
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {self._path}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db, self._db = self._db, None
        if db is not None and db is not self._shared:
            try:
                await db.__aexit__(exc_type, exc, tb)
            except sqlite3.Error as err:
                raise StorageError(f"cannot close database: {err}") from err

    def _require(self) -> Database:
        if self._db is None:
            raise StorageError("store is not open")
        return self._db

    async def _guard(self, work: Awaitable[T], what: str) -> T:
        try:
            return await work
        except sqlite3.Error as exc:
            raise StorageError(f"database {what} failed: {exc}") from exc

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._guard(self._require().run(work), "read")

    async def _write(self, work: Callable[[Journal], T]) -> T:
        """Run ``work`` in one transaction; the outbox counters follow only once it committed."""
        db = self._require()
        async with self._write_lock:
            journal: Journal | None = None

            def run(conn: sqlite3.Connection) -> T:
                nonlocal journal
                journal = Journal(conn, self._counters, self._bound, self._scope)
                return work(journal)

            try:
                result = await self._guard(db.transaction(run), "write")
            except asyncio.CancelledError:
                # Committed or rolled back, we cannot tell from here: read what the disk has
                # (queued behind the transaction on the database thread), then let go.
                overflow, scope = self._counters.overflow, self._scope
                with contextlib.suppress(sqlite3.Error):
                    self._swap(await db.run(lambda conn: load_counters(conn, overflow, scope)))
                raise
            assert journal is not None
            self._swap(journal.counters)
            return result

    def _swap(self, counters: OutboxCounters) -> None:
        if counters.full != self._counters.full:
            self.full_changed.set()
        self._counters = counters

    # -- meta and blobs --------------------------------------------------------------------

    async def next_boot(self) -> int:
        """Increment and return the persisted boot counter (one per agent start)."""

        def bump(j: Journal) -> int:
            j.execute("meta_bump", "boot_count")
            return j.meta("boot_count")

        return await self._write(bump)

    async def last_seq(self) -> int:
        """The last event sequence number assigned (0 before the first event)."""
        scope = self._scope
        return await self._read(lambda conn: meta(conn, "last_seq", scope))

    async def get_blob(self, key: str) -> bytes | None:
        """A small persisted value (desired state, config overlay, keypad counters)."""
        sql, args = self._scope.sql["kv_get"], self._scope.args(key)
        row = await self._read(lambda conn: conn.execute(sql, args).fetchone())
        return None if row is None else bytes(row[0])

    async def put_blob(self, key: str, value: bytes) -> None:
        """Durably store a small value under ``key``."""
        await self._write(lambda j: _put(j, key, value))

    # -- compartments ----------------------------------------------------------------------

    async def load_compartments(self, ids: Iterable[str]) -> dict[str, CompartmentRecord]:
        """Records of ``ids`` (new compartments start free); unknown stored ids are ignored."""
        wanted = list(ids)
        sql, args = self._scope.sql["compartments_all"], self._scope.args()
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
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
        sql, args = self._scope.sql["command_get"], self._scope.args(command_id)
        row = await self._read(lambda conn: conn.execute(sql, args).fetchone())
        if row is None:
            return None
        result = None
        if row[0] is not None:
            result = device_pb2.CommandResult()
            result.ParseFromString(row[0])
        return CommandRecord(command_id, result)

    async def begin_command(self, command_id: str, now_ms: int) -> None:
        """Durably mark ``command_id`` started, before any side effect (crash: never re-run)."""
        await self._write(lambda j: j.execute("command_begin", command_id, now_ms))

    async def interrupted_commands(self) -> list[str]:
        """Ids of commands a crash left started (never re-run; reported as INTERRUPTED)."""
        sql, args = self._scope.sql["commands_started"], self._scope.args()
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [str(r[0]) for r in rows]

    async def prune_commands(self, before_ms: int) -> None:
        """Forget finished commands received before ``before_ms`` (far beyond any expiry)."""
        await self._write(lambda j: j.execute("commands_prune", before_ms))

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

        Raises:
            StorageError: nothing was written (and no counter changed).
        """
        records, items, outcomes, kv = list(compartments), list(events), list(results), list(blobs)

        def work(j: Journal) -> list[OutboxEntry]:
            j.conn.executemany(
                j.scope.sql["compartment_put"],
                j.scope.rows(
                    [
                        (
                            r.compartment_id,
                            r.state.value,
                            r.parcel_id,
                            r.reserved_until_ms,
                            r.code_hash,
                            r.code_deadline_ms,
                            int(r.disabled),
                            r.local_ms,
                        )
                        for r in records
                    ]
                ),
            )
            for key, value in kv:
                _put(j, key, value)
            entries = [j.append_event(event, now_ms) for event in items]
            for result in outcomes:
                payload = result.SerializeToString(deterministic=True)
                j.execute("command_done", result.command_id, now_ms, payload)
                entries.append(j.append_raw(Kind.COMMAND_RESULT, None, payload, now_ms))
            entries.extend(j.enforce_bound(now_ms))
            return entries

        return await self._write(work)

    async def coalesce_telemetry(self, payload: bytes, now_ms: int) -> None:
        """Keep ``payload`` as the only telemetry sample waiting (each supersedes the last)."""
        await self._write(lambda j: j.coalesce_telemetry(payload, now_ms))

    # -- outbox ----------------------------------------------------------------------------

    @property
    def counters(self) -> OutboxCounters:
        """The outbox counters as of the last commit."""
        return self._counters

    @property
    def outbox_depth(self) -> int:
        """Entries not yet acknowledged by the broker."""
        return self._counters.depth

    @property
    def outbox_bytes(self) -> int:
        """Payload bytes of the entries not yet acknowledged."""
        return self._counters.size

    @property
    def outbox_overflow(self) -> int:
        """Non-business entries shed at the bound since this store opened."""
        return self._counters.overflow

    @property
    def outbox_full(self) -> bool:
        """The outbox reached its bound and has not yet drained below the clear ratio."""
        return self._counters.full

    @property
    def outbox_full_total(self) -> int:
        """Times the outbox reached its bound (persisted: a counter an operator can trust)."""
        return self._counters.full_total

    async def outbox_peek(self, limit: int = 100) -> list[OutboxEntry]:
        """The oldest ``limit`` outbox entries, in publish (id, hence seq) order."""
        sql, args = self._scope.sql["outbox_peek"], self._scope.args(limit)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [OutboxEntry(int(r[0]), Kind(r[1]), r[2], bytes(r[3])) for r in rows]

    async def oldest_pending_event_ms(self) -> int | None:
        """When the oldest unacknowledged business event was made (None: none pending)."""
        sql, args = self._scope.sql["outbox_oldest_event"], self._scope.args()
        row = await self._read(lambda conn: conn.execute(sql, args).fetchone())
        return None if row is None or row[0] is None else int(row[0])

    async def outbox_ack(self, *entry_ids: int, now_ms: int = 0) -> None:
        """Remove entries the broker acknowledged; their events enter the resend window."""
        if entry_ids:
            await self._write(lambda j: j.ack(entry_ids, now_ms))

    async def resend(self, from_seq: int, to_seq: int, now_ms: int) -> int:
        """Queue events ``from_seq..to_seq`` again (same event id and seq) for ResendEvents.

        Returns:
            How many were queued (events still in the outbox go out anyway and are not copied).

        Raises:
            ResendWindowError: part of the range is neither pending nor in the resend window.
        """
        return await self._write(lambda j: j.resend(from_seq, to_seq, now_ms))


def _put(j: Journal, key: str, value: bytes) -> None:
    j.execute("kv_put", key, value)
