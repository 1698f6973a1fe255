"""The regulator export for a reporting period, as JSON or CSV (docs/regulator-export.md).

The JSON document follows ``docs/regulator-export.schema.json``; the CSV carries the same figures
in long form (``section,site,customer_class,metric,value``), one figure per line.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from hub.couriers.conduct import KINDS, score
from hub.errors import InvalidArgument
from hub.models import ParcelState
from hub.store import Store, Tx
from hub.store.repo import couriers as couriers_repo
from hub.store.repo import partners as partners_repo
from hub.store.repo import reporting as repo

SCHEMA_ID = "lockerhub.regulator-export/2"
# A period longer than this is refused (one export per month or quarter is the use).
MAX_PERIOD_MS = 400 * 86_400_000
# Transitions counted per outlet, as "parcels_<state>".
COUNTED = (
    ParcelState.DEPOSITED,
    ParcelState.PICKED_UP,
    ParcelState.EXPIRED,
    ParcelState.WITHDRAWN,
    ParcelState.RETURNED,
    ParcelState.CANCELLED,
)
CITY_OPERATOR = "city_operator"
HELD_NOTE = (
    "parcels under a screening hold at some time in the period, at the site that screened them "
    "(a parcel's latest screening: a re-screening replaces an earlier one)"
)
COURIER_NOTE = (
    "couriers named by a deposit or withdrawal or by a conduct entry in the period, or on the "
    "bad-conduct list; score as of the period's end; the list as of the export (removals are "
    "not dated)"
)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def customer_class(carrier: str) -> str:
    """The customer class of a parcel: its carrier ("carrier:<id>"), or the city operator."""
    return f"carrier:{carrier}" if carrier else CITY_OPERATOR


async def build(store: Store, from_ms: int, to_ms: int, *, now_ms: int) -> dict[str, Any]:
    """The export of [from_ms, to_ms) as a JSON-ready dict.

    Raises:
        InvalidArgument: an empty, reversed, too long or implausible period.
    """
    if not 0 < from_ms < to_ms or to_ms - from_ms > MAX_PERIOD_MS or to_ms > 4_102_444_800_000:
        raise InvalidArgument("period: from_ms < to_ms, at most 400 days, before 2100")
    async with store.read() as tx:
        outlets = await repo.outlets(tx)
        moved = await repo.transitions_by_site(tx, from_ms, to_ms)
        waybills = await repo.waybills_by_carrier(tx, from_ms, to_ms)
        consent = await repo.consent_counts(tx, from_ms, to_ms)
        incidents = await partners_repo.incidents(tx, from_ms, to_ms)
        conduct = await courier_conduct(tx, from_ms, to_ms)
        held = await repo.held_by_site(tx, from_ms, to_ms)
    incident_rows = []
    for i in incidents:
        start, end = max(i.started_ms, from_ms), min(i.ended_ms or to_ms, to_ms, now_ms)
        incident_rows.append(
            {
                "id": str(i.id),
                "cause": i.cause,
                "site": i.site,
                "started": _iso(i.started_ms),
                "ended": _iso(i.ended_ms) if i.ended_ms else None,
                "seconds_in_period": max(0, end - start) // 1000,
            }
        )
    outlet_rows = []
    for o in outlets:
        row: dict[str, Any] = {
            "site": o.site,
            "name": o.name,
            "filing_number": o.filing_number,
            "site_type": o.site_type,
            "public_service": o.public_service,
            "parcels_announced": moved.get((o.site, str(ParcelState.ANNOUNCED)), 0),
        }
        for state in COUNTED:
            row[f"parcels_{state}"] = moved.get((o.site, str(state)), 0)
        row["held_parcels"] = held.get(o.site, 0)
        row["incidents"] = sum(1 for i in incidents if i.site in (o.site, ""))
        outlet_rows.append(row)
    total = {
        state: sum(r[f"parcels_{state}"] for r in outlet_rows)
        for state in (ParcelState.ANNOUNCED, *COUNTED)
    }
    return {
        "schema": SCHEMA_ID,
        "period": {"from": _iso(from_ms), "to": _iso(to_ms), "from_ms": from_ms, "to_ms": to_ms},
        "generated": _iso(now_ms),
        "outlets": outlet_rows,
        "volumes": {str(k): v for k, v in total.items()},
        "electronic_waybill": [
            {
                "customer_class": customer_class(carrier),
                "parcels": n,
                "electronic_waybill": e,
                "share": round(e / n, 4) if n else 0.0,
            }
            for carrier, n, e in waybills
        ],
        "returns": {
            "withdrawn": total[ParcelState.WITHDRAWN],
            "returned": total[ParcelState.RETURNED],
        },
        "held_parcels": {"count": sum(held.values()), "note": HELD_NOTE},
        "locker_consent": {k: consent.get(k, 0) for k in ("given", "unspecified")},
        "incidents": incident_rows,
        "courier_conduct": conduct,
    }


async def courier_conduct(tx: Tx, from_ms: int, to_ms: int) -> dict[str, Any]:
    """The courier conduct section of [from_ms, to_ms) (docs/regulator-export.md)."""
    handled = await couriers_repo.handled_in_period(tx, from_ms, to_ms)
    entries = await couriers_repo.conduct_in_period(tx, from_ms, to_ms)
    to_date = await couriers_repo.conduct_in_period(tx, 0, to_ms)
    listed = {b.courier_id for b in await couriers_repo.blocklist(tx) if b.since_ms < to_ms}
    carriers = {c.courier_id: c.carrier_id for c in await couriers_repo.list_couriers(tx)}
    rows: list[dict[str, Any]] = []
    for cid in sorted(set(handled) | set(entries) | listed):
        deposits, withdrawals = handled.get(cid, (0, 0))
        rows.append(
            {
                "courier_id": cid,
                "customer_class": customer_class(carriers.get(cid, "")),
                "deposits": deposits,
                "withdrawals": withdrawals,
                "entries": {k: entries.get(cid, {}).get(k, 0) for k in KINDS},
                "score": score(to_date.get(cid, {})),
                "on_bad_conduct_list": cid in listed,
            }
        )
    return {
        "available": True,
        "note": COURIER_NOTE,
        "couriers_active": len(handled),
        "entries": {k: sum(r["entries"][k] for r in rows) for k in KINDS},
        "bad_conduct_list": len(listed),
        "mean_score": round(sum(r["score"] for r in rows) / len(rows), 2) if rows else None,
        "couriers": rows,
    }


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


def to_csv(report: dict[str, Any]) -> str:
    """The same figures in long form: one ``section,site,customer_class,metric,value`` line each."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("section", "site", "customer_class", "metric", "value"))
    for key in ("from", "to"):
        w.writerow(("period", "", "", key, report["period"][key]))
    for o in report["outlets"]:
        for metric, value in o.items():
            if metric != "site":
                w.writerow(("outlet", o["site"], "", metric, _cell(value)))
    for metric, value in report["volumes"].items():
        w.writerow(("volumes", "", "", metric, value))
    for e in report["electronic_waybill"]:
        for metric in ("parcels", "electronic_waybill", "share"):
            w.writerow(("electronic_waybill", "", e["customer_class"], metric, e[metric]))
    for metric, value in report["returns"].items():
        w.writerow(("returns", "", "", metric, value))
    w.writerow(("held_parcels", "", "", "count", report["held_parcels"]["count"]))
    for metric, value in report["locker_consent"].items():
        w.writerow(("locker_consent", "", "", metric, value))
    for i in report["incidents"]:
        for metric in ("cause", "started", "ended", "seconds_in_period"):
            w.writerow((f"incident:{i['id']}", i["site"], "", metric, _cell(i[metric])))
    cc = report["courier_conduct"]
    for metric in ("available", "couriers_active", "bad_conduct_list", "mean_score"):
        w.writerow(("courier_conduct", "", "", metric, _cell(cc[metric])))
    for kind, n in cc["entries"].items():
        w.writerow(("courier_conduct", "", "", f"entries:{kind}", n))
    for c in cc["couriers"]:
        section, cls = f"courier:{c['courier_id']}", c["customer_class"]
        for metric in ("deposits", "withdrawals", "score", "on_bad_conduct_list"):
            w.writerow((section, "", cls, metric, _cell(c[metric])))
        for kind, n in c["entries"].items():
            w.writerow((section, "", cls, f"entries:{kind}", n))
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
