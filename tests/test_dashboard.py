"""The Grafana dashboard's queries are real PromQL over metrics that exist.

Every panel query and variable query is parsed with promql_parser after Grafana's macros and
variables are filled in, and may name only the sidecar's own metrics (DESIGN.md "Own
metrics") or engine metrics printed by the real captures in ../shared/fixtures/."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "containers"))
from promql_refs import (
    DASHBOARD,
    FIXTURES,
    FLEET_METRICS,
    OWN_METRICS,
    dashboard_queries,
    fixture_metric_names,
    metric_names,
    substitute_grafana,
)

BOARD = json.loads(DASHBOARD.read_text())
QUERIES = dashboard_queries()


def _panels(panels=BOARD["panels"]):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _known_metrics() -> set[str]:
    engine = fixture_metric_names()
    if not engine:
        pytest.fail(f"no captures found in {FIXTURES}")
    return OWN_METRICS | FLEET_METRICS | engine


def test_dashboard_has_queries():
    assert len(QUERIES) >= 20


@pytest.mark.parametrize("where, expr", QUERIES, ids=[w for w, _ in QUERIES])
def test_query_parses_and_names_only_existing_metrics(where, expr):
    names = metric_names(substitute_grafana(expr))
    assert names, f"{where}: selects no metric"
    unknown = names - _known_metrics()
    assert not unknown, f"{where}: no such metric {sorted(unknown)}"


def test_the_checks_catch_a_bad_query():
    with pytest.raises(ValueError):
        metric_names(substitute_grafana('sum by (pod) (rate(llm_healthcheck_ready{pod=~"$pod"}[$__rate_interval])'))
    assert metric_names(substitute_grafana('llm_healthcheck_redy{pod=~"$pod"}')) - _known_metrics() == {
        "llm_healthcheck_redy"
    }


def test_every_own_metric_is_on_the_dashboard():
    used = set().union(*(metric_names(substitute_grafana(e)) for _, e in QUERIES))
    assert OWN_METRICS - used == set()


def test_dashboard_shows_what_an_operator_asks_for():
    """Issue 6: readiness per pod, rule values against their thresholds, transitions, scrape
    health, reloads; and the engines' own load signals beside them."""
    by_panel = {}
    for panel in _panels():
        names = set()
        for target in panel.get("targets", []):
            names |= metric_names(substitute_grafana(target["expr"]))
        by_panel[panel["title"]] = names

    def panel_with(*metrics):
        return [title for title, names in by_panel.items() if set(metrics) <= names]

    assert any(
        "llm_healthcheck_ready" in metric_names(substitute_grafana(t["expr"])) and "{{pod}}" in t["legendFormat"]
        for panel in _panels()
        for t in panel.get("targets", [])
    ), "readiness per pod"
    assert panel_with("llm_healthcheck_rule_value", "llm_healthcheck_rule_threshold"), (
        "values and thresholds on one panel"
    )
    assert panel_with("llm_healthcheck_readiness_transitions_total")
    assert panel_with("llm_healthcheck_rule_transitions_total")
    assert panel_with("llm_healthcheck_scrape_success") and panel_with("llm_healthcheck_scrape_failures_total")
    assert panel_with("llm_healthcheck_rules_last_reload_successful") and panel_with(
        "llm_healthcheck_rules_reloads_total"
    )
    for engine_metric in ("tgi_queue_size", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert panel_with(engine_metric), engine_metric


def test_variables_used_by_queries_are_defined():
    defined = {v["name"] for v in BOARD["templating"]["list"]}
    for where, expr in QUERIES:
        used = set(re.findall(r"\$\{?(\w+)", expr)) - {"__rate_interval", "__interval", "__range"}
        assert used <= defined, f"{where}: undefined {used - defined}"
    for panel in _panels():
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_layout_is_a_valid_grid():
    """Unique ids and refIds, panels inside the 24-column grid and not on top of each other."""
    panels = list(_panels())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for dx in range(grid["w"]):
            for dy in range(grid["h"]):
                cell = (grid["x"] + dx, grid["y"] + dy)
                assert cell not in cells, f"{panel['title']} overlaps another panel at {cell}"
                cells.add(cell)
        ref_ids = [t["refId"] for t in panel.get("targets", [])]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        if panel["type"] != "row":
            assert panel["title"] and panel.get("description"), panel["id"]
