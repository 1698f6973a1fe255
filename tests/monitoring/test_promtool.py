"""The shipped Prometheus material passes promtool (the real binary): config, rules, unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from monitoring import PROMETHEUS_DIR, RULE_FILES, RULE_TESTS_DIR, scrape_config
from tests.monitoring.expressions import dashboard_expressions, rule_expressions


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is not installed: run `make test` (apt-get install prometheus)"
    return path


def run(*args: str, cwd: Path | None = None) -> str:
    out = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_shipped_config_is_valid() -> None:
    text = run("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert "2 rule files found" in text


def test_rendered_config_is_valid(tmp_path: Path) -> None:
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(scrape_config("127.0.0.1:12345", scrape_interval_s=0.5, rule_files=RULE_FILES))
    run("check", "config", str(cfg))
    cfg.write_text(scrape_config("127.0.0.1:12345", scrape_interval_s=0.5))
    run("check", "config", str(cfg))


def test_rules_are_valid() -> None:
    text = run("check", "rules", *map(str, RULE_FILES))
    assert "SUCCESS" in text


def test_rule_unit_tests_pass() -> None:
    tests = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert len(tests) >= 2
    text = run(
        "test", "rules", *(str(t.relative_to(PROMETHEUS_DIR)) for t in tests), cwd=PROMETHEUS_DIR
    )
    assert "FAILED" not in text


def test_every_alert_has_a_unit_test() -> None:
    alerts = {e.where.split(":", 1)[1] for e in rule_expressions() if e.alert}
    records = {e.where.split(":", 1)[1] for e in rule_expressions() if not e.alert}
    tested_alerts: set[str] = set()
    tested_exprs: set[str] = set()
    for path in RULE_TESTS_DIR.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested_alerts |= {t["alertname"] for t in case.get("alert_rule_test", [])}
            tested_exprs |= {t["expr"] for t in case.get("promql_expr_test", [])}
    assert alerts - tested_alerts == set()
    assert records - tested_exprs == set()


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    # promtool parses every expression of a rule file: check the dashboards' as recording rules.
    exprs = dashboard_expressions()
    assert len(exprs) > 40
    doc = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:check_{i}", "expr": e.expr} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump(doc))
    run("check", "rules", str(path))


def test_a_broken_expression_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]}
        )
    )
    out = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
