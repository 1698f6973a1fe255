"""`lockerhub simulate`: a small district day and its what-if end in a report whose plots have data.

The report is opened in headless Chromium (Debian's ``chromium``; ``make test`` installs it) and
every plot of the DOM it built must carry data marks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.processes import lockerhub_exe

PLOTS = (
    *("states", "occupancy", "dwell", "energy", "on-time", "shares", "alarms"),
    *("what-if", "what-if-occupancy"),
)


class Plots(HTMLParser):
    """Each ``svg.plot`` of a DOM: its declared point count and the data marks inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: list[dict[str, object]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and a.get("class") == "plot":
            self.plots.append({"name": a["data-plot"], "declared": int(a["data-points"] or 0)})
            self.plots[-1]["marks"] = 0
            self._depth = 1
        elif self._depth:
            if tag == "svg":
                self._depth += 1
            if "pt" in (a.get("class") or "").split():
                self.plots[-1]["marks"] = int(str(self.plots[-1]["marks"])) + 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth and tag == "svg":
            self._depth -= 1


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(
            "chromium is not installed: `make test` apt-gets it (SYSTEM_BINARIES in the Makefile); "
            "or `apt-get install chromium`"
        )
    return exe


def test_a_small_district_day_and_its_what_if_make_a_report_with_data(tmp_path: Path) -> None:
    browser = chromium()
    run = subprocess.run(
        [
            *(lockerhub_exe(), "simulate", "--cabinets", "4", "--sites", "2", "--day-s", "25"),
            *("--compare", "--workdir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "%" in run.stderr  # the progress
    report = Path(re.search(r"report: (\S+)", run.stdout).group(1))  # type: ignore[union-attr]
    assert report == tmp_path / "report.html"
    html = report.read_text()
    assert "<script" not in html  # no JS, and nothing fetched from the network
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Plots()
    parser.feed(dom.stdout)
    found = {str(p["name"]) for p in parser.plots}
    assert found == set(PLOTS), found
    for plot in parser.plots:
        assert plot["marks"] == plot["declared"], plot
        assert int(str(plot["marks"])) > 0, f"plot {plot['name']} has no data: {plot}"
    # The day's faults reached the hub as alarms, and the what-if ran with its extra cabinet.
    assert "door_jammed" in html
    assert "cabinet_offline" in html
    assert "one more cabinet at site-01" in html
