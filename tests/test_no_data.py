"""No data is never silent, and a condition that is merely false is not "no data".

Rules run through the real compiler, history and engine on a fake timeline (no sleeping):
each step records one scrape (None: the series is absent from the page) and evaluates.
"""

import pytest

from exporter.config.errors import ConfigError
from exporter.core import engine
from exporter.core.history import History
from exporter.promql import compile_expr
from exporter.rules.loader import load_rules
from exporter.rules.model import Rule, RuleSet

T0 = 1_700_000_000.0


def make_rule(expr="sum(tgi_queue_size)", **kw) -> Rule:
    return Rule(name=kw.pop("name", "queue"), expr_text=expr, expr=compile_expr(expr), **kw)


def run(rule: Rule, pages):
    """pages: list of (seconds, {metric: value} or None). Returns the rule status after each."""
    history, state, seen = History(600), engine.initial_state(), []
    for t, page in pages:
        samples = [((("__name__", name),), float(value)) for name, value in (page or {}).items()]
        history.record(T0 + t, samples)
        state, statuses = engine.evaluate(RuleSet((rule,)), history, state, T0 + t)
        seen.append(statuses[0])
    return seen


def test_misspelt_metric_is_ok_but_flagged_no_data():
    (status,) = run(make_rule("sum(tgi_queue_sizee)", above=15), [(0, {"tgi_queue_size": 40})])
    assert (status.state, status.value, status.reason, status.no_data) == ("ok", None, "no data", True)


def test_a_false_condition_is_ok_with_its_value_not_no_data():
    rule = make_rule("sum(tgi_queue_size) > 10")
    below, above, gone = run(rule, [(0, {"tgi_queue_size": 3}), (1, {"tgi_queue_size": 12}), (2, None)])
    assert (below.state, below.value, below.no_data) == ("ok", 3.0, False)
    assert below.reason == "condition false (value 3)"
    assert (above.state, above.value, above.no_data) == ("firing", 12.0, False)
    assert (gone.state, gone.value, gone.reason, gone.no_data) == ("ok", None, "no data", True)


def test_and_condition_false_on_its_right_side_shows_the_left_value():
    rule = make_rule("sum(waiting) > 0 and sum(running) == 0")
    (status,) = run(rule, [(0, {"waiting": 4, "running": 2})])
    assert (status.state, status.value, status.no_data) == ("ok", 4.0, False)
    (status,) = run(rule, [(0, {"running": 2})])
    assert status.no_data and status.reason == "no data"


def test_on_missing_unready_counts_no_data_as_holding_with_for():
    rule = make_rule(above=15, for_seconds=10, on_missing="unready")
    steps = run(rule, [(0, {"tgi_queue_size": 1}), (1, None), (6, None), (11, None), (12, {"tgi_queue_size": 1})])
    assert [s.state for s in steps] == ["ok", "pending", "pending", "firing", "ok"]
    assert [s.no_data for s in steps] == [False, True, True, True, False]
    assert steps[1].blocking is False and steps[3].blocking is True
    assert "no data; on_missing unready" in steps[3].reason


def test_on_missing_keep_holds_the_last_state():
    rule = make_rule(above=15, on_missing="keep")
    firing, held, later, back = run(
        rule, [(0, {"tgi_queue_size": 20}), (1, None), (30, None), (31, {"tgi_queue_size": 2})]
    )
    assert firing.state == held.state == later.state == "firing"
    assert held.no_data and held.reason == "no data; on_missing keep holds firing"
    assert later.changed is False
    assert (back.state, back.no_data) == ("ok", False)
    ok_then_gone = run(rule, [(0, {"tgi_queue_size": 2}), (1, None)])
    assert [s.state for s in ok_then_gone] == ["ok", "ok"]


def test_default_on_missing_never_keeps_a_pod_out():
    rule = make_rule(above=15, for_seconds=5)
    steps = run(rule, [(0, None), (10, None), (3000, None)])
    assert {s.state for s in steps} == {"ok"} and all(s.no_data for s in steps)


def test_on_missing_loads_and_a_bad_value_names_the_spot(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - name: q\n    expr: sum(tgi_queue_size)\n    above: 15\n    on_missing: unready\n")
    assert load_rules([str(good)]).rules[0].on_missing == "unready"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: q\n    expr: sum(tgi_queue_size)\n    above: 15\n    on_missing: maybe\n")
    with pytest.raises(ConfigError) as err:
        load_rules([str(bad)])
    assert str(err.value) == f'{bad}:5:17: rule "q": on_missing: want one of ok, unready, keep, got "maybe"'
