"""The hub's storage: the connection and its transactions, migrations, and every SQL statement.

All SQL lives in this package: ``connection`` (the store and its transactions, over
``sqlite_store`` or ``pg_store``), ``dialect`` (SQLite -> PostgreSQL translation), ``migrations``
(the schema, versioned) and ``repo`` (one module of plain functions per table group).
"""

from hub.store.connection import Row, Store, Tx, is_database_url

__all__ = ["Row", "Store", "Tx", "is_database_url"]
