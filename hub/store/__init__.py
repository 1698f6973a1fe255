"""The hub's storage: the connection and its transactions, migrations, and every SQL statement.

All SQL lives in this package: ``connection`` (the store and its transactions), ``migrations``
(the schema, versioned) and ``repo`` (one module of plain functions per table group).
"""

from hub.store.connection import Row, Store, Tx

__all__ = ["Row", "Store", "Tx"]
