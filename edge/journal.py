"""The outbox tables (outbox, sent, the seq and full flags in meta) written inside one transaction.

A :class:`Journal` lives for one transaction on the database thread. It counts what it changes in a
draft of :class:`OutboxCounters`; the store replaces its counters with the draft only after the
commit succeeded, so a rolled-back transaction leaves the counters as they were.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from edge.errors import ResendWindowError
from edge.sql import OWN, Scope
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2

# Once full, the outbox reports full until it drains below this share of its bound (hysteresis).
FULL_CLEAR_RATIO = 0.9


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A message waiting for the broker's acknowledgement."""

    id: int
    kind: Kind
    seq: int | None
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxCounters:
    """What the outbox holds, as committed (replaced whole after each commit)."""

    depth: int = 0
    size: int = 0
    overflow: int = 0
    full: bool = False
    full_total: int = 0
    last_seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxBound:
    """The outbox bound in entries and payload bytes, and the resend window."""

    max_entries: int
    max_bytes: int
    resend_window: int


def load_counters(
    conn: sqlite3.Connection, overflow: int = 0, scope: Scope = OWN
) -> OutboxCounters:
    """The counters as the database has them (``overflow`` is per process, not persisted)."""
    depth, size = conn.execute(scope.sql["outbox_totals"], scope.args()).fetchone()
    return OutboxCounters(
        depth=int(depth),
        size=int(size),
        overflow=overflow,
        full=bool(meta(conn, "outbox_full", scope)),
        full_total=meta(conn, "outbox_full_total", scope),
        last_seq=meta(conn, "last_seq", scope),
    )


def meta(conn: sqlite3.Connection, key: str, scope: Scope = OWN) -> int:
    row = conn.execute(scope.sql["meta_get"], scope.args(key)).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


class Journal:
    """Outbox writes within one transaction, counted into a draft of the counters."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        counters: OutboxCounters,
        bound: OutboxBound,
        scope: Scope = OWN,
    ) -> None:
        self.conn = conn
        self.scope = scope
        self._bound = bound
        self.counters = counters

    def execute(self, name: str, *params: object) -> sqlite3.Cursor:
        """Run the named statement of ``edge.sql`` for this journal's cabinet."""
        return self.conn.execute(self.scope.sql[name], self.scope.args(*params))

    def meta(self, key: str) -> int:
        return meta(self.conn, key, self.scope)

    def _count(self, entries: int, size: int, *, shed: int = 0) -> None:
        c = self.counters
        self.counters = dataclasses.replace(
            c, depth=c.depth + entries, size=c.size + size, overflow=c.overflow + shed
        )

    def _over(self, ratio: float = 1.0) -> bool:
        c, b = self.counters, self._bound
        return c.depth >= b.max_entries * ratio or c.size >= b.max_bytes * ratio

    def append_event(self, event: device_pb2.DeviceEvent, now_ms: int) -> OutboxEntry:
        """Give ``event`` the next seq, a fresh event id and (if unset) ``ts_ms``; queue it."""
        self.execute("meta_bump", "last_seq")
        event.seq = self.meta("last_seq")
        self.counters = dataclasses.replace(self.counters, last_seq=event.seq)
        event.event_id = str(uuid.uuid4())
        if not event.ts_ms:
            event.ts_ms = now_ms
        return self.append_raw(
            Kind.EVENT, event.seq, event.SerializeToString(deterministic=True), now_ms
        )

    def append_raw(self, kind: Kind, seq: int | None, payload: bytes, now_ms: int) -> OutboxEntry:
        cur = self.execute(
            "outbox_add", kind.value, seq, int(kind is Kind.EVENT), payload, now_ms, len(payload)
        )
        assert cur.lastrowid is not None
        self._count(1, len(payload))
        return OutboxEntry(cur.lastrowid, kind, seq, payload)

    def enforce_bound(self, now_ms: int) -> list[OutboxEntry]:
        """Shed non-business entries above the bound; raise the OUTBOX_FULL flag and alarm."""
        while self._over():
            # Telemetry first (a newer sample supersedes it), then the oldest command results
            # (the hub times commands out anyway). Business events are never dropped.
            rows = self.execute("outbox_sheddable").fetchall()
            if not rows:
                break
            for row_id, size in rows:
                if not self._over():
                    break
                self.execute("outbox_drop", row_id)
                self._count(-1, -int(size), shed=1)
        if not self._over() or self.counters.full:
            return []
        self.counters = dataclasses.replace(
            self.counters, full=True, full_total=self.counters.full_total + 1
        )
        self.execute("meta_set", 1, "outbox_full")
        self.execute("meta_bump", "outbox_full_total")
        c = self.counters
        alarm = device_pb2.DeviceEvent(
            alarm=device_pb2.AlarmRaised(
                kind=common_pb2.ALARM_KIND_OUTBOX_FULL,
                detail=f"outbox at its bound ({c.depth} entries, {c.size} bytes); "
                "events kept, telemetry coalesced",
                active=True,
            )
        )
        return [self.append_event(alarm, now_ms)]

    def coalesce_telemetry(self, payload: bytes, now_ms: int) -> None:
        """Keep ``payload`` as the only telemetry sample waiting."""
        for (size,) in self.execute("outbox_drop_telemetry").fetchall():
            self._count(-1, -int(size))
        self.append_raw(Kind.TELEMETRY, None, payload, now_ms)
        self.enforce_bound(now_ms)

    def ack(self, entry_ids: Sequence[int], now_ms: int) -> None:
        """Remove acknowledged entries; their events enter the resend window."""
        # Only "?" placeholders are interpolated; the ids are bound parameters.
        marks = ",".join("?" * len(entry_ids))
        sql, args = self.scope.sql, self.scope.args(*entry_ids)
        self.conn.execute(sql["outbox_keep"].replace("MARKS", marks), args)
        drop = self.conn.execute(sql["outbox_ack"].replace("MARKS", marks), args)
        for (size,) in drop.fetchall():
            self._count(-1, -int(size))
        last = self.meta("last_seq")
        self.execute("sent_trim", last - self._bound.resend_window)
        if self.counters.full and not self._over(FULL_CLEAR_RATIO):
            self.counters = dataclasses.replace(self.counters, full=False)
            self.execute("meta_set", 0, "outbox_full")
            clear = device_pb2.DeviceEvent(
                alarm=device_pb2.AlarmRaised(
                    kind=common_pb2.ALARM_KIND_OUTBOX_FULL,
                    detail="outbox drained below its bound",
                    active=False,
                )
            )
            self.append_event(clear, now_ms)

    def resend(self, from_seq: int, to_seq: int, now_ms: int) -> int:
        """Queue kept events ``from_seq..to_seq`` again; how many were queued.

        Raises:
            ResendWindowError: part of the range is neither pending nor in the resend window.
        """
        last = self.meta("last_seq")
        window = self._bound.resend_window
        if not 1 <= from_seq <= to_seq <= last:
            raise ResendWindowError(f"range {from_seq}..{to_seq} outside 1..{last}")
        if to_seq - from_seq >= window:
            raise ResendWindowError(f"range longer than the window ({window})")
        pending = {int(r[0]) for r in self.execute("outbox_events_between", from_seq, to_seq)}
        kept = [(int(r[0]), bytes(r[1])) for r in self.execute("sent_between", from_seq, to_seq)]
        if len(pending | {seq for seq, _ in kept}) != to_seq - from_seq + 1:
            raise ResendWindowError(
                f"events {from_seq}..{to_seq} are no longer in the resend window"
            )
        queued = 0
        for seq, payload in kept:
            if seq not in pending:
                self.append_raw(Kind.EVENT, seq, payload, now_ms)
                queued += 1
        return queued
