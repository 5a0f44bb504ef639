"""The decision policy, cycle by cycle on a fake clock, against a real loopback upstream."""

import pytest

from exporter.config.settings import load_settings
from exporter.serve.evaluator import Evaluator
from tests.support import free_port


def make_evaluator(clock, url, **env):
    settings = load_settings({"METRICS_ENDPOINT": url, "METRIC_THRESHOLD": "10", **env})
    return Evaluator(settings, clock=clock)


def cycle(evaluator, clock):
    clock.advance(1)
    return evaluator.cycle()


def test_unready_before_the_first_scrape(clock, upstream):
    decision = make_evaluator(clock, upstream.url).decision
    assert not decision.ready and decision.phase == "starting"


def test_follows_the_threshold_both_ways(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url)
    upstream.body = b"tgi_queue_size 3\n"
    assert cycle(evaluator, clock).ready
    upstream.body = b"tgi_queue_size 11\n"
    decision = cycle(evaluator, clock)
    assert not decision.ready
    assert decision.reason == 'rule "tgi_queue_size" firing: value 11 > threshold 10'
    upstream.body = b"tgi_queue_size 10\n"
    assert cycle(evaluator, clock).ready
    assert dict(evaluator.decision.readiness_transitions) == {"ready": 2, "unready": 1}


def test_series_are_summed(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url)
    upstream.body = b'tgi_queue_size{shard="0"} 6\ntgi_queue_size{shard="1"} 5\n'
    assert not cycle(evaluator, clock).ready


@pytest.mark.parametrize("body", [b"", b"null", b"null\n"])
def test_empty_or_null_body_is_ready_like_the_seed(clock, upstream, body):
    evaluator = make_evaluator(clock, upstream.url)
    upstream.body = body
    decision = cycle(evaluator, clock)
    assert decision.ready and decision.scrape.empty


def test_empty_body_policy_is_configurable(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url, ON_EMPTY="unready")
    upstream.body = b"null"
    assert not cycle(evaluator, clock).ready


def test_absent_metric_is_no_data_and_ready(clock, upstream):
    # TGI creates tgi_queue_size on first use; the seed answered 500 forever here.
    evaluator = make_evaluator(clock, upstream.url)
    upstream.body = b"tgi_batch_current_size 0\n"
    decision = cycle(evaluator, clock)
    assert decision.ready
    assert decision.rules[0].reason == "no data"


def test_failures_below_the_threshold_keep_the_last_decision(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url)
    upstream.body = b"tgi_queue_size 1\n"
    assert cycle(evaluator, clock).ready
    upstream.status = 500
    assert cycle(evaluator, clock).ready
    assert cycle(evaluator, clock).ready
    decision = cycle(evaluator, clock)
    assert not decision.ready
    assert decision.reason == "scrape failing: upstream answered HTTP 500 (3 consecutive failures)"
    assert dict(decision.scrape_failures) == {"http_status": 3}
    upstream.status = 200
    assert cycle(evaluator, clock).ready


def test_failing_scrapes_keep_rule_state(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url, FAILURE_THRESHOLD="5")
    upstream.body = b"tgi_queue_size 50\n"
    assert not cycle(evaluator, clock).ready
    upstream.status = 503
    decision = cycle(evaluator, clock)
    assert not decision.ready and decision.rules[0].state == "firing"


def test_on_failure_ready_fails_open(clock):
    evaluator = make_evaluator(
        clock, f"http://127.0.0.1:{free_port()}/metrics", ON_FAILURE="ready", FAILURE_THRESHOLD="2"
    )
    assert not cycle(evaluator, clock).ready  # starting, one failure
    decision = cycle(evaluator, clock)
    assert decision.ready and decision.scrape.reason == "refused"


def test_on_failure_hold_keeps_the_last_readiness(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url, ON_FAILURE="hold", FAILURE_THRESHOLD="1")
    upstream.body = b"tgi_queue_size 1\n"
    assert cycle(evaluator, clock).ready
    upstream.status = 502
    decision = cycle(evaluator, clock)
    assert decision.ready and "on_failure=hold keeps ready" in decision.reason


def test_unready_at_start_until_a_good_scrape(clock):
    evaluator = make_evaluator(clock, f"http://127.0.0.1:{free_port()}/metrics")
    for _ in range(5):
        decision = cycle(evaluator, clock)
        assert not decision.ready
    assert decision.scrape.consecutive_failures == 5


def test_terminate_turns_unready_at_once(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url)
    upstream.body = b"tgi_queue_size 1\n"
    assert cycle(evaluator, clock).ready
    evaluator.terminate()
    assert not evaluator.decision.ready and evaluator.decision.phase == "terminating"
    assert not cycle(evaluator, clock).ready


def test_liveness_follows_the_loop_not_the_upstream(clock, upstream):
    evaluator = make_evaluator(clock, upstream.url)
    upstream.status = 500
    cycle(evaluator, clock)
    assert evaluator.alive()  # upstream broken, loop turning
    clock.advance(3 * 1 + 0.8 + 0.1)  # no cycle for 3 intervals + timeout
    assert not evaluator.alive()


def test_rules_are_listed_before_the_first_scrape(clock, upstream):
    """/rules and the metrics' label children must not be empty while the pod is starting."""
    decision = make_evaluator(clock, upstream.url).decision
    assert [(s.rule.name, s.state, s.reason) for s in decision.rules] == [("tgi_queue_size", "ok", "not evaluated yet")]


def test_a_page_with_more_series_than_the_history_holds_is_a_failed_scrape(clock, upstream):
    """Memory stays bounded whatever the upstream prints, and the loss is visible: a page over
    the cap is a failed scrape with its reason (issue 14), not a partly stored page."""
    evaluator = make_evaluator(clock, upstream.url, HISTORY_MAX_SERIES="2")
    upstream.body = b'tgi_queue_size{a="1"} 1\ntgi_queue_size{a="2"} 1\ntgi_queue_size{a="3"} 1\n'
    decision = cycle(evaluator, clock)
    assert (decision.scrape.ok, decision.scrape.reason) == (False, "too_large")
    assert decision.scrape.error == "3 samples selected, over the 2 series the history can hold"
    assert decision.history_series == 0 and decision.scrape_failures["too_large"] == 1
    upstream.body = b'tgi_queue_size{a="1"} 1\ntgi_queue_size{a="2"} 1\n'
    decision = cycle(evaluator, clock)
    assert decision.scrape.ok and decision.history_series == 2
