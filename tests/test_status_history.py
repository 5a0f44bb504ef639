"""Each rule's recent points for the status page's charts: bounded, thinned, state changes kept,
reset where old points would mislead."""

from dataclasses import replace
from types import SimpleNamespace

from exporter.core.engine import RuleStatus
from exporter.rules.model import Rule
from exporter.serve.status_history import RuleHistory, state_spans

QUEUE = Rule("queue", "sum(q)", None, above=10.0)
OTHER = Rule("other", "sum(o)", None, above=1.0)


def decision(time: float, *statuses) -> SimpleNamespace:
    return SimpleNamespace(time=time, rules=statuses)


def status(rule: Rule, value, state: str = "ok") -> RuleStatus:
    return RuleStatus(rule, state, value, 0.0, "")


def test_points_are_thinned_but_a_state_change_is_always_kept():
    history = RuleHistory(window_seconds=60, max_points=6)  # one point per 10 s at most
    for t in range(0, 30):
        history.record(decision(1000.0 + t, status(QUEUE, float(t))))
    history.record(decision(1030.5, status(QUEUE, 12.0, "firing")))  # 0.5 s later, but a new state
    times = [p.time for p in history.points("queue")]
    assert times == [1000.0, 1010.0, 1020.0, 1030.5]
    assert history.points("queue")[-1].state == "firing"


def test_window_and_point_cap_bound_the_ring():
    history = RuleHistory(window_seconds=100, max_points=10)
    for t in range(0, 1000, 10):
        history.record(decision(float(t), status(QUEUE, 1.0)))
    points = history.points("queue")
    assert len(points) <= 10 and points[0].time >= 990 - 100


def test_a_removed_rule_is_forgotten_and_a_changed_one_starts_over():
    history = RuleHistory(window_seconds=60, max_points=60)
    history.record(decision(0.0, status(QUEUE, 1.0), status(OTHER, 2.0)))
    history.record(decision(5.0, status(QUEUE, 1.0)))
    assert history.points("other") == ()
    changed = replace(QUEUE, above=20.0)  # judged against another threshold from now on
    history.record(decision(10.0, status(changed, 3.0)))
    assert [p.value for p in history.points("queue")] == [3.0]


def test_wall_clock_stepping_back_starts_over():
    history = RuleHistory(window_seconds=60, max_points=60)
    for t in (100.0, 101.0, 102.0):
        history.record(decision(t, status(QUEUE, t)))
    history.record(decision(50.0, status(QUEUE, 7.0)))
    assert [(p.time, p.value) for p in history.points("queue")] == [(50.0, 7.0)]


def test_state_spans_run_until_now():
    history = RuleHistory(window_seconds=60, max_points=60)
    for t, state in ((0, "ok"), (1, "pending"), (2, "pending"), (3, "firing"), (4, "recovering")):
        history.record(decision(float(t), status(QUEUE, 1.0, state)))
    assert state_spans(history.points("queue"), 9.0) == [
        (0.0, 1.0, "ok"),
        (1.0, 3.0, "pending"),
        (3.0, 4.0, "firing"),
        (4.0, 9.0, "recovering"),
    ]
