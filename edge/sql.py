"""The edge store's SQL, written once for two layouts: a cabinet's own file, or a fleet's file.

A real cabinet has a database of its own (``edge.schema``): no cabinet column anywhere. A simulated
fleet keeps every cabinet in one shared database (``edge.schema.FLEET_MIGRATIONS``), where each
table leads with a ``cabinet`` key. Each statement below is a template: ``{c}`` opens the WHERE
clause with the cabinet condition, ``{cc}``/``{cv}`` add the cabinet column and its placeholder to
an INSERT, ``{cs}`` selects the cabinet column. For a cabinet's own file they are all empty, so its
SQL is exactly what it always was; in the fleet layout the cabinet id is always the *first*
parameter (:meth:`Scope.args` puts it there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

COMPARTMENT_COLUMNS = (
    "compartment_id, state, parcel_id, reserved_until_ms, code_hash, code_deadline_ms, "
    "disabled, local_ms"
)

_TEMPLATES = {
    "meta_get": "SELECT value FROM meta WHERE {c} key = ?",
    "meta_bump": "UPDATE meta SET value = value + 1 WHERE {c} key = ?",
    "meta_set": "UPDATE meta SET value = ? WHERE {c} key = ?",
    "kv_get": "SELECT value FROM kv WHERE {c} key = ?",
    "kv_put": "INSERT INTO kv ({cc}key, value) VALUES ({cv}?, ?) "
    "ON CONFLICT ({cc}key) DO UPDATE SET value = excluded.value",
    "compartments_all": "SELECT " + COMPARTMENT_COLUMNS + " FROM compartments {w}",  # noqa: S608 - constants
    "compartment_put": "INSERT OR REPLACE INTO compartments ({cc}" + COMPARTMENT_COLUMNS + ") "
    "VALUES ({cv}?, ?, ?, ?, ?, ?, ?, ?)",
    "command_get": "SELECT result FROM commands WHERE {c} command_id = ?",
    "command_begin": "INSERT INTO commands ({cc}command_id, received_ms, state) "
    "VALUES ({cv}?, ?, 'started')",
    "command_done": "INSERT INTO commands ({cc}command_id, received_ms, state, result) "
    "VALUES ({cv}?, ?, 'done', ?) ON CONFLICT ({cc}command_id) DO UPDATE "
    "SET state = 'done', result = excluded.result",
    "commands_started": "SELECT command_id FROM commands WHERE {c} state = 'started' "
    "ORDER BY received_ms",
    "commands_prune": "DELETE FROM commands WHERE {c} state = 'done' AND received_ms < ?",
    "outbox_peek": "SELECT id, kind, seq, payload FROM outbox {w} ORDER BY id LIMIT ?",
    "outbox_oldest_event": "SELECT MIN(created_ms) FROM outbox WHERE {c} business = 1",
    "outbox_totals": "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox {w}",
    "outbox_add": "INSERT INTO outbox ({cc}kind, seq, business, payload, created_ms, size) "
    "VALUES ({cv}?, ?, ?, ?, ?, ?)",
    "outbox_sheddable": "SELECT id, size FROM outbox WHERE {c} business = 0 "
    "ORDER BY kind = 'telemetry' DESC, id LIMIT 64",
    "outbox_drop": "DELETE FROM outbox WHERE {c} id = ?",
    "outbox_drop_telemetry": "DELETE FROM outbox WHERE {c} kind = 'telemetry' RETURNING size",
    # MARKS becomes "?,?,..." (one per acknowledged id) at the call: placeholders only.
    "outbox_keep": "INSERT OR REPLACE INTO sent SELECT {cs}seq, payload FROM outbox "
    "WHERE {c} id IN (MARKS) AND kind = 'event'",
    "outbox_ack": "DELETE FROM outbox WHERE {c} id IN (MARKS) RETURNING size",
    "sent_trim": "DELETE FROM sent WHERE {c} seq <= ?",
    "outbox_events_between": "SELECT seq FROM outbox WHERE {c} kind = 'event' "
    "AND seq BETWEEN ? AND ?",
    "sent_between": "SELECT seq, payload FROM sent WHERE {c} seq BETWEEN ? AND ? ORDER BY seq",
}


def _render(fleet: bool) -> Mapping[str, str]:
    keyed = {"c": "cabinet = ? AND", "w": "WHERE cabinet = ?", "cc": "cabinet, ", "cv": "?, "}
    parts = keyed | {"cs": "cabinet, "} if fleet else dict.fromkeys((*keyed, "cs"), "")
    # Collapse the double space an empty {c} leaves ("WHERE  key"), and a trailing one ({w}).
    out = {
        name: " ".join(template.format(**parts).split()) for name, template in _TEMPLATES.items()
    }
    return MappingProxyType(out)


OWN_FILE = _render(fleet=False)
SHARED_FILE = _render(fleet=True)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows a statement touches: the file's only cabinet, or one cabinet of a fleet's file.

    Args:
        cabinet: the cabinet id in a shared file; None for a cabinet's own file.
    """

    cabinet: str | None = None

    @property
    def sql(self) -> Mapping[str, str]:
        return OWN_FILE if self.cabinet is None else SHARED_FILE

    def args(self, *params: Any) -> tuple[Any, ...]:
        """The statement's parameters, the cabinet id first when the file is shared."""
        return params if self.cabinet is None else (self.cabinet, *params)

    def rows(self, params: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """``args`` for each row of an ``executemany``."""
        return params if self.cabinet is None else [(self.cabinet, *p) for p in params]


OWN = Scope()
