"""The HTML report of one or two simulated district days: figures and inline SVG, no network.

Everything is computed from the :class:`~demo.district.DayRecord` (what the hub said), in
simulated hours; energy is scaled from the compressed run to the simulated day.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from html import escape
from typing import Any

from demo import svg
from demo.district_spec import MIN_DAY_S_PER_PARCEL, DayRecord

STATES = ("reserved", "deposited", "picked_up", "expired", "withdrawn")
_HELD = frozenset({"reserved", "deposited", "expired"})  # states that hold a compartment
ON_TIME_H = 4.0  # the delivery promise: in the locker within 4 h of the announcement
_STEP_H = 0.25


class Day:
    """Figures of one day, in simulated hours."""

    def __init__(self, record: DayRecord) -> None:
        self.r = record
        spec = record.spec
        self.first = float(spec["first_hour"])
        self.last = float(spec["last_hour"])
        self.hour_s = float(spec["day_s"]) / (self.last - self.first)
        self.sites = sorted(record.capacity)
        self.hours = [
            self.first + _STEP_H * i for i in range(int((self.last - self.first) / _STEP_H) + 1)
        ]

    def h(self, ts_ms: int) -> float:
        return self.first + (ts_ms - self.r.start_ms) / 1000 / self.hour_s

    def _state_at(self, history: Sequence[Sequence[Any]], hour: float) -> str | None:
        state = None
        for name, ts in history:
            if self.h(int(ts)) <= hour:
                state = str(name)
        return state

    def states_over_day(self) -> dict[str, list[tuple[float, float]]]:
        counts = {s: [0] * len(self.hours) for s in STATES}
        for p in self.r.parcels:
            for i, hour in enumerate(self.hours):
                state = self._state_at(p["history"], hour)
                if state in counts:
                    counts[state][i] += 1
        return {s: list(zip(self.hours, map(float, c), strict=True)) for s, c in counts.items()}

    def occupancy(self) -> list[list[float]]:
        """Per site (rows) and whole hour (columns): share of compartments held."""
        hours = self.whole_hours()
        held = {s: [0] * len(hours) for s in self.sites}
        for p in self.r.parcels:
            for i, hour in enumerate(hours):
                if self._state_at(p["history"], hour) in _HELD and p["site"] in held:
                    held[p["site"]][i] += 1
        return [[n / max(1, self.r.capacity[s]) for n in held[s]] for s in self.sites]

    def whole_hours(self) -> list[float]:
        return [float(h) for h in range(int(self.first), int(self.last) + 1)]

    def peak_occupancy(self, site: str) -> float:
        return max(self.occupancy()[self.sites.index(site)], default=0.0)

    def _when(self, p: dict[str, Any], state: str) -> float | None:
        return next((self.h(int(ts)) for name, ts in p["history"] if name == state), None)

    def dwell_hours(self) -> list[float]:
        out = []
        for p in self.r.parcels:
            dep, up = self._when(p, "deposited"), self._when(p, "picked_up")
            if dep is not None and up is not None:
                out.append(up - dep)
        return out

    def delivered(self, site: str | None = None) -> int:
        return sum(
            1
            for p in self.r.parcels
            if p["state"] == "picked_up" and (site is None or p["site"] == site)
        )

    def on_time(self, site: str | None = None) -> float:
        due = hit = 0
        for p in self.r.parcels:
            if site is not None and p["site"] != site:
                continue
            ann, dep = self._when(p, "announced"), self._when(p, "deposited")
            if ann is None or ann + ON_TIME_H > self.last:
                continue  # promised after the end of the run: not yet due
            due += 1
            hit += dep is not None and dep - ann <= ON_TIME_H
        return hit / due if due else 0.0

    def energy_per_parcel(self, site: str) -> float:
        scale = 3600 / self.hour_s  # real seconds of the run -> simulated seconds
        return self.r.energy_wh.get(site, 0.0) * scale / max(1, self.delivered(site))

    def share(self, key: str, site: str | None = None) -> float:
        ps = [p for p in self.r.parcels if site is None or p["site"] == site]
        return sum(bool(p[key]) for p in ps) / len(ps) if ps else 0.0

    def refused(self, site: str | None = None) -> int:
        return sum(1 for x in self.r.refused if site is None or x["site"] == site)


def busiest_site(record: DayRecord) -> str:
    """Where one more cabinet would help most: most refusals, then the highest peak occupancy."""
    day = Day(record)
    return max(day.sites, key=lambda s: (day.refused(s), day.peak_occupancy(s)))


def _figures(day: Day) -> dict[str, str]:
    dwell = day.dwell_hours()
    energy = [day.energy_per_parcel(s) for s in day.sites]
    return {
        "parcels announced": str(len(day.r.parcels) + len(day.r.refused)),
        "refused (no compartment)": str(day.refused()),
        "picked up": str(day.delivered()),
        "expired, then withdrawn": str(sum(p["state"] == "withdrawn" for p in day.r.parcels)),
        "on-time share (in the locker within 4 h)": f"{day.on_time():.1%}",
        "median dwell (h)": f"{statistics.median(dwell):.1f}" if dwell else "-",
        "energy per delivered parcel (Wh, median of sites)": f"{statistics.median(energy):.1f}",
        "electronic waybill share": f"{day.share('ewaybill'):.1%}",
        "reusable container share": f"{day.share('reusable'):.1%}",
        "alarm events": str(len(day.r.alarms)),
        "wall time of the run (s)": f"{day.r.wall_s:.0f}",
    }


def _section(day: Day, label: str) -> str:
    r = day.r
    dwell = day.dwell_hours()
    bins = [i * 0.5 for i in range(21)]
    hist = Counter(min(int(d / 0.5), 20) for d in dwell)
    raised = [a for a in r.alarms if a["status"] == "raised"]
    kinds = sorted({a["kind"] for a in raised}) or ["(none)"]
    charts = [
        svg.line_chart(
            "states",
            "Parcels by state over the day",
            day.states_over_day(),
            x_label="hour of the day",
            y_label="parcels",
        ),
        svg.heatmap(
            "occupancy",
            "Occupancy per site (share of compartments held)",
            day.sites,
            day.whole_hours(),
            day.occupancy(),
            x_label="hour of the day",
        ),
        svg.bar_chart(
            "dwell",
            "Dwell time: deposit to pickup",
            [f"{b:.1f}" for b in bins],
            {"parcels": [float(hist.get(i, 0)) for i in range(len(bins))]},
            y_label="parcels (by half hour of dwell)",
        ),
        svg.bar_chart(
            "energy",
            "Energy per delivered parcel (Wh, over the simulated day)",
            [s.removeprefix("site-") for s in day.sites],
            {"Wh per parcel": [day.energy_per_parcel(s) for s in day.sites]},
            y_label="Wh",
            x_label="site",
        ),
        svg.bar_chart(
            "on-time",
            f"On-time share (in the locker within {ON_TIME_H:.0f} h of the announcement)",
            [s.removeprefix("site-") for s in day.sites],
            {"on time": [day.on_time(s) for s in day.sites]},
            y_label="share",
            x_label="site",
            pct=True,
        ),
        svg.bar_chart(
            "shares",
            "Electronic-waybill and reusable-container shares",
            [s.removeprefix("site-") for s in day.sites],
            {
                "e-waybill": [day.share("ewaybill", s) for s in day.sites],
                "reusable": [day.share("reusable", s) for s in day.sites],
            },
            y_label="share of parcels",
            x_label="site",
            pct=True,
        ),
        svg.timeline(
            "alarms",
            "Alarms raised",
            kinds,
            [(day.h(a["ts_ms"]), a["kind"], f"{a['kind']} {a['device']}") for a in raised],
            x0=day.first,
            x1=day.last,
            x_label="hour of the day",
        ),
    ]
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _figures(day).items()
    )
    faults = (
        "".join(f"<li>{f['hour']:02.0f}:00 {escape(f['what'])}</li>" for f in r.faults)
        or "<li>none</li>"
    )
    spec = r.spec
    asked = spec.get("asked_day_s")
    longer = (
        f" (lengthened from the {asked:.0f} s asked: at least {MIN_DAY_S_PER_PARCEL:g} s per "
        "parcel, or the agents and the hub fall behind the clock)"
        if asked
        else ""
    )
    return (
        f"<section><h2>{escape(label)}</h2><p>{len(r.cabinets)} cabinets at {len(day.sites)} "
        f"sites; {spec['first_hour']:02.0f}:00-{spec['last_hour']:02.0f}:00 in "
        f"{spec['day_s']:.0f} s{longer}; seed {spec['seed']}.</p><table>{rows}</table>"
        f"<h3>Faults on the schedule</h3><ul>{faults}</ul>"
        + "".join(f"<figure>{c}</figure>" for c in charts)
        + "</section>"
    )


def _compare(base: Day, what_if: Day) -> str:
    site = what_if.r.spec["extra_cabinet_at"]
    rows = [
        ("refused announcements", base.refused(), what_if.refused()),
        (f"refused at {site}", base.refused(site), what_if.refused(site)),
        ("picked up", base.delivered(), what_if.delivered()),
        (f"peak occupancy at {site}", base.peak_occupancy(site), what_if.peak_occupancy(site)),
        ("on-time share", base.on_time(), what_if.on_time()),
    ]

    def fmt(v: float) -> str:
        return f"{v:.1%}" if isinstance(v, float) else str(v)

    table = "".join(
        f"<tr><th>{escape(k)}</th><td>{fmt(a)}</td><td>{fmt(b)}</td></tr>" for k, a, b in rows
    )
    chart = svg.bar_chart(
        "what-if",
        f"Announcements refused for want of a compartment: {site} with one more cabinet?",
        ["all sites", site],
        {
            "as is": [float(base.refused()), float(base.refused(site))],
            "+1 cabinet": [float(what_if.refused()), float(what_if.refused(site))],
        },
        y_label="parcels refused",
    )
    hours = base.whole_hours()
    occupancy = svg.line_chart(
        "what-if-occupancy",
        f"Occupancy at {site} (share of compartments held)",
        {
            "as is": list(zip(hours, base.occupancy()[base.sites.index(site)], strict=True)),
            "+1 cabinet": list(
                zip(hours, what_if.occupancy()[what_if.sites.index(site)], strict=True)
            ),
        },
        x_label="hour of the day",
        y_label="share held",
        pct=True,
    )
    return (
        f"<section><h2>What if: one more cabinet at {escape(site)}</h2>"
        f"<table><tr><th></th><th>as is</th><th>+1 cabinet</th></tr>{table}</table>"
        f"<figure>{chart}</figure><figure>{occupancy}</figure></section>"
    )


_CSS = (
    "body{font-family:sans-serif;max-width:780px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{padding:2px 10px;text-align:left;"
    "border-bottom:1px solid #eee}figure{margin:1.5em 0}"
)


def render_report(records: Sequence[DayRecord]) -> str:
    """The whole report: a section per run, and the comparison when there are two."""
    days = [Day(r) for r in records]
    parts = [_section(days[0], "The day")]
    if len(days) > 1:
        parts.append(_compare(days[0], days[1]))
        parts.append(_section(days[1], "The day with one more cabinet"))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>lockerhub: a simulated district day</title><style>{_CSS}</style></head>"
        "<body><h1>A simulated district day</h1>"
        "<p>The real hub, broker and edge agents, with simulated dispatch, couriers and "
        "recipients; the figures are what the hub recorded.</p>"
        + "".join(parts)
        + "</body></html>\n"
    )
