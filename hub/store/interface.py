"""What every store back end offers: rows by column name, a transaction handle, a back end.

Repositories are written against :class:`Tx` only; :mod:`hub.store.sqlite_store` and
:mod:`hub.store.pg_store` implement it.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from hub.errors import StoreError

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")
Work = Callable[["Tx"], Coroutine[Any, Any, T]]
#: Rows per statement of the default :meth:`Tx.insert_many` (times the columns, under SQLite's
#: bound-variable limit: 32,766 by default since 3.32).
INSERT_ROWS = 500
#: (version, description, portable SQL script), applied in version order once each.
Migrations = Sequence[tuple[int, str, str]]


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (it awaits only a thread-bound :class:`Tx`)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise StoreError("a database-thread transaction awaited something other than the store")


class Row(Protocol):
    """A result row: by column name (``row["id"]``) or position (``row[0]``), iterable."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Tx(abc.ABC):
    """Statements inside one transaction (or one read). SQL uses ``?`` placeholders."""

    __slots__ = ()

    #: "sqlite" or "postgresql", for the rare statement that must differ (none in repo/ today).
    dialect: str = ""

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement per parameter row; return the rows changed in total."""

    async def compute(self, fn: Callable[[], T]) -> T:
        """Run CPU-bound ``fn`` off the event loop (a worker thread; on SQLite's database
        thread it simply runs there), so that work given to ``transaction_on_thread`` may
        allocate or solve without blocking the loop on either back end."""
        return await asyncio.to_thread(fn)

    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Bulk insert (``table`` and ``columns`` are the caller's constants, never input), rows
        in order. The default is one multi-row INSERT per :data:`INSERT_ROWS` rows: SQLite does
        per statement what it would do per row of ``executemany`` (AUTOINCREMENT's bookkeeping,
        the statement's reset), which halves the cost of a batch. PostgreSQL overrides it with
        COPY."""
        names = ", ".join(columns)
        one = f"({', '.join('?' * len(columns))})"
        batch = rows if isinstance(rows, list) else list(rows)
        for start in range(0, len(batch), INSERT_ROWS):
            chunk = batch[start : start + INSERT_ROWS]
            await self.execute(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))}",  # noqa: S608
                [value for row in chunk for value in row],
            )

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
        """Bulk UPDATE: each row is its ``keys`` values then its ``columns`` values; ``also`` is
        a constant extra assignment, ``where`` a constant condition on the table's columns,
        qualified by the table's name (``"compartments.state = 'free'"``). Returns the rows
        changed. The default is one UPDATE per row; PostgreSQL overrides it with COPY into a
        temporary table and one ``UPDATE ... FROM``."""
        n = len(keys)
        sets = ", ".join([*(f"{c} = ?" for c in columns), *([also] if also else [])])
        match = " AND ".join([*(f"{k} = ?" for k in keys), *([where] if where else [])])
        return await self.executemany(
            f"UPDATE {table} SET {sets} WHERE {match}",  # noqa: S608 - the caller's constants
            [(*row[n:], *row[:n]) for row in rows],
        )

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abc.abstractmethod
    async def lock(self, *keys: str) -> None:
        """Hold named locks until this transaction ends (taken in sorted order, so two
        transactions taking several never deadlock). SQLite: a no-op, as every write
        transaction already holds the database's one write lock; PostgreSQL: transaction-scoped
        advisory locks, shared by every hub on the database."""


class Backend(abc.ABC):
    """One database engine behind :class:`hub.store.Store`."""

    schema_version: int = 0

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    @abc.abstractmethod
    async def run(self, work: Work[T]) -> T: ...

    @abc.abstractmethod
    def read(self) -> AbstractAsyncContextManager[Tx]: ...

    @abc.abstractmethod
    async def erase_history(self) -> None:
        """Leave no deleted content (a purged phone number) readable in the engine's files."""
