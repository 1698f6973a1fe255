"""Issue 15, the regulator export: a simulated month in a real store, exported and validated
against the published JSON Schema, its figures checked against the simulation; CSV the same."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hub.couriers.conduct import KINDS
from hub.errors import InvalidArgument
from hub.models import Dims, ParcelRecord, ParcelState, Transition, Zone
from hub.reporting import export
from hub.settings import SiteSettings
from hub.store import Store
from hub.store.repo import couriers as couriers_repo
from hub.store.repo import devices as devices_repo
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import partners as partners_repo
from hub.store.repo import privacy as privacy_repo
from hub.store.repo import reporting as reporting_repo
from hub.store.repo import sorting as sorting_repo
from ops import cli as ops
from tests.hub.conftest import HubHarness

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "docs" / "regulator-export.schema.json").read_text()
)
HOUR = 3_600_000
DAY = 24 * HOUR
S = ParcelState


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


FROM, TO = ms("2026-11-01T00:00:00"), ms("2026-12-01T00:00:00")
SITES = ("S-NORTH", "S-SOUTH", "S-EAST")


@dataclass
class Sim:
    parcel_id: str
    site: str
    carrier: str
    ewaybill: bool
    consent: str
    created: int
    steps: list[tuple[ParcelState, int]]
    courier: str  # who deposits and withdraws it ("" = not named)


def simulate(seed: int = 15) -> list[Sim]:
    """Parcels over the month and a few days either side, each with its fate."""
    rng = random.Random(seed)
    out = []
    for day in range(-3, 33):
        for site in SITES[:2]:  # S-EAST has no parcels: an outlet with zero volumes
            for n in range(rng.randint(2, 6)):
                t0 = FROM + day * DAY + rng.randint(0, 20) * HOUR
                fate = rng.choice(("picked", "picked", "returned", "cancelled", "open"))
                steps = [(S.ANNOUNCED, t0), (S.RESERVED, t0)]
                if fate == "cancelled":
                    steps.append((S.CANCELLED, t0 + HOUR))
                elif fate != "open":
                    steps.append((S.DEPOSITED, t0 + 2 * HOUR))
                    if fate == "picked":
                        steps.append((S.PICKED_UP, t0 + 5 * HOUR))
                    else:
                        steps += [
                            (S.EXPIRED, t0 + 50 * HOUR),
                            (S.WITHDRAWN, t0 + 52 * HOUR),
                            (S.RETURNED, t0 + 60 * HOUR),
                        ]
                out.append(
                    Sim(
                        f"P{day + 3:02d}{site[2]}{n}",
                        site,
                        rng.choice(("SF", "YTO", "")),
                        rng.random() < 0.7,
                        rng.choice(("given", "unspecified")),
                        t0,
                        steps,
                        rng.choice(("K-1", "K-2", "K-3", "")),
                    )
                )
    return out


async def load(store: Store, sims: list[Sim]) -> None:
    async with store.transaction() as tx:
        await devices_repo.upsert_sites(tx, [SiteSettings(id=s, name=s.title()) for s in SITES])
        await reporting_repo.set_filing(
            tx, site="S-NORTH", filing_number="SH-2026-0042", site_type="smart_locker",
            public_service=True,
        )  # fmt: skip
        await reporting_repo.set_filing(
            tx, site="S-SOUTH", filing_number="SH-2026-0043", site_type="station",
            public_service=False,
        )  # fmt: skip
        for p in sims:
            record = ParcelRecord(
                parcel_id=p.parcel_id,
                state=S.ANNOUNCED,
                site=p.site,
                cabinet_id="",
                compartment_id="",
                dims=Dims(100, 100, 100),
                weight_g=500,
                zone=Zone.AMBIENT,
                phone_masked="138****0000",
                electronic_waybill=p.ewaybill,
                reusable_container=False,
                pickup_deadline_ms=0,
                carrier_id=p.carrier,
            )
            await parcels_repo.insert_parcel(
                tx, record, phone="13800000000", reservation_expires_ms=0, now_ms=p.created
            )
            await privacy_repo.set_consents(tx, [(p.consent, p.parcel_id)])
            for state, ts in p.steps:
                courier = p.courier if state in (S.DEPOSITED, S.WITHDRAWN) else ""
                await parcels_repo.add_transition(
                    tx, p.parcel_id, Transition(state, ts, "hub", "", courier=courier)
                )
            await parcels_repo.set_state(tx, p.parcel_id, p.steps[-1][0], p.steps[-1][1])
        for cid, carrier in (("K-1", "SF"), ("K-2", "YTO"), ("K-3", "SF"), ("K-4", "SF")):
            await couriers_repo.insert_courier(
                tx, courier_id=cid, carrier_id=carrier, name="n", phone_masked="", now_ms=FROM - DAY
            )
        for cid, kind, ts in CONDUCT:
            await couriers_repo.add_conduct(
                tx, cid, kind, parcel_id="", detail="", actor="hub", ts_ms=ts
            )
        for cid, since in LISTED:
            await couriers_repo.block(tx, cid, "reason", "admin", since)
        for i, (site, status, screened, released) in enumerate(SCREENINGS):
            pid = sims[i].parcel_id
            await sorting_repo.record_screening(tx, pid, site, "ST1", status, "x-ray", screened)
            if released:
                assert await sorting_repo.release(tx, pid, "admin", "checked", released)
        for cause, site, start, end in INCIDENTS:
            if end:
                await partners_repo.insert_closed_incident(
                    tx, cause=cause, site=site, started_ms=start, ended_ms=end
                )
            else:
                await partners_repo.open_incident(tx, cause=cause, site=site, started_ms=start)


INCIDENTS = (
    ("broker_down", "", ms("2026-11-10T01:00:00"), ms("2026-11-10T01:30:00")),
    ("site_offline", "S-NORTH", ms("2026-11-20T08:00:00"), ms("2026-11-20T09:15:00")),
    ("store_down", "", ms("2026-10-31T23:00:00"), ms("2026-11-01T01:00:00")),  # straddles
    ("site_offline", "S-SOUTH", ms("2026-11-30T23:00:00"), 0),  # still open
    ("broker_down", "", ms("2026-12-02T00:00:00"), ms("2026-12-02T00:10:00")),  # after
)


# Conduct entries straddling the period: before it (counts to the score, not to the period's
# entries), in it, after it (neither).
CONDUCT = (
    ("K-1", "late_deposit", FROM - HOUR),
    ("K-1", "complaint", FROM + DAY),
    ("K-2", "forced_open", FROM + 2 * DAY),
    ("K-2", "forced_open", TO - 1),
    ("K-3", "wrong_compartment", TO),
)
# Screenings of the first parcels (site, result, when, released when): held in the period and
# still held; held before and released in it; both before it; held after it; cleared in it;
# held and released in it. Three were under a hold during the period: two at S-NORTH.
SCREENINGS = (
    ("S-NORTH", "held", FROM + DAY, 0),
    ("S-NORTH", "held", FROM - DAY, FROM + HOUR),
    ("S-NORTH", "held", FROM - DAY, FROM - HOUR),
    ("S-NORTH", "held", TO, 0),
    ("S-SOUTH", "clear", FROM + DAY, 0),
    ("S-SOUTH", "held", FROM + DAY, FROM + 2 * DAY),
)
# The bad-conduct list: K-2 added in the period, K-4 (no activity) before it, K-3 after it.
LISTED = (("K-2", FROM + 3 * DAY), ("K-4", FROM - DAY), ("K-3", TO + HOUR))


async def test_a_simulated_month_exports_valid_and_right(tmp_path: Path) -> None:
    sims = simulate()
    async with Store(tmp_path / "hub.db") as store:
        await load(store, sims)
        report = await export.build(store, FROM, TO, now_ms=TO + DAY)
    jsonschema.validate(report, SCHEMA)
    # Round trip through the text the RPC sends.
    assert json.loads(export.to_json(report)) == report

    entered: Counter[tuple[str, str]] = Counter()
    for p in sims:
        for state, ts in p.steps:
            if FROM <= ts < TO:
                entered[(p.site, str(state))] += 1
    assert sum(entered.values()) > 300  # a busy month, not a trivial one
    outlets = {o["site"]: o for o in report["outlets"]}
    assert list(outlets) == sorted(SITES)  # ordered by site id
    for site in SITES:
        for state in ("announced", "deposited", "picked_up", "expired", "withdrawn",
                      "returned", "cancelled"):  # fmt: skip
            assert outlets[site][f"parcels_{state}"] == entered[(site, state)], (site, state)
    held = {site: o["held_parcels"] for site, o in outlets.items()}
    assert held == {"S-NORTH": 2, "S-SOUTH": 1, "S-EAST": 0}
    assert report["held_parcels"]["count"] == 3
    assert outlets["S-NORTH"]["filing_number"] == "SH-2026-0042"
    assert (outlets["S-NORTH"]["site_type"], outlets["S-NORTH"]["public_service"]) == (
        "smart_locker",
        True,
    )
    assert outlets["S-EAST"]["filing_number"] is None  # not filed: shown, not invented
    assert outlets["S-EAST"]["parcels_announced"] == 0
    # Hub-wide incidents count at every outlet; a site's own only at it.
    assert (outlets["S-NORTH"]["incidents"], outlets["S-SOUTH"]["incidents"]) == (3, 3)
    assert outlets["S-EAST"]["incidents"] == 2
    assert report["volumes"]["returned"] == sum(entered[(s, "returned")] for s in SITES)
    assert report["returns"] == {
        "withdrawn": report["volumes"]["withdrawn"],
        "returned": report["volumes"]["returned"],
    }

    in_month = [p for p in sims if FROM <= p.created < TO]
    by_class: dict[str, list[Sim]] = {}
    for p in in_month:
        by_class.setdefault(export.customer_class(p.carrier), []).append(p)
    assert {
        e["customer_class"]: (e["parcels"], e["electronic_waybill"])
        for e in report["electronic_waybill"]
    } == {k: (len(v), sum(p.ewaybill for p in v)) for k, v in by_class.items()}
    for e in report["electronic_waybill"]:
        assert e["share"] == round(e["electronic_waybill"] / e["parcels"], 4)
    assert set(by_class) == {"carrier:SF", "carrier:YTO", "city_operator"}
    assert report["locker_consent"] == {
        "given": sum(p.consent == "given" for p in in_month),
        "unspecified": sum(p.consent == "unspecified" for p in in_month),
    }

    seconds = {i["cause"] + ":" + i["site"]: i["seconds_in_period"] for i in report["incidents"]}
    assert seconds == {
        "store_down:": 3600,  # only the part inside the period
        "broker_down:": 1800,
        "site_offline:S-NORTH": 4500,
        "site_offline:S-SOUTH": 3600,  # open: counted to the period's end
    }
    cc = report["courier_conduct"]
    active = {
        p.courier
        for p in sims
        for state, ts in p.steps
        if p.courier and state in (S.DEPOSITED, S.WITHDRAWN) and FROM <= ts < TO
    }
    assert active == {"K-1", "K-2", "K-3"}  # the simulation is busy enough for all three
    assert (cc["available"], cc["couriers_active"], cc["bad_conduct_list"]) == (True, 3, 2)
    assert cc["entries"] == {
        "late_deposit": 0,
        "forced_open": 2,
        "wrong_compartment": 0,
        "left_past_deadline": 0,
        "complaint": 1,
    }
    # Scores at the period's end (docs/hub.md weights): K-1 late 5 + complaint 15; K-2 two
    # forced opens of 20; K-3's entry is after the period.
    couriers = {c["courier_id"]: c for c in cc["couriers"]}
    assert {k: (c["score"], c["on_bad_conduct_list"]) for k, c in couriers.items()} == {
        "K-1": (80, False),
        "K-2": (60, True),
        "K-3": (100, False),
        "K-4": (100, True),
    }
    assert cc["mean_score"] == 85.0
    for cid, c in couriers.items():
        handled = Counter(
            state
            for p in sims
            if p.courier == cid
            for state, ts in p.steps
            if state in (S.DEPOSITED, S.WITHDRAWN) and FROM <= ts < TO
        )
        assert (c["deposits"], c["withdrawals"]) == (handled[S.DEPOSITED], handled[S.WITHDRAWN])
    assert couriers["K-2"]["customer_class"] == "carrier:YTO"
    assert couriers["K-4"]["deposits"] == 0

    # The CSV carries the same figures, one per line.
    rows = list(csv.DictReader(io.StringIO(export.to_csv(report))))
    assert list(rows[0]) == ["section", "site", "customer_class", "metric", "value"]
    cells = {(r["section"], r["site"], r["customer_class"], r["metric"]): r["value"] for r in rows}
    for site, o in outlets.items():
        for metric, value in o.items():
            if metric != "site":
                want = (
                    ""
                    if value is None
                    else str(value).lower()
                    if isinstance(value, bool)
                    else str(value)
                )
                assert cells[("outlet", site, "", metric)] == want
    for e in report["electronic_waybill"]:
        assert cells[("electronic_waybill", "", e["customer_class"], "share")] == str(e["share"])
    assert cells[("volumes", "", "", "picked_up")] == str(report["volumes"]["picked_up"])
    assert cells[("courier_conduct", "", "", "entries:forced_open")] == "2"
    assert cells[("courier_conduct", "", "", "mean_score")] == "85.0"
    assert cells[("courier:K-2", "", "carrier:YTO", "score")] == "60"
    assert cells[("courier:K-4", "", "carrier:SF", "on_bad_conduct_list")] == "true"


@pytest.mark.parametrize(
    ("start", "end"),
    [(TO, FROM), (FROM, FROM), (0, TO), (-5, TO), (FROM, FROM + 401 * DAY), (FROM, 2**62)],
)
async def test_bad_periods_are_refused(tmp_path: Path, start: int, end: int) -> None:
    async with Store(tmp_path / "hub.db") as store:
        with pytest.raises(InvalidArgument, match="period"):
            await export.build(store, start, end, now_ms=TO)


COURIER: dict[str, Any] = {
    "courier_id": "K-1",
    "customer_class": "carrier:SF",
    "deposits": 1,
    "withdrawals": 0,
    "entries": dict.fromkeys(KINDS, 0),
    "score": 100,
    "on_bad_conduct_list": False,
}


def test_the_schema_rejects_what_it_must() -> None:
    """The schema is not a rubber stamp: a missing section or a bad figure fails it."""
    good: dict[str, Any] = {
        "schema": export.SCHEMA_ID,
        "period": {
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-12-01T00:00:00Z",
            "from_ms": FROM,
            "to_ms": TO,
        },
        "generated": "2026-12-01T00:00:00Z",
        "outlets": [],
        "volumes": {
            k: 0
            for k in (
                "announced",
                "deposited",
                "picked_up",
                "expired",
                "withdrawn",
                "returned",
                "cancelled",
            )
        },
        "electronic_waybill": [],
        "returns": {"withdrawn": 0, "returned": 0},
        "held_parcels": {"count": 0, "note": export.HELD_NOTE},
        "locker_consent": {"given": 0, "unspecified": 0},
        "incidents": [],
        "courier_conduct": {
            "available": True,
            "note": "",
            "couriers_active": 1,
            "entries": dict.fromkeys(KINDS, 0),
            "bad_conduct_list": 0,
            "mean_score": 100.0,
            "couriers": [COURIER],
        },
    }
    jsonschema.validate(good, SCHEMA)
    cc = good["courier_conduct"]
    for broken in (
        {k: v for k, v in good.items() if k != "returns"},
        {**good, "volumes": {**good["volumes"], "returned": -1}},
        {
            **good,
            "electronic_waybill": [
                {
                    "customer_class": "carrier:a b",
                    "parcels": 1,
                    "electronic_waybill": 1,
                    "share": 1.0,
                }
            ],
        },
        {**good, "generated": "yesterday"},
        {**good, "phone": "13800000000"},
        # A courier's name or phone is personal data: refused; so are a made-up kind and a
        # score out of range.
        {**good, "courier_conduct": {**cc, "couriers": [{**COURIER, "name": "Li"}]}},
        {**good, "courier_conduct": {**cc, "couriers": [{**COURIER, "score": 101}]}},
        {**good, "courier_conduct": {**cc, "entries": {**cc["entries"], "speeding": 1}}},
        {**good, "courier_conduct": {**cc, "mean_score": -1}},
        {**good, "courier_conduct": {k: v for k, v in cc.items() if k != "entries"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


async def run_ops(
    hub: HubHarness, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = await asyncio.to_thread(ops.main, ["ops", "--target", hub.app.grpc_address, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_ops_filing_export_and_maintenance(
    hub: HubHarness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = await run_ops(
        hub, capsys, "filing", hub.site, "--number", "SH-1", "--type", "smart_locker",
        "--public-service",
    )  # fmt: skip
    assert code == 0
    assert "SH-1" in out
    now = datetime.now(UTC)
    start, end = f"{now.year - 1}-01-01", f"{now.year + 1}-01-01"
    code, out, _ = await run_ops(hub, capsys, "export", "--from", start, "--to", end)
    assert code == 1  # two years: over the limit
    start = now.strftime("%Y-%m-%d")
    end = datetime.fromtimestamp(now.timestamp() + 86400, UTC).strftime("%Y-%m-%d")
    code, out, _ = await run_ops(hub, capsys, "export", "--from", start, "--to", end)
    assert code == 0
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    assert report["outlets"][0]["filing_number"] == "SH-1"
    target = tmp_path / "export.csv"
    code, out, _ = await run_ops(
        hub, capsys, "export", "--from", start, "--to", end, "--format", "csv", "--out",
        str(target),
    )  # fmt: skip
    assert code == 0
    assert ("outlet", hub.site, "", "filing_number", "SH-1") in {
        tuple(r) for r in csv.reader(io.StringIO(target.read_text()))
    }
    for bad in (["--from", "soon", "--to", end], ["--from", "2026-11-01T08:00", "--to", end]):
        code, _, err = await run_ops(hub, capsys, "export", *bad)
        assert code == 2
        assert "--from" in err

    soon = datetime.fromtimestamp(now.timestamp() + 30 * 3600, UTC)
    later = datetime.fromtimestamp(now.timestamp() + 32 * 3600, UTC)
    code, out, _ = await run_ops(
        hub, capsys, "maintenance", "schedule", "--site", hub.site, "--start",
        soon.isoformat(), "--end", later.isoformat(), "--reason", "firmware 2.1",
    )  # fmt: skip
    assert code == 0
    code, out, _ = await run_ops(hub, capsys, "maintenance", "list")
    assert "firmware 2.1" in out
    code, out, err = await run_ops(
        hub, capsys, "maintenance", "schedule", "--start", now.isoformat(), "--end",
        later.isoformat(), "--reason", "now",
    )  # fmt: skip
    assert (code, "INVALID_ARGUMENT" in err) == (1, True)
    code, out, _ = await run_ops(hub, capsys, "incidents")
    assert code == 0
    assert out.split()[:6] == ["INCIDENT", "CAUSE", "SITE", "STARTED", "ENDED", "SECONDS"]
