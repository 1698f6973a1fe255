"""SQL for each table group, as plain functions on a :class:`hub.store.Tx`."""
