"""The OCPP charging sessions' own schema (``hub.ocpp.sessions``): a store of its own, a SQLite
file or the hubs' PostgreSQL database, versioned in ``ocpp_schema_version``. Not part of the
hub's ``MIGRATIONS``.

Never edit a released migration: append a new one (portable SQL, as for the hub's schema).
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "charging sessions",
        """
        CREATE TABLE IF NOT EXISTS charging_sessions (
            transaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
            pile TEXT NOT NULL,
            site TEXT NOT NULL,
            connector INTEGER NOT NULL,
            id_tag_sha256 TEXT NOT NULL,
            meter_start_wh REAL NOT NULL,
            meter_stop_wh REAL,
            energy_wh REAL NOT NULL DEFAULT 0,
            started_ms INTEGER NOT NULL,
            stopped_ms INTEGER,
            stop_reason TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX IF NOT EXISTS charging_sessions_pile
            ON charging_sessions(pile, stopped_ms);
        """,
    ),
)
