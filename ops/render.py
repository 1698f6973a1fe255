"""Operator output: aligned text tables and one-line live events."""

from __future__ import annotations

import datetime as _dt
import unicodedata
from collections.abc import Sequence
from typing import Any

from lockerhub.v1 import common_pb2, dispatch_pb2, fleet_pb2


def safe(value: Any) -> str:
    """``str(value)`` with control characters (escape sequences, newlines, bidi overrides)
    shown escaped, so that text from a device or another operator cannot drive the terminal."""
    text = str(value)
    if all(unicodedata.category(c)[0] != "C" for c in text):
        return text
    return "".join(c if unicodedata.category(c)[0] != "C" else ascii(c)[1:-1] for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (cells through :func:`safe`)."""
    cells = [[safe(c) for c in headers], *[[safe(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def enum_name(wrapper: Any, value: int, prefix: str) -> str:
    """``wrapper.Name(value)`` without ``prefix``, lower case (the number when unknown)."""
    try:
        return str(wrapper.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return str(value)


def parcel_rows(parcels: Sequence[dispatch_pb2.Parcel]) -> list[tuple[Any, ...]]:
    return [
        (
            p.parcel_id,
            enum_name(common_pb2.ParcelState, p.state, "PARCEL_STATE_"),
            p.destination_site,
            p.cabinet_id,
            p.compartment_id,
            p.recipient_phone_masked,
        )
        for p in parcels
    ]


PARCEL_HEADERS = ("PARCEL", "STATE", "SITE", "CABINET", "COMPARTMENT", "PHONE")


def cabinet_rows(cabinets: Sequence[fleet_pb2.Cabinet]) -> list[tuple[Any, ...]]:
    return [
        (
            c.cabinet_id,
            c.site,
            "online" if c.online else "offline",
            c.boot_count,
            f"{c.energy_wh:.1f}",
            f"{c.power_w:.1f}",
        )
        for c in cabinets
    ]


CABINET_HEADERS = ("CABINET", "SITE", "STATUS", "BOOT", "ENERGY_WH", "POWER_W")


ALARM_HEADERS = ("ALARM", "KIND", "SITE", "DEVICE", "COMPARTMENT", "STATUS", "RAISED_MS", "DETAIL")


def alarm_rows(alarms: Sequence[fleet_pb2.Alarm]) -> list[tuple[Any, ...]]:
    return [
        (
            a.alarm_id,
            enum_name(common_pb2.AlarmKind, a.kind, "ALARM_KIND_"),
            a.site,
            a.device_id,
            a.compartment_id,
            a.status + (f" ({a.acknowledged_by})" if a.acknowledged_by else ""),
            a.raised_ms,
            a.detail,
        )
        for a in alarms
    ]


def event_line(e: dispatch_pb2.LiveEvent) -> str:
    """One live event as a fixed-width line: cursor, time, what, state, actor/where."""
    when = _dt.datetime.fromtimestamp(e.ts_ms / 1000, tz=_dt.UTC).strftime("%H:%M:%S")
    if e.WhichOneof("body") == "parcel":
        t = e.parcel.transition
        what = f"parcel {e.parcel.parcel_id}"
        state = enum_name(common_pb2.ParcelState, t.state, "PARCEL_STATE_")
        extra = f"{t.actor} @ {t.location}"
    elif e.WhichOneof("body") == "screening":
        what = f"screening {e.screening.parcel_id}"
        state = e.screening.status
        extra = f"{e.screening.actor} @ {e.screening.station_id}"
    else:
        a = e.alarm
        what = f"alarm {a.alarm_id} {enum_name(common_pb2.AlarmKind, a.kind, 'ALARM_KIND_')}"
        state = a.status
        extra = "/".join(x for x in (a.site, a.device_id, a.compartment_id) if x)
    return safe(f"{e.cursor:>8}  {when}  {what:<36}  {state:<12}  {extra}")
