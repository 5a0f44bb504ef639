"""Which metrics the shipped alerts and dashboard read, and which metrics exist to be read.

Shared by tests/test_alerts.py, tests/test_dashboard.py and tests/test_container.py: the first
two check names against the documented catalogue and the real captures, the container test
against the /metrics a running image actually serves.
"""

import json
import re
from pathlib import Path

import promql_parser
import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboard.json"
FIXTURES = REPO.parent / "shared" / "fixtures"

# The sidecar's own metrics as DESIGN.md "Own metrics" lists them, as sample names (counters
# carry _total on the wire).
OWN_METRICS = frozenset(
    "llm_healthcheck_" + name
    for name in (
        "ready",
        "rule_state",
        "rule_value",
        "rule_threshold",
        "rule_transitions_total",
        "rule_no_data",
        "readiness_transitions_total",
        "scrape_success",
        "scrape_duration_seconds",
        "scrape_failures_total",
        "last_scrape_timestamp_seconds",
        "evaluation_duration_seconds",
        "rules_last_reload_successful",
        "rules_last_reload_success_timestamp_seconds",
        "rules_reloads_total",
        "rules_info",
        "build_info",
        "fail_open",
    )
)
# Exported only by a sidecar whose rules have a fleet: block (docs/rules.md, "Fleet view"): the
# alerts and dashboard may read them, a sidecar without the block does not serve them.
FLEET_METRICS = frozenset(
    "llm_healthcheck_" + name
    for name in (
        "fleet_query_success",
        "fleet_query_duration_seconds",
        "fleet_last_success_timestamp_seconds",
        "fleet_query_failures_total",
        "fleet_pods",
        "fleet_unready",
    )
)

# Grafana replaces these before the query reaches Prometheus; any duration stands in for the
# interval macros, any plain word for a variable (it may sit inside a regex matcher).
_GRAFANA_DURATIONS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(:\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)
_SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)")


def substitute_grafana(expr: str) -> str:
    """The query as Prometheus would receive it, with Grafana's macros and variables filled in."""
    expr = _GRAFANA_DURATIONS.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub("x", expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects; raises ValueError if it does not parse as PromQL."""
    ast = promql_parser.parse(expr)
    names: set[str] = set()

    def _visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers if node.matchers else ():
                # {__name__="x"} names a metric as surely as x{} does.
                if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
                    names.add(matcher.value)

    promql_parser.walk(ast, _visit)
    return names


def alert_exprs(path: Path = ALERTS) -> dict[str, str]:
    """Alert name -> expression, from a Prometheus rules file."""
    doc = yaml.safe_load(path.read_text())
    return {rule["alert"]: rule["expr"] for group in doc["groups"] for rule in group["rules"] if "alert" in rule}


def dashboard_queries(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of a Grafana dashboard.

    A variable's `label_values(selector, label)` contributes its selector."""
    board = json.loads(path.read_text())
    found = []
    for panel in _panels(board.get("panels", [])):
        for target in panel.get("targets", []):
            found.append((f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"]))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(query)
        found.append((f"variable {variable['name']!r}", match.group(1) if match else query))
    return found


def fixture_metric_names(directory: Path = FIXTURES) -> set[str]:
    """Every sample name printed by any real capture."""
    names = set()
    for capture in directory.glob("*.prom"):
        for line in capture.read_text(errors="replace").splitlines():
            if line and not line.startswith("#"):
                match = _SAMPLE_NAME.match(line)
                if match:
                    names.add(match.group(1))
    return names


def _panels(panels):
    # Rows nest their panels when collapsed.
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))
