"""What the PostgreSQL back end's two paths share: rows, adapters, error translation, COPY types.

``pg_store`` runs statements on the event loop (asyncio psycopg, a pool); ``pg_thread`` runs
``transaction_on_thread`` work on a thread of its own with a synchronous connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import Format
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
    adapters = conn.adapters
    int8 = adapters.types["int8"].oid
    by_oid = [adapters.get_dumper_by_oid(int8, fmt) for fmt in (Format.TEXT, Format.BINARY)]
    adapters.register_dumper(bool, _BoolAsInt)
    adapters.register_dumper(bool, _BoolAsIntBinary)
    # The bool dumpers carry int8's oid, so they also became the by-oid choice for int8, which
    # binary COPY (set_types) uses for every integer: give that back to psycopg's C dumpers.
    for dumper in by_oid:
        adapters.register_dumper(None, dumper)
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


def bulk_update(
    table: str,
    keys: Sequence[str],
    columns: Sequence[str],
    types: Sequence[str],
    *,
    also: str,
    where: str,
) -> tuple[str, list[bytes], str]:
    """``Tx.update_many`` on PostgreSQL: (temporary table, the statements that prepare it, the
    UPDATE). The temporary table lives as long as the connection (its rows only until the
    commit), so a batch costs no catalog churn; it is emptied first in case of a second batch
    in one transaction. ``types`` are the type names of ``keys`` then ``columns``."""
    names = (*keys, *columns)
    digest = hashlib.sha256(f"{table}:{','.join(names)}".encode()).hexdigest()[:12]
    temp = f"bulk_{table}_{digest}"
    typed = ", ".join(f"{name} {kind}" for name, kind in zip(names, types, strict=True))
    prepare = [
        f"CREATE TEMP TABLE IF NOT EXISTS {temp} ({typed}) ON COMMIT DELETE ROWS".encode(),
        f"DELETE FROM {temp}".encode(),  # noqa: S608 - identifiers of our own
    ]
    sets = ", ".join([*(f"{c} = v.{c}" for c in columns), *([also] if also else [])])
    match = " AND ".join([*(f"{table}.{k} = v.{k}" for k in keys), *([where] if where else [])])
    update = f"UPDATE {table} SET {sets} FROM {temp} AS v WHERE {match}"  # noqa: S608
    return temp, prepare, update
