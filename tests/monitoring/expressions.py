"""Every PromQL expression shipped in monitoring/: rules and dashboard targets."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from monitoring import DASHBOARDS_DIR, RULE_FILES

# Dashboard variables as an "All" selection evaluates them.
_VARIABLES = {"site": ".*", "cabinet": ".*", "line": ".*", "pile": ".*"}


@dataclass(frozen=True)
class Expression:
    where: str  # file and rule / panel, for messages
    expr: str
    alert: bool = False


def rule_expressions() -> list[Expression]:
    out = []
    for path in RULE_FILES:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                out.append(Expression(f"{path.name}:{name}", rule["expr"], "alert" in rule))
    return out


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def substitute(expr: str) -> str:
    def one(m: re.Match[str]) -> str:
        return _VARIABLES[m.group(1) or m.group(2)]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def dashboard_expressions() -> list[Expression]:
    out = []
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                where = f"{name}:{panel['title']}:{target['refId']}"
                out.append(Expression(where, substitute(target["expr"])))
    return out


def all_expressions() -> list[Expression]:
    return rule_expressions() + dashboard_expressions()
