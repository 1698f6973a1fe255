"""Lost device events: a hole in a device's sequence is asked back with ResendEvents.

One hub applies a device's events in the order they arrive, so a hole is a loss and is asked
for at once. Several hubs behind one shared subscription apply a device's events in whatever
order their batches commit, so a hole there is nearly always an event still in another hub's
batch: with ``cluster.resend_grace_s`` set, the hub only marks the device (``gap_since_ms``,
``gap_from``), and the lifecycle sweeper asks for what is still missing once the mark has
outlived the grace (:meth:`Gaps.sweep`, run by the one hub holding the sweeper lease).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hub.devices.commands import CommandService, PendingCommand
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from hub.store.repo import events as events_repo
from hub.store.repo import gaps as gaps_repo
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)
# How long a device may take to act on a ResendEvents request.
RESEND_TTL_MS = 60_000
# A hole a telemetry sample reveals above the highest event seen is checked this much later:
# events the broker took just before the sample may still be on their way (a hub's backlog).
REPORTED_WAIT_MS = 30_000


def holes(present: Sequence[int], low: int, high: int) -> tuple[int, int] | None:
    """The lowest and highest seq in ``low..high`` missing from sorted ``present`` (all within
    the range), or None when none is."""
    if len(present) >= high - low + 1:
        return None
    first = low
    for seq in present:
        if seq != first:
            break
        first += 1
    last = high
    for seq in reversed(present):
        if seq != last:
            break
        last -= 1
    return first, last


class Gaps:
    """Asks devices for the events missing from their sequence (see the module docstring)."""

    def __init__(self, commands: CommandService, *, grace_ms: int = 0) -> None:
        self._commands = commands
        self._grace_ms = grace_ms

    async def found(
        self, tx: Tx, device: str, site: str, first: int, last: int, now_ms: int
    ) -> PendingCommand | None:
        """Events ``first..last`` of ``device`` are missing: ask now (the command to publish
        after the commit), or mark the device for the sweeper when a grace is set."""
        if self._grace_ms > 0:
            await gaps_repo.mark_gap(tx, device, first, now_ms)
            return None
        return await self._request(tx, device, site, first, last)

    async def reported(self, tx: Tx, device: str, first: int, now_ms: int) -> None:
        """The device says it assigned events from ``first`` on that this hub has not seen: mark
        the device, for the sweeper to ask for what is still missing after REPORTED_WAIT_MS (and
        the grace)."""
        await gaps_repo.mark_gap(tx, device, first, now_ms + REPORTED_WAIT_MS)

    async def sweep(self, store: Store, now_ms: int, limit: int) -> list[PendingCommand]:
        """Ask for what is still missing of the holes marked before the grace; returns the
        commands to publish."""
        pending: list[PendingCommand] = []
        cutoff = now_ms - self._grace_ms
        async with store.transaction() as tx:
            due = await gaps_repo.gaps_due(tx, cutoff, limit)
            if not due:
                return pending
            await devices_repo.lock_in_order(tx, due)
            for mark in await gaps_repo.gap_marks(tx, due):
                if not 0 < mark.since_ms <= cutoff:
                    continue  # cleared or re-marked by another sweep meanwhile
                await gaps_repo.clear_gap(tx, mark.device)
                present = await events_repo.seqs_between(tx, mark.device, mark.first, mark.last)
                missing = holes(present, mark.first, mark.last)
                if missing is not None:
                    pending.append(await self._request(tx, mark.device, mark.site, *missing))
        return pending

    async def _request(
        self, tx: Tx, device: str, site: str, from_seq: int, to_seq: int
    ) -> PendingCommand:
        log.info("%s: events %d-%d missing, asking for a resend", device, from_seq, to_seq)
        await devices_repo.set_resend_requested(tx, device, to_seq)
        return await self._commands.create(
            tx,
            device_id=device,
            site=site,
            command=device_pb2.Command(
                resend_events=device_pb2.ResendEvents(from_seq=from_seq, to_seq=to_seq)
            ),
            ttl_ms=RESEND_TTL_MS,
            actor="hub",
        )
