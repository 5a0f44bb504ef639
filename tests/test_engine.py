"""Hysteresis scenarios fed through the compiled rules on a fake timeline (no sleeping).

Each scenario is a rule plus a list of (seconds, queue value or None for "series absent",
expected state). One sample is recorded per step, as one scrape, then the engine runs at that time.
"""

import pytest

from exporter.core import engine
from exporter.core.history import History
from exporter.promql import compile_expr
from exporter.rules.model import Rule, RuleSet
from tests.support import ready_on_a_good_page

T0 = 1_700_000_000.0
QUEUE = (("__name__", "tgi_queue_size"),)


def make_rule(expr="sum(tgi_queue_size)", **kw) -> Rule:
    return Rule(name=kw.pop("name", "queue"), expr_text=expr, expr=compile_expr(expr), **kw)


def run(rule: Rule, steps):
    """Feed the steps; return the (state, blocking) seen after each."""
    history, state, seen = History(600), engine.initial_state(), []
    ruleset = RuleSet((rule,))
    for t, value, _ in steps:
        history.record(T0 + t, [] if value is None else [(QUEUE, float(value))])
        state, statuses = engine.evaluate(ruleset, history, state, T0 + t)
        seen.append(statuses[0].state)
    return seen


SCENARIOS = {
    "seed rule: strictly above trips, equal does not": (
        make_rule(above=15),
        [(0, 15, "ok"), (1, 16, "firing"), (2, 15, "ok"), (3, 0, "ok")],
    ),
    "threshold 0 is valid": (make_rule(above=0), [(0, 0, "ok"), (1, 1, "firing"), (2, 0, "ok")]),
    "recover band holds until below recover_below": (
        make_rule(above=10, recover_below=6),
        [(0, 11, "firing"), (1, 8, "firing"), (2, 6, "firing"), (3, 5.9, "ok"), (4, 8, "ok"), (5, 10.5, "firing")],
    ),
    "for: pending until held long enough": (
        make_rule(above=10, for_seconds=3),
        [(0, 11, "pending"), (1, 12, "pending"), (2, 12, "pending"), (3, 12, "firing"), (4, 1, "ok")],
    ),
    "one false evaluation resets pending": (
        make_rule(above=10, for_seconds=3),
        [
            (0, 11, "pending"),
            (1, 12, "pending"),
            (2, 5, "ok"),
            (3, 12, "pending"),
            (5, 12, "pending"),
            (6, 12, "firing"),
        ],
    ),
    "keep_firing_for: recovering, then ok": (
        make_rule(above=10, keep_firing_for_seconds=5),
        [(0, 11, "firing"), (1, 2, "recovering"), (3, 2, "recovering"), (5, 2, "recovering"), (6, 2, "ok")],
    ),
    "true again while recovering goes straight back to firing": (
        make_rule(above=10, for_seconds=10, keep_firing_for_seconds=5),
        [(0, 11, "pending"), (10, 11, "firing"), (11, 2, "recovering"), (12, 20, "firing")],
    ),
    "below form with recover_above": (
        make_rule(expr="sum(tgi_queue_size)", below=2, recover_above=4),
        [(0, 3, "ok"), (1, 1, "firing"), (2, 3, "firing"), (3, 4, "firing"), (4, 4.5, "ok")],
    ),
    "no data is not a reason to stay out": (make_rule(above=10), [(0, None, "ok"), (1, 11, "firing"), (2, None, "ok")]),
    "no data while firing starts recovery": (
        make_rule(above=10, keep_firing_for_seconds=2),
        [(0, 11, "firing"), (1, None, "recovering"), (3, None, "ok")],
    ),
    "condition form fires while the expression returns anything": (
        make_rule(expr="tgi_queue_size > 5", for_seconds=2),
        [(0, 6, "pending"), (2, 6, "firing"), (3, 5, "ok")],
    ),
    "NaN never trips a threshold": (
        make_rule(above=10),
        [(0, float("nan"), "ok"), (1, 11, "firing"), (2, float("nan"), "ok")],
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name):
    rule, steps = SCENARIOS[name]
    assert run(rule, steps) == [expected for _, _, expected in steps]


def test_only_unready_severity_blocks_readiness():
    history = History(60)
    history.record(T0, [(QUEUE, 20.0)])
    ruleset = RuleSet((make_rule(name="hard", above=10), make_rule(name="soft", above=5, severity="warn")))
    _, statuses = engine.evaluate(ruleset, history, engine.initial_state(), T0)
    assert [(s.rule.name, s.state, s.blocking) for s in statuses] == [
        ("hard", "firing", True),
        ("soft", "firing", False),
    ]
    assert not ready_on_a_good_page(statuses)
    assert ready_on_a_good_page(statuses[1:])


def test_each_output_series_has_its_own_state():
    """A rule yielding one series per engine tracks each; the rule reports the worst."""
    rule = make_rule(expr="vllm:num_requests_waiting", above=5, for_seconds=2)
    ruleset, history, state = RuleSet((rule,)), History(60), engine.initial_state()

    def series(engine_id, value):
        return ((("__name__", "vllm:num_requests_waiting"), ("engine", engine_id)), value)

    history.record(T0, [series("0", 9), series("1", 1)])
    state, (status,) = engine.evaluate(ruleset, history, state, T0)
    assert status.state == "pending"
    history.record(T0 + 1, [series("0", 1), series("1", 9)])
    state, (status,) = engine.evaluate(ruleset, history, state, T0 + 1)
    # engine 0 reset, engine 1 just started pending: not yet firing
    assert {dict(s.labels)["engine"]: s.state for s in status.series} == {"0": "ok", "1": "pending"}
    history.record(T0 + 3, [series("0", 1), series("1", 9)])
    state, (status,) = engine.evaluate(ruleset, history, state, T0 + 3)
    assert status.state == "firing" and status.value == 9
    assert 'engine="1"' in status.reason


def test_reason_says_value_and_threshold():
    history = History(60)
    history.record(T0, [(QUEUE, 12.0)])
    _, (status,) = engine.evaluate(
        RuleSet((make_rule(name="tgi_queue_size", above=10),)), history, engine.initial_state(), T0
    )
    assert status.reason == "value 12 > threshold 10"


def test_unchanged_rules_keep_their_timers_across_a_reload_and_changed_ones_restart():
    history, state = History(60), engine.initial_state()
    kept, changed = make_rule(name="kept", above=10, for_seconds=5), make_rule(name="changed", above=10, for_seconds=5)
    history.record(T0, [(QUEUE, 11.0)])
    state, _ = engine.evaluate(RuleSet((kept, changed)), history, state, T0)
    # reload at T0+5: `changed` gets a new threshold, a new rule appears
    new_changed = make_rule(name="changed", above=9, for_seconds=5)
    added = make_rule(name="added", above=10)
    history.record(T0 + 5, [(QUEUE, 11.0)])
    state, statuses = engine.evaluate(RuleSet((kept, new_changed, added)), history, state, T0 + 5)
    assert [(s.rule.name, s.state) for s in statuses] == [
        ("kept", "firing"),
        ("changed", "pending"),
        ("added", "firing"),
    ]


def test_transitions_are_marked_once():
    rule = make_rule(above=10)
    history, state = History(60), engine.initial_state()
    marks = []
    for t, v in [(0, 1), (1, 11), (2, 12), (3, 1)]:
        history.record(T0 + t, [(QUEUE, float(v))])
        state, (status,) = engine.evaluate(RuleSet((rule,)), history, state, T0 + t)
        marks.append(status.previous_state)
    assert marks == [None, "ok", None, "firing"]


def test_hold_keeps_states_without_evaluating():
    rule = make_rule(above=10)
    history, state = History(60), engine.initial_state()
    history.record(T0, [(QUEUE, 11.0)])
    state, _ = engine.evaluate(RuleSet((rule,)), history, state, T0)
    state, (status,) = engine.hold(RuleSet((rule,)), state, T0 + 1, "scrape failed")
    assert status.state == "firing" and status.blocking
