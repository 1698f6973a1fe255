"""What the PostgreSQL back end's two paths share: rows, adapters, error translation, COPY types.

``pg_store`` runs statements on the event loop (asyncio psycopg, a pool); ``pg_thread`` runs
``transaction_on_thread`` work on a thread of its own with a synchronous connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.numeric import (
    Int8BinaryDumper,
    Int8Dumper,
    NumericBinaryLoader,
    NumericLoader,
)

from hub.errors import StoreConflict, StoreError, StoreUnavailable

COLUMN_TYPES_SQL = (
    "SELECT column_name, udt_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = %s"
)

# table -> {column: type name}, for binary COPY; one per back end (one database).
ColumnTypes = dict[str, dict[str, str]]
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


class PgRow:
    """A row by column name or position, like ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str, /) -> Any:
        if isinstance(key, int):
            return self._values[key]
        return self._values[self._index[key]]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"PgRow({tuple(self._values)!r})"


def row_factory(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    index: dict[str, int] = {}
    for i, column in enumerate(cursor.description or ()):
        index.setdefault(column.name, i)  # like sqlite3.Row: the first of duplicate names
    return lambda values: PgRow(values, index)


class _BoolAsInt(Int8Dumper):
    """Booleans are stored as INTEGER 0/1 (the portable schema): send them as numbers."""

    def dump(self, obj: Any) -> Any:
        return super().dump(int(obj))


class _BoolAsIntBinary(Int8BinaryDumper):
    def dump(self, obj: Any) -> Any:
        return super().dump(int(obj))


def _whole(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


class _Numeric(NumericLoader):
    """SUM() of a BIGINT is NUMERIC in PostgreSQL, an int in SQLite: load it as a number."""

    def load(self, data: Any) -> Any:
        return _whole(super().load(data))


class _NumericBinary(NumericBinaryLoader):
    def load(self, data: Any) -> Any:
        return _whole(super().load(data))


def register_adapters(conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.adapters.register_dumper(bool, _BoolAsIntBinary)
    conn.adapters.register_loader("numeric", _Numeric)
    conn.adapters.register_loader("numeric", _NumericBinary)


def _unreachable(sqlstate: str | None) -> bool:
    """No SQLSTATE (the client lost or never had the connection), class 08 (connection
    exception) or 57P (shutdown, crash, cannot connect now). Other operational errors (a
    program limit, a full disk) can come from the data itself and stay plain StoreErrors."""
    return sqlstate is None or sqlstate.startswith(("08", "57P"))


def translate(exc: psycopg.Error, what: str) -> StoreError:
    if isinstance(exc, _RETRYABLE):
        return StoreConflict(f"{what} lost a race: {exc.sqlstate}")
    if isinstance(exc, psycopg.OperationalError) and _unreachable(exc.sqlstate):
        # Connection lost or refused, server shutting down: not the data's fault.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StoreUnavailable(f"{what} failed, database unavailable: {first}")
    # The message names the table or constraint, never a parameter value.
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StoreError(f"{what} failed: {first}")


def copy_statement(table: str, columns: Sequence[str]) -> bytes:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)".encode()
