"""The district report's figures and plots, from a hand-made day (no processes)."""

from __future__ import annotations

import io
import re
from dataclasses import asdict

from demo.district_report import Day, busiest_site, render_report
from demo.district_spec import DayRecord, DistrictSpec
from demo.simulate import ProgressBar

HOUR_MS = 1000  # day_s=18 over 05:00-23:00: one simulated hour per real second


def _record(extra: str | None = None) -> DayRecord:
    spec = DistrictSpec(cabinets=2, sites=2, day_s=20, extra_cabinet_at=extra)
    # 18 s (below the CLI's minimum) makes a simulated hour one real second: easy arithmetic.
    record = DayRecord(spec=asdict(spec) | {"day_s": 18.0}, start_ms=0, end_ms=18 * HOUR_MS)
    record.capacity = {"site-01": 8, "site-02": 8}
    record.cabinets = {"cab-001": "site-01", "cab-002": "site-02"}

    def parcel(pid: str, site: str, *steps: tuple[str, float]) -> dict[str, object]:
        history = [(state, int((hour - 5) * HOUR_MS)) for state, hour in steps]
        return {
            "id": pid,
            "site": site,
            "cabinet": "cab-001",
            "state": steps[-1][0],
            "ewaybill": pid != "P3",
            "reusable": pid == "P1",
            "history": history,
        }

    record.parcels = [
        parcel("P1", "site-01", ("announced", 6), ("reserved", 6), ("deposited", 7),
               ("picked_up", 9)),
        parcel("P2", "site-01", ("announced", 6), ("reserved", 6), ("deposited", 12),
               ("picked_up", 13)),
        parcel("P3", "site-02", ("announced", 8), ("reserved", 8), ("deposited", 9),
               ("expired", 19), ("withdrawn", 20)),
    ]  # fmt: skip
    record.refused = [{"id": "P4", "site": "site-02", "hour": 7.0, "reason": "full"}]
    record.alarms = [
        {"ts_ms": 4 * HOUR_MS, "kind": "door_jammed", "site": "site-01", "device": "cab-001",
         "status": "raised"},
    ]  # fmt: skip
    record.energy_wh = {"site-01": 1.0, "site-02": 2.0}
    return record


def test_figures_of_a_hand_made_day() -> None:
    day = Day(_record())
    assert sorted(day.dwell_hours()) == [1.0, 2.0]
    assert day.delivered() == 2
    assert day.on_time("site-01") == 0.5  # P2 waited 6 h for its courier
    assert day.share("ewaybill") == 2 / 3
    # At 10:00 P1 is gone, P2 reserved, P3 deposited: 1 of 8 held at each site.
    hours = day.whole_hours()
    assert [row[hours.index(10.0)] for row in day.occupancy()] == [1 / 8, 1 / 8]
    assert busiest_site(day.r) == "site-02"  # the refusal counts before occupancy


def test_report_has_every_plot_with_data_and_no_scripts() -> None:
    html = render_report([_record(), _record(extra="site-02")])
    plots = re.findall(r'<svg class="plot" data-plot="([^"]+)" data-points="(\d+)"', html)
    names = [name for name, _ in plots]
    for name in ("states", "occupancy", "dwell", "energy", "on-time", "shares", "alarms"):
        assert names.count(name) == 2, names
    assert names.count("what-if") == 1
    assert names.count("what-if-occupancy") == 1
    assert all(int(n) > 0 for _, n in plots), plots
    assert "<script" not in html


def test_progress_bar_prints_a_line_per_tenth_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar("day", out)
    for i in range(101):
        bar(i / 100, "x")
    assert len(out.getvalue().splitlines()) == 11
