"""SQL for each table group, as plain functions on a :class:`hub.store.Tx`."""

# Rows (or IN-list values) per statement when one statement carries many: SQLite binds at most
# 32,766 variables, and the widest bulk rows here have six columns.
ROWS_PER_STATEMENT = 1000
