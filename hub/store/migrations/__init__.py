"""Versioned schema migrations (``core``: 1-8, the hub itself; ``city``: 9 on, the city's
rules and the people around a parcel), applied in order once each (recorded in ``schema_version``).

Never edit a released migration: append a new one. The SQL is the portable subset that
``hub.store.dialect.pg_schema`` translates for PostgreSQL (migration 2's ``CASE WHEN active <> 0``
was ``CASE WHEN active``: the same on SQLite, and the one spelling PostgreSQL accepts). Full
phone numbers live only in ``recipient_contacts``; every other table holds the masked form.
``charging_sessions`` is the OCPP sessions' own schema (own store and version table), not in
``MIGRATIONS``.
"""

from __future__ import annotations

from hub.store.migrations import city, core

MIGRATIONS: tuple[tuple[int, str, str], ...] = (*core.MIGRATIONS, *city.MIGRATIONS)
