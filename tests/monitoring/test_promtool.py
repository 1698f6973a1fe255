"""The shipped Prometheus configuration passes promtool (the real binary)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from monitoring import PROMETHEUS_DIR, scrape_config


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is not installed: run `make test` (apt-get install prometheus)"
    return path


def test_shipped_config_is_valid() -> None:
    out = subprocess.run(
        [promtool(), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rendered_config_is_valid(tmp_path: Path) -> None:
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(scrape_config("127.0.0.1:12345", scrape_interval_s=0.5))
    out = subprocess.run(
        [promtool(), "check", "config", str(cfg)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
