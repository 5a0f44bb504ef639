"""/health?verbose lines say state, how long, the expression's value and the thresholds; ok
rules show their value; a failed reload is shown. Real upstream, fake clock."""

import pytest

from exporter.config.settings import load_settings
from exporter.serve.evaluator import Evaluator
from exporter.serve.explain import verbose_lines
from tests.configmap import ConfigMapDir

RULES = """rules:
  - name: queue_high
    expr: sum(tgi_queue_size)
    above: 15
    recover_below: 6
  - name: queue_warn
    expr: sum(tgi_queue_size)
    above: 50
    severity: warn
  - name: kv_full
    expr: max(vllm:kv_cache_usage_perc)
    above: 0.95
  - name: stalled
    expr: sum(tgi_queue_size) > 0 and sum(tgi_batch_current_size) == 0
    for: 20s
"""


@pytest.fixture
def world(tmp_path, clock, upstream):
    cm = ConfigMapDir(tmp_path / "rules", {"r.yaml": RULES})
    settings = load_settings({"RULES_PATH": str(cm.root), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "5s"})
    evaluator = Evaluator(settings, clock=clock)

    def lines(body: bytes, seconds=1.0):
        upstream.body = body
        clock.advance(seconds)
        evaluator.maybe_reload()
        return verbose_lines(evaluator.cycle())

    yield cm, lines
    evaluator.stop()


def test_the_issue_example_and_ok_rules_with_values(world):
    cm, lines = world
    lines(b"tgi_queue_size 37\ntgi_batch_current_size 4\n")
    shown = lines(b"tgi_queue_size 37\ntgi_batch_current_size 4\n", 42)
    assert shown == [
        "[+] scrape: ok",
        "[-] queue_high: firing for 42s: sum(tgi_queue_size) = 37 > 15 (recovers below 6)",
        "[+] queue_warn: ok (severity warn): sum(tgi_queue_size) = 37 <= 50",
        "[+] kv_full: ok: no data (max(vllm:kv_cache_usage_perc) returned no series)",
        "[+] stalled: ok: condition false (sum(tgi_queue_size) > 0 and sum(tgi_batch_current_size) == 0; "
        "filtered value 37)",
        'unready: rule "queue_high" firing: value 37 > threshold 15',
    ]
    band = lines(b"tgi_queue_size 8\ntgi_batch_current_size 0\n", 3)
    assert (
        band[1] == "[-] queue_high: firing for 45s: sum(tgi_queue_size) = 8 >= 6 (tripped above 15, recovers below 6)"
    )
    assert band[4] == (
        "[+] stalled: pending for 0s of 20s: sum(tgi_queue_size) > 0 and sum(tgi_batch_current_size) == 0 "
        "returned series (value 8)"
    )
    assert lines(b"tgi_queue_size 2\ntgi_batch_current_size 1\n")[1] == (
        "[+] queue_high: ok: sum(tgi_queue_size) = 2 <= 15"
    )


def test_a_failed_reload_is_shown_and_the_old_rules_stay(world):
    cm, lines = world
    lines(b"tgi_queue_size 1\n")
    cm.swap({"r.yaml": "rules:\n  - name: q\n    expr: sum(tgi_queue_size\n    above: 1\n"})
    shown = lines(b"tgi_queue_size 1\n", 5)
    (reload,) = [line for line in shown if line.startswith("[!] reload:")]
    assert "the last reload of the rule files failed, the previous rules stay in force: " in reload
    assert 'r.yaml:3:11: rule "q": expr: parse error' in reload
    assert any(line.startswith("[+] queue_high: ok:") for line in shown)
    assert shown[-1] == "ready: all rules ok"
