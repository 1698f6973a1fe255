"""Prometheus and Grafana material for lockerhub ops teams.

The files live beside this module (``prometheus/``); ``scrape_config`` renders the same scrape
job for a hub on another address (tests and the demo run the hub on free ports).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PROMETHEUS_DIR", "scrape_config"]

PROMETHEUS_DIR = Path(__file__).resolve().parent / "prometheus"


def scrape_config(target: str, *, scrape_interval_s: float = 15.0) -> str:
    """A prometheus.yml scraping one hub at ``target`` (``host:port``)."""
    # Prometheus durations take whole numbers of a unit ("500ms", not "0.5s").
    interval = f"{round(scrape_interval_s * 1000)}ms"
    return (
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  evaluation_interval: {interval}\n"
        "scrape_configs:\n"
        "  - job_name: lockerhub-hub\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: [{target!r}]\n"
    )
