"""What the logs say about rules: pending is logged and counted, a missing family is named once
(and again only when that changes), a reload names what it changed, and JSON logs carry the
rule's fields. A real loopback upstream; the clock is a fake one, so nothing sleeps."""

import json
import logging

import pytest

from exporter.config.settings import load_settings
from exporter.serve.evaluator import Evaluator
from exporter.serve.logs import JsonFormatter
from tests.configmap import ConfigMapDir

RULES = (
    "rules:\n"
    "  - name: queue\n    expr: sum(tgi_queue_size)\n    above: 10\n    recover_below: 6\n    for: 2s\n"
    "  - name: typo\n    expr: sum(tgi_queue_sizee) + sum(tgi_batch_current_size)\n    above: 5\n"
)


@pytest.fixture
def world(tmp_path, clock, upstream, caplog):
    caplog.set_level(logging.INFO, logger="llm_healthcheck")
    upstream.body = b"tgi_queue_size 11\ntgi_batch_current_size 4\n"
    cm = ConfigMapDir(tmp_path / "rules", {"tgi.yaml": RULES})
    settings = load_settings({"RULES_PATH": str(cm.root), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "5s"})
    evaluator = Evaluator(settings, clock=clock)

    def tick(seconds=1.0):
        clock.advance(seconds)
        evaluator.maybe_reload()
        return evaluator.cycle()

    yield cm, evaluator, tick, caplog, upstream
    evaluator.stop()


def messages(caplog, level=logging.INFO):
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_pending_is_logged_and_counted(world):
    cm, evaluator, tick, caplog, upstream = world
    decision = tick()
    assert decision.rules[0].state == "pending"
    assert 'rule "queue" ok -> pending: value 11 > threshold 10 for 0s of 2s' in messages(caplog)
    assert decision.rule_transitions[("queue", "pending")] == 1
    tick(), tick()
    assert any(m.startswith('rule "queue" pending -> firing') for m in messages(caplog))


def test_a_recovery_names_the_recover_threshold_it_crossed(world):
    cm, evaluator, tick, caplog, upstream = world
    tick(), tick(), tick()  # firing
    upstream.body = b"tgi_queue_size 8\ntgi_batch_current_size 4\n"  # under 10, not yet under 6
    tick()
    assert evaluator.decision.rules[0].reason == "value 8 not yet < recover threshold 6"
    upstream.body = b"tgi_queue_size 5\ntgi_batch_current_size 4\n"
    tick()
    assert 'rule "queue" firing -> ok: value 5 < recover threshold 6' in messages(caplog)


def test_absent_family_is_named_once_and_again_when_it_changes(world):
    cm, evaluator, tick, caplog, upstream = world
    for _ in range(5):
        tick()
    warned = messages(caplog, logging.WARNING)
    assert warned == ['rule "typo": no data: metric families absent from the page: tgi_queue_sizee (on_missing ok)']
    upstream.body = b"tgi_queue_size 11\n"  # the page now lacks the batch family too
    tick(), tick()
    assert messages(caplog, logging.WARNING)[1:] == [
        'rule "typo": no data: metric families absent from the page: tgi_batch_current_size, tgi_queue_sizee'
        " (on_missing ok)"
    ]
    assert evaluator.decision.rules[1].no_data and not evaluator.decision.rules[0].no_data


def test_reload_logs_what_it_added_removed_and_changed(world):
    cm, evaluator, tick, caplog, upstream = world
    tick()
    cm.swap(
        {
            "tgi.yaml": "rules:\n  - name: queue\n    expr: sum(tgi_queue_size)\n    above: 12\n"
            "  - name: batch\n    expr: sum(tgi_batch_current_size)\n    above: 30\n"
        }
    )
    tick(5.0)
    (line,) = [m for m in messages(caplog) if m.startswith("rules reloaded")]
    assert line.endswith(": added batch; removed typo; changed queue")


def test_json_log_lines_carry_rule_fields(world):
    cm, evaluator, tick, caplog, upstream = world
    tick()
    record = next(r for r in caplog.records if "ok -> pending" in r.getMessage())
    entry = json.loads(JsonFormatter().format(record))
    assert {k: entry[k] for k in ("rule", "state", "previous_state", "value", "threshold")} == {
        "rule": "queue",
        "state": "pending",
        "previous_state": "ok",
        "value": 11.0,
        "threshold": 10.0,
    }
    assert entry["reason"] == "value 11 > threshold 10 for 0s of 2s"
    assert entry["thresholds"] == {"above": 10.0, "recover_below": 6.0}
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    entry = json.loads(JsonFormatter().format(warning))
    assert (entry["rule"], entry["absent"]) == ("typo", ["tgi_queue_sizee"])
