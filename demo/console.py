"""What the demo's console shows: one line per parcel step and per alarm, the chatter in a log file.

The lines come from the hub's ``WatchEvents`` stream over gRPC, the same one `lockerhub ops watch`
follows; the reserved parcels it sees are written to the work directory for ``lockerhub sim``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc

from demo import workdir as files
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc

log = logging.getLogger(__name__)

_RETRY_S = 1.0
_DONE = frozenset(
    {
        common_pb2.PARCEL_STATE_PICKED_UP,
        common_pb2.PARCEL_STATE_WITHDRAWN,
        common_pb2.PARCEL_STATE_RETURNED,
        common_pb2.PARCEL_STATE_CANCELLED,
    }
)


@contextlib.contextmanager
def chatter_to_file(path: Path, *, verbose: bool) -> Iterator[None]:
    """Send log records to ``path``; the console keeps warnings and errors unless ``verbose``."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    quietened = []
    if not verbose:
        for h in root.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                quietened.append((h, h.level))
                h.setLevel(max(h.level, logging.WARNING))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        for h, level in quietened:
            h.setLevel(level)


def _name(enum: object, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower()  # type: ignore[attr-defined]
    except ValueError:
        return str(value)


def event_line(event: dispatch_pb2.LiveEvent) -> str:
    """One readable line: local time, parcel or alarm, what happened, where, who."""
    stamp = dt.datetime.fromtimestamp(event.ts_ms / 1000, tz=dt.UTC)
    when = stamp.astimezone().strftime("%H:%M:%S")
    if event.WhichOneof("body") == "parcel":
        t = event.parcel.transition
        state = _name(common_pb2.ParcelState, t.state, "PARCEL_STATE_")
        where = f" at {t.location}" if t.location else ""
        who = f" by {t.actor}" if t.actor else ""
        return f"{when}  parcel {event.parcel.parcel_id:<14} {state:<11}{where}{who}"
    a = event.alarm
    kind = _name(common_pb2.AlarmKind, a.kind, "ALARM_KIND_")
    where = "/".join(x for x in (a.site, a.device_id, a.compartment_id) if x)
    return f"{when}  ALARM  {kind:<20} {a.status:<11} at {where}  (id {a.alarm_id})"


def _cabinet(location: str) -> str | None:
    parts = location.split("/")
    return parts[1] if len(parts) >= 2 and parts[1] else None


async def follow_events(grpc_address: str, workdir: Path) -> None:
    """Print the hub's live events and keep ``parcels.json`` (parcel -> cabinet) until cancelled."""
    reserved: dict[str, str] = {}
    cursor = ""
    async with grpc.aio.insecure_channel(grpc_address) as channel:
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        while True:
            try:
                call = stub.WatchEvents(dispatch_pb2.WatchEventsRequest(cursor=cursor))
                async for event in call:
                    cursor = event.cursor
                    print(event_line(event), flush=True)
                    if event.WhichOneof("body") != "parcel":
                        continue
                    t = event.parcel.transition
                    cabinet = _cabinet(t.location)
                    pid = event.parcel.parcel_id
                    if t.state == common_pb2.PARCEL_STATE_RESERVED and cabinet:
                        reserved[pid] = cabinet
                    elif t.state in _DONE and pid in reserved:
                        del reserved[pid]  # a long demo keeps only the parcels still in play
                    else:
                        continue
                    snapshot = dict(reserved)
                    await asyncio.to_thread(files.write_json, workdir / files.PARCELS, snapshot)
            except grpc.aio.AioRpcError as exc:
                log.info("demo console: event stream ended (%s), resuming", exc.code().name)
            await asyncio.sleep(_RETRY_S)
