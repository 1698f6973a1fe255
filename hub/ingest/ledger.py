"""The per-event bookkeeping of ingestion: the event ledger, a device's sequence and presence.

Every applied event adds a ledger row (device, seq, event_id), reads and advances its device's
``last_seq`` (gap detection) and clears the device's ``cabinet_offline`` alarm; a door change
also writes its sensor. Done statement by statement, that is five or six round trips per event,
most of them answering what the batch already knows. Two implementations of one interface:

* :class:`DirectLedger` does each step as a statement when asked: the path for a batch applied
  message by message in savepoints, where any message may be rolled back alone.
* :class:`BatchLedger` reads what a batch needs about its devices in one go (:meth:`prefetch`),
  answers from that, and writes the ledger rows, device rows and door sensors once at the end
  (:meth:`flush`).
  It is only correct when the batch commits or rolls back as a whole: the ingestor uses it for
  batches it expects to apply whole, and falls back to :class:`DirectLedger` when one message is
  refused after it wrote something.

Both keep one invariant the batch path relies on: every (device, seq) in the ledger has
``seq <= devices.last_seq``, so an event above the device's ``last_seq`` (read under the device's
row lock) cannot be a duplicate by its sequence number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from hub.devices.alarms import OFFLINE, AlarmService
from hub.store import Row, Tx
from hub.store.interface import Params
from hub.store.repo import alarms as alarms_repo
from hub.store.repo import devices as devices_repo
from hub.store.repo import events as events_repo

T = TypeVar("T")


class LedgerConflict(Exception):
    """A deferred ledger row hit an existing one (an event_id reused under a new seq): the batch
    must be applied again message by message."""


class EventLedger(Protocol):
    """What applying one event needs besides its effects."""

    async def record(
        self,
        tx: Tx,
        device: str,
        seq: int,
        event_id: str,
        type_: str,
        device_ts_ms: int,
        received_ms: int,
    ) -> bool:
        """Add the event to the ledger; False when it was applied before."""
        ...

    async def expected(self, tx: Tx, device: str) -> int:
        """The first seq of ``device`` above the highest seen or asked for in a resend."""
        ...

    async def touch(self, tx: Tx, device: str, now_ms: int, seq: int) -> None:
        """The device was heard from at ``now_ms``; ``seq`` is its newest event."""
        ...

    async def online(self, tx: Tx, alarms: AlarmService, device: str) -> None:
        """Clear the device's offline alarm, if one is open."""
        ...

    def raised(self, device: str, *kinds: str) -> None:
        """Alarms of ``kinds`` were raised for ``device`` in this batch."""
        ...

    async def door(self, tx: Tx, device: str, compartment: str, is_open: bool) -> None:
        """A compartment's door sensor changed."""
        ...

    async def settle(self, tx: Tx, device: str) -> None:
        """Write what is deferred of ``device``'s sensors (before a sample overwrites them)."""
        ...


class DirectLedger:
    """Each step as its own statement (safe inside per-message savepoints)."""

    async def record(
        self,
        tx: Tx,
        device: str,
        seq: int,
        event_id: str,
        type_: str,
        device_ts_ms: int,
        received_ms: int,
    ) -> bool:
        return await events_repo.record_event(
            tx, device, seq, event_id, type_, device_ts_ms, received_ms
        )

    async def expected(self, tx: Tx, device: str) -> int:
        return max(await devices_repo.device_seq(tx, device)) + 1

    async def touch(self, tx: Tx, device: str, now_ms: int, seq: int) -> None:
        await devices_repo.touch(tx, device, now_ms, seq)

    async def online(self, tx: Tx, alarms: AlarmService, device: str) -> None:
        await alarms.clear_condition(tx, device=device, kind=OFFLINE)

    def raised(self, device: str, *kinds: str) -> None:
        pass

    async def door(self, tx: Tx, device: str, compartment: str, is_open: bool) -> None:
        await devices_repo.set_sensors(tx, device, compartment, door_open=is_open)

    async def settle(self, tx: Tx, device: str) -> None:
        pass


class BatchLedger:
    """One read before the batch, one write after it (see the module docstring)."""

    def __init__(self) -> None:
        self._seqs: dict[str, tuple[int, int]] = {}
        self._offline: set[str] = set()
        self._rows: list[tuple[str, int, str, str, int, int]] = []
        self._pending: set[tuple[str, int]] = set()
        self._pending_ids: set[str] = set()
        self._touched: dict[str, tuple[int, int]] = {}
        self._doors: dict[tuple[str, str], bool] = {}  # the last state of each, in the batch
        self.writes = 0  # deferred writes so far: a refusal after one needs the slow path

    async def prefetch(self, tx: Tx, devices: list[str]) -> None:
        """Lock the batch's device rows (in the given order) and read their sequence state and
        open offline alarms."""
        await devices_repo.lock_in_order(tx, devices)
        self._seqs = await devices_repo.devices_seq(tx, devices)
        self._offline = await alarms_repo.devices_with_open(tx, devices, OFFLINE)

    async def record(
        self,
        tx: Tx,
        device: str,
        seq: int,
        event_id: str,
        type_: str,
        device_ts_ms: int,
        received_ms: int,
    ) -> bool:
        if (device, seq) in self._pending or event_id in self._pending_ids:
            return False  # a redelivery inside this very batch
        if seq <= self._seqs.get(device, (0, 0))[0]:
            # At or below the highest seen: only the ledger can tell (a resend, a redelivery).
            if not await events_repo.record_event(
                tx, device, seq, event_id, type_, device_ts_ms, received_ms
            ):
                return False
        else:
            self._rows.append((device, seq, event_id, type_, device_ts_ms, received_ms))
        self._pending.add((device, seq))
        self._pending_ids.add(event_id)
        self.writes += 1
        return True

    async def expected(self, tx: Tx, device: str) -> int:
        return max(self._seqs.get(device, (0, 0))) + 1

    async def touch(self, tx: Tx, device: str, now_ms: int, seq: int) -> None:
        last, requested = self._seqs.get(device, (0, 0))
        self._seqs[device] = (max(last, seq), requested)
        _, top = self._touched.get(device, (now_ms, 0))
        self._touched[device] = (now_ms, max(top, seq))
        self.writes += 1

    async def online(self, tx: Tx, alarms: AlarmService, device: str) -> None:
        if device in self._offline:
            self._offline.discard(device)
            await alarms.clear_condition(tx, device=device, kind=OFFLINE)

    def raised(self, device: str, *kinds: str) -> None:
        if OFFLINE in kinds:
            self._offline.add(device)

    async def door(self, tx: Tx, device: str, compartment: str, is_open: bool) -> None:
        # Nothing in a batch reads a door sensor back: the last change is all that is written.
        self._doors[device, compartment] = is_open
        self.writes += 1

    async def settle(self, tx: Tx, device: str) -> None:
        mine = [key for key in self._doors if key[0] == device]
        if mine:
            await devices_repo.set_doors(tx, [(*key, self._doors.pop(key)) for key in mine])

    async def flush(self, tx: Tx) -> None:
        """Write the deferred ledger rows and device rows.

        Raises:
            LedgerConflict: a deferred row was refused by the ledger's unique keys.
        """
        if self._rows and await events_repo.record_events(tx, self._rows) != len(self._rows):
            raise LedgerConflict(f"{len(self._rows)} ledger rows, some seen before")
        await devices_repo.touch_many(
            tx, [(device, now, seq) for device, (now, seq) in sorted(self._touched.items())]
        )
        await devices_repo.set_doors(tx, [(*key, value) for key, value in self._doors.items()])


class WriteCounter(Tx):
    """A transaction that counts the statements that may have written (anything but a
    SELECT): a message refused before its first write can be dropped without a rollback."""

    __slots__ = ("_tx", "dialect", "writes")

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self.dialect = tx.dialect
        self.writes = 0

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.writes += 1
        return await self._tx.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        self.writes += 1
        return await self._tx.executemany(sql, rows)

    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        self.writes += 1
        await self._tx.insert_many(table, columns, rows)

    async def update_many(
        self,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        also: str = "",
        where: str = "",
    ) -> int:
        self.writes += 1
        return await self._tx.update_many(table, keys, columns, rows, also=also, where=where)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        self._count(sql)
        return await self._tx.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self._count(sql)
        return await self._tx.fetchall(sql, params)

    async def lock(self, *keys: str) -> None:
        await self._tx.lock(*keys)

    async def compute(self, fn: Callable[[], T]) -> T:
        return await self._tx.compute(fn)

    def _count(self, sql: str) -> None:
        if sql.lstrip()[:6].upper() != "SELECT":  # INSERT ... RETURNING and the like
            self.writes += 1
