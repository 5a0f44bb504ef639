"""The load score across reloads and scrape failures, on a fake clock: a good change applies at
the next poll, a bad score keeps the last good one, and failing scrapes go to on_stale only
after failure_threshold, as readiness does."""

from falcon import testing

from exporter.config.settings import load_settings
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.telemetry import build_registry
from tests.configmap import ConfigMapDir

RULE = "rules:\n  - {name: q, expr: sum(tgi_queue_size), above: 100}\n"
SCORE_10 = "score:\n  on_stale: 0.9\n  expr: sum(tgi_queue_size) / 10\n" + RULE
SCORE_20 = "score:\n  on_stale: 0.9\n  expr: sum(tgi_queue_size) / 20\n" + RULE
BAD = "score:\n  expr: sum(tgi_queue_size) / $missing\n" + RULE


def world(tmp_path, clock, upstream):
    upstream.body = b"tgi_queue_size 4\n"
    cm = ConfigMapDir(tmp_path / "rules", {"tgi.yaml": SCORE_10})
    settings = load_settings({"RULES_PATH": str(cm.root), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "5s"})
    evaluator = Evaluator(settings, clock=clock)
    client = testing.TestClient(create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False)))

    def load_after(seconds=1.0) -> str:
        clock.advance(seconds)
        evaluator.maybe_reload()
        evaluator.cycle()
        return client.simulate_get("/load").text.splitlines()[-1]

    return cm, evaluator, load_after


def test_score_follows_reloads_and_a_bad_one_keeps_the_last_good(tmp_path, clock, upstream):
    cm, evaluator, load_after = world(tmp_path, clock, upstream)
    assert load_after() == "llm_healthcheck_load 0.4"
    cm.swap({"tgi.yaml": SCORE_20})
    assert load_after(5.0) == "llm_healthcheck_load 0.2"
    cm.swap({"tgi.yaml": BAD})
    assert load_after(5.0) == "llm_healthcheck_load 0.2"  # rejected: the last good score stays
    assert evaluator.last_reload.last_ok is False and "unknown parameter $missing" in evaluator.last_reload.last_error


def test_failing_scrapes_hold_then_go_stale(tmp_path, clock, upstream):
    cm, evaluator, load_after = world(tmp_path, clock, upstream)
    assert load_after() == "llm_healthcheck_load 0.4"
    upstream.status = 500
    assert load_after() == "llm_healthcheck_load 0.4"  # 1 of failure_threshold 3: held
    assert load_after() == "llm_healthcheck_load 0.4"
    assert load_after() == "llm_healthcheck_load 0.9"  # the third failure: on_stale
    upstream.status = 200
    assert load_after() == "llm_healthcheck_load 0.4"
    evaluator.terminate()
    assert load_after() == "llm_healthcheck_load 0.9"  # terminating counts as stale
