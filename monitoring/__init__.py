"""Prometheus and Grafana material for lockerhub ops teams (catalogue: docs/metrics.md).

The files live beside this module: ``prometheus/`` (scrape config, recording and alert rules,
promtool unit tests) and ``grafana/`` (provisioning and dashboards). ``scrape_config`` renders the
same scrape job for a hub on another address (tests and the demo run the hub on free ports).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DASHBOARDS_DIR",
    "GRAFANA_DIR",
    "PROMETHEUS_DIR",
    "RULE_FILES",
    "RULE_TESTS_DIR",
    "scrape_config",
]

PROMETHEUS_DIR = Path(__file__).resolve().parent / "prometheus"
RULE_FILES = (PROMETHEUS_DIR / "rules" / "recording.yml", PROMETHEUS_DIR / "rules" / "alerts.yml")
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
GRAFANA_DIR = Path(__file__).resolve().parent / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"


def scrape_config(
    target: str, *, scrape_interval_s: float = 15.0, rule_files: Sequence[Path] = ()
) -> str:
    """A prometheus.yml scraping one hub at ``target`` (``host:port``), loading ``rule_files``."""
    # Prometheus durations take whole numbers of a unit ("500ms", not "0.5s").
    interval = f"{round(scrape_interval_s * 1000)}ms"
    rules = "".join(f"  - {str(Path(p).resolve())!r}\n" for p in rule_files)
    return (
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  evaluation_interval: {interval}\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + "scrape_configs:\n"
        "  - job_name: lockerhub-hub\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: [{target!r}]\n"
    )
