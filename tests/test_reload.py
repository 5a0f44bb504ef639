"""Live reload from a ConfigMap-style directory: on a fake clock, and once on a real gunicorn."""

import json
import os
import signal

import pytest
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.settings import load_settings
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.telemetry import build_registry
from tests.configmap import ConfigMapDir
from tests.support import FAST

QUEUE_10 = "rules:\n  - name: queue\n    expr: sum(tgi_queue_size)\n    above: 10\n    for: 5s\n"
QUEUE_10_PLUS_KV = QUEUE_10 + "  - name: batch\n    expr: sum(tgi_batch_current_size)\n    above: 100\n"
QUEUE_3 = "rules:\n  - name: queue\n    expr: sum(tgi_queue_size)\n    above: 3\n"
BROKEN = "rules:\n  - name: queue\n    expr: sum(tgi_queue_size\n    above: 10\n"


def metrics_of(client) -> dict:
    text = client.simulate_get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


@pytest.fixture
def world(tmp_path, clock, upstream):
    upstream.body = b"tgi_queue_size 11\ntgi_batch_current_size 4\n"
    cm = ConfigMapDir(tmp_path / "rules", {"tgi.yaml": QUEUE_10})
    settings = load_settings({"RULES_PATH": str(cm.root), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "5s"})
    evaluator = Evaluator(settings, clock=clock)
    client = testing.TestClient(create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False)))

    def tick(seconds=1.0):
        clock.advance(seconds)
        evaluator.maybe_reload()
        return evaluator.cycle()

    return cm, evaluator, client, tick


def test_good_swap_applies_within_one_poll(world):
    cm, evaluator, client, tick = world
    tick()
    cm.swap({"tgi.yaml": QUEUE_3})
    decision = tick(5.0)  # one poll interval later
    assert [(r.rule.name, r.rule.above) for r in decision.rules] == [("queue", 3.0)]
    assert decision.reload.last_ok and dict(decision.reload.counts) == {"success": 1}
    m = metrics_of(client)
    assert m[("llm_healthcheck_rules_last_reload_successful", ())] == 1
    assert m[("llm_healthcheck_rules_reloads_total", (("result", "success"),))] == 1


def test_broken_swap_keeps_the_old_rules_and_says_so(world, caplog):
    cm, evaluator, client, tick = world
    tick()
    old_sha = evaluator.decision.ruleset.sha256
    cm.swap({"tgi.yaml": BROKEN})
    with caplog.at_level("ERROR", logger="llm_healthcheck"):
        decision = tick(5.0)
    assert decision.ruleset.sha256 == old_sha
    assert [r.rule.above for r in decision.rules] == [10.0]
    assert not decision.reload.last_ok
    m = metrics_of(client)
    assert m[("llm_healthcheck_rules_last_reload_successful", ())] == 0
    assert m[("llm_healthcheck_rules_reloads_total", (("result", "failure"),))] == 1
    assert m[("llm_healthcheck_rules_info", (("sha256", old_sha),))] == 1
    # the same lines `check` prints, one per problem
    assert any(r.getMessage().startswith(f"{cm.root}/tgi.yaml:3:") for r in caplog.records)
    # the same broken content is not retried (and counted) on every poll
    tick(5.0)
    tick(5.0)
    assert dict(evaluator.decision.reload.counts) == {"failure": 1}
    # fixing it applies and clears the gauge
    cm.swap({"tgi.yaml": QUEUE_3})
    assert tick(5.0).reload.last_ok
    assert metrics_of(client)[("llm_healthcheck_rules_last_reload_successful", ())] == 1


def test_no_poll_before_the_interval(world):
    cm, evaluator, client, tick = world
    tick()
    cm.swap({"tgi.yaml": QUEUE_3})
    decision = tick(3.0)  # 4s after start: the 5s poll is not due yet
    assert decision.rules[0].rule.above == 10.0
    assert tick(1.0).rules[0].rule.above == 3.0


def test_unchanged_rules_keep_state_new_start_ok_removed_leave_metrics(world):
    cm, evaluator, client, tick = world
    for _ in range(3):
        tick()
    queue = evaluator.decision.rules[0]
    assert queue.state == "pending"
    pending_since = queue.since
    cm.swap({"tgi.yaml": QUEUE_10_PLUS_KV})
    decision = tick(5.0)
    states = {r.rule.name: (r.state, r.since) for r in decision.rules}
    assert states["queue"] == ("firing", decision.time)  # its `for` timer survived the reload
    assert states["batch"][0] == "ok"
    assert pending_since < decision.time
    assert ("llm_healthcheck_rule_state", (("rule", "batch"), ("severity", "unready"), ("state", "ok"))) in metrics_of(
        client
    )
    cm.swap({"tgi.yaml": QUEUE_3})
    tick(5.0)
    assert not any(dict(labels).get("rule") == "batch" for _, labels in metrics_of(client))


def test_reload_on_request_without_content_change(world):
    cm, evaluator, client, tick = world
    tick()
    evaluator.request_reload()
    clock_unmoved = tick(0.0)
    assert dict(clock_unmoved.reload.counts) == {"success": 1}


def test_rules_info_changes_with_content(world):
    cm, evaluator, client, tick = world
    tick()
    before = evaluator.decision.ruleset.sha256
    cm.swap({"tgi.yaml": QUEUE_3})
    after = tick(5.0).ruleset.sha256
    assert before != after
    assert metrics_of(client)[("llm_healthcheck_rules_info", (("sha256", after),))] == 1


# ---- the real process ---------------------------------------------------------------------


def rule_thresholds(sidecar):
    return [r["thresholds"].get("above") for r in json.loads(sidecar.get("/rules")[1])["rules"]]


def gauge(sidecar, name):
    for f in text_string_to_metric_families(sidecar.get("/metrics")[1]):
        for s in f.samples:
            if s.name == name:
                return s.value


def test_configmap_swap_on_a_real_sidecar(tmp_path, start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 5\n"
    cm = ConfigMapDir(tmp_path / "rules", {"tgi.yaml": QUEUE_10})
    sidecar = start_sidecar(
        {"RULES_PATH": str(cm.root), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "0.3s", **FAST}
    )
    sidecar.wait_ready_to_serve()
    sidecar.wait_for(lambda: sidecar.health() == 200, 5, "ready")
    cm.swap({"tgi.yaml": BROKEN})
    sidecar.wait_for(lambda: gauge(sidecar, "llm_healthcheck_rules_last_reload_successful") == 0, 10, "failed reload")
    assert rule_thresholds(sidecar) == [10.0] and sidecar.health() == 200
    assert f"{cm.root}/tgi.yaml:3:" in sidecar.output
    cm.swap({"tgi.yaml": QUEUE_3})
    sidecar.wait_for(lambda: rule_thresholds(sidecar) == [3.0], 10, "new rules")
    sidecar.wait_for(lambda: sidecar.health() == 503, 5, "5 > 3 turns unready")
    assert gauge(sidecar, "llm_healthcheck_rules_last_reload_successful") == 1


def test_sighup_reloads_without_replacing_the_worker(tmp_path, start_sidecar, upstream):
    import subprocess

    upstream.body = b"tgi_queue_size 5\n"
    rules = tmp_path / "rules.yaml"
    rules.write_text(QUEUE_10)
    sidecar = start_sidecar(
        {"RULES_PATH": str(rules), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "1h", **FAST}
    )
    sidecar.wait_ready_to_serve()

    def worker_pids():
        return subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(sidecar.proc.pid)], capture_output=True, text=True
        ).stdout.split()

    before = worker_pids()
    rules.write_text(QUEUE_3)
    os.kill(sidecar.proc.pid, signal.SIGHUP)
    sidecar.wait_for(lambda: rule_thresholds(sidecar) == [3.0], 10, "SIGHUP reload")
    assert worker_pids() == before


def test_reload_endpoint_when_enabled(tmp_path, start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 5\n"
    rules = tmp_path / "rules.yaml"
    rules.write_text(QUEUE_10)
    sidecar = start_sidecar(
        {"RULES_PATH": str(rules), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "1h", **FAST},
        args=("--enable-reload-endpoint",),
    )
    sidecar.wait_ready_to_serve()
    rules.write_text(BROKEN)
    status, body, _ = sidecar.get("/-/reload", method="POST")
    assert status == 500 and f"{rules}:3:" in body
    rules.write_text(QUEUE_3)
    status, body, _ = sidecar.get("/-/reload", method="POST")
    assert (status, body) == (200, "rules reloaded\n")
    assert rule_thresholds(sidecar) == [3.0]
