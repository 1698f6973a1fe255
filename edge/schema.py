"""The edge database's schema: its migrations, and adoption of databases versioned by user_version.

Cabinets in the field recorded their schema in ``PRAGMA user_version`` (v1, v2). ``prepare`` adopts
such a database into ``lockerhub.sqlite``'s ``schema_version`` table without touching its tables,
then applies any newer migration; ``user_version`` is kept in step so older tooling still reads it.
"""

from __future__ import annotations

import sqlite3

from lockerhub.sqlite import Migration, migrate

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "meta, compartments, outbox, commands",
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
    ),
    # Issue 4: disabled flag and last local transition per compartment, outbox sizes for the
    # byte bound, the window of acknowledged events kept for ResendEvents, small typed blobs.
    Migration(
        2,
        "compartment flags, outbox sizes, resend window, kv blobs",
        """
        ALTER TABLE compartments ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE compartments ADD COLUMN local_ms INTEGER;
        ALTER TABLE outbox ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
        UPDATE outbox SET size = length(payload);
        CREATE TABLE sent (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
        CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        INSERT INTO meta (key, value) VALUES ('outbox_full', 0), ('outbox_full_total', 0);
        """,
    ),
)
SCHEMA_VERSION = max(m.version for m in MIGRATIONS)


def prepare(conn: sqlite3.Connection) -> int:
    """Adopt a ``user_version`` database, apply newer migrations; returns the schema version.

    Raises:
        sqlite3.DatabaseError: the database is newer than this agent, or a migration failed.
    """
    legacy = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if legacy > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"schema version {legacy} is newer than this agent's {SCHEMA_VERSION}"
        )
    adopted = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if legacy and adopted is None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
            )
            conn.executemany(
                "INSERT INTO schema_version VALUES (?, ?, 0)",
                [(m.version, f"{m.description} (adopted)") for m in MIGRATIONS[:legacy]],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    version = migrate(conn, MIGRATIONS)
    # Static text with an int: nothing from outside reaches this statement.
    conn.execute(f"PRAGMA user_version = {int(version)}")
    return version


# A simulated fleet's one shared database (``edge.storage``): the tables of the cabinet
# schema above at its latest version, each led by the cabinet it belongs to (``edge.sql``). Its
# own migration list: a cabinet's file and a fleet's file never convert into one another.
FLEET_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "fleet: every cabinet's meta, compartments, outbox, commands, sent and kv, keyed",
        """
        CREATE TABLE meta (
            cabinet TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL,
            PRIMARY KEY (cabinet, key)
        ) WITHOUT ROWID;
        CREATE TABLE compartments (
            cabinet TEXT NOT NULL,
            compartment_id TEXT NOT NULL,
            state TEXT NOT NULL,
            parcel_id TEXT,
            reserved_until_ms INTEGER,
            code_hash TEXT,
            code_deadline_ms INTEGER,
            disabled INTEGER NOT NULL DEFAULT 0,
            local_ms INTEGER,
            PRIMARY KEY (cabinet, compartment_id)
        ) WITHOUT ROWID;
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            cabinet TEXT NOT NULL,
            kind TEXT NOT NULL,
            seq INTEGER,
            business INTEGER NOT NULL,
            payload BLOB NOT NULL,
            created_ms INTEGER NOT NULL,
            size INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX outbox_cabinet ON outbox (cabinet, id);
        CREATE TABLE commands (
            cabinet TEXT NOT NULL,
            command_id TEXT NOT NULL,
            received_ms INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('started', 'done')),
            result BLOB,
            PRIMARY KEY (cabinet, command_id)
        );
        CREATE INDEX commands_received ON commands (cabinet, received_ms);
        CREATE TABLE sent (
            cabinet TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
            PRIMARY KEY (cabinet, seq)
        );
        CREATE TABLE kv (
            cabinet TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
            PRIMARY KEY (cabinet, key)
        );
        """,
    ),
)

# The meta rows a cabinet's own file starts with (migrations 1 and 2), seeded per cabinet.
META_KEYS = ("boot_count", "last_seq", "outbox_full", "outbox_full_total")


def prepare_fleet(conn: sqlite3.Connection) -> int:
    """Apply the fleet database's migrations; returns its schema version.

    Raises:
        sqlite3.DatabaseError: a cabinet's own file (or a newer fleet file) was given.
    """
    legacy = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if legacy:
        raise sqlite3.DatabaseError("this is a cabinet's own database, not a fleet's")
    columns = {r[1] for r in conn.execute("PRAGMA table_info(meta)")}
    if columns and "cabinet" not in columns:
        raise sqlite3.DatabaseError("this is a cabinet's own database, not a fleet's")
    return migrate(conn, FLEET_MIGRATIONS)


def seed_cabinet(conn: sqlite3.Connection, cabinet: str) -> None:
    """Give ``cabinet`` its meta rows in a fleet database (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO meta (cabinet, key, value) VALUES (?, ?, 0) "
        "ON CONFLICT (cabinet, key) DO NOTHING",
        [(cabinet, key) for key in META_KEYS],
    )
