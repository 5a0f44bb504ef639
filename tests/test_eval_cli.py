"""`llm-healthcheck eval` over saved captures and a live loopback endpoint."""

import json
import re
import subprocess
import sys

from tests.support import FIXTURES, free_port


def run_eval(*args):
    return subprocess.run([sys.executable, "-m", "exporter", "eval", *args], capture_output=True, text=True, timeout=60)


def test_eval_a_saved_capture_with_the_seed_rule():
    result = run_eval("--file", str(FIXTURES / "tgi-datadog-integrations-core-3.3.5.prom"))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "[+] scrape: ok",
        "[+] tgi_queue_size: ok: sum(tgi_queue_size) = 0 <= 15",
        "ready: all rules ok",
    ]


def test_eval_a_live_endpoint_that_is_saturated(upstream, tmp_path):
    upstream.body = b'vllm:num_requests_waiting{model_name="m"} 40\n'
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - name: waiting\n    expr: sum(vllm:num_requests_waiting)\n    above: 5\n")
    result = run_eval("--endpoint", upstream.url, str(rules))
    assert result.returncode == 1
    assert "[-] waiting: firing for 0s: sum(vllm:num_requests_waiting) = 40 > 5" in result.stdout
    assert result.stderr == ""


def test_eval_json(upstream):
    upstream.body = b"tgi_queue_size 3\n"
    doc = json.loads(run_eval("--endpoint", upstream.url, "--json").stdout)
    assert doc["ready"] is True and doc["rules"][0]["value"] == 3


def test_eval_unreachable_endpoint_says_why():
    result = run_eval("--endpoint", f"http://127.0.0.1:{free_port()}/metrics")
    assert result.returncode == 1
    assert "[-] scrape: connection refused" in result.stdout
    assert result.stderr == ""


def test_eval_broken_rules_are_reported_like_check(tmp_path):
    rules = tmp_path / "bad.yaml"
    rules.write_text("rules:\n  - name: x\n    expr: sum(\n    above: 1\n")
    result = run_eval("--file", str(FIXTURES / "tgi-datadog-integrations-core-3.3.5.prom"), str(rules))
    assert result.returncode == 2
    assert result.stderr.startswith(f"llm-healthcheck: {rules}:3:")
    assert "Traceback" not in result.stderr


def test_watch_builds_history_so_for_and_rate_act(upstream, tmp_path):
    """--watch scrapes at the interval: `for` goes pending then firing, rate() gets a value,
    and each transition is printed; it stops by itself after --duration."""
    import threading

    upstream.body = b"tgi_queue_size 1\ntgi_request_count 0\n"
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: queue\n    expr: sum(tgi_queue_size)\n    above: 10\n    for: 600ms\n"
        "  - name: requests\n    expr: sum(rate(tgi_request_count[5s]))\n    above: 50\n    severity: warn\n"
    )
    watch = ["--watch", "--scrape-interval", "0.2s", "--scrape-timeout", "0.15s", "--duration", "4s"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "eval", "--metrics-endpoint", upstream.url, "--rules", str(rules), *watch],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = [proc.stdout.readline() for _ in range(4)]  # the first verdict, before any load
    assert first[-1] == "ready: all rules ok\n", first
    for step in range(1, 31):  # then the queue rises and the counter climbs 100/s
        upstream.body = f"tgi_queue_size 30\ntgi_request_count {step * 10}\n".encode()
        threading.Event().wait(0.1)
    out, err = proc.communicate(timeout=30)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(first) + out, err)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines[:2] == ["[+] scrape: ok", "[+] queue: ok: sum(tgi_queue_size) = 1 <= 10"]
    pending = r"^\d\d:\d\d:\d\d ok -> \[\+\] queue: pending for 0s of 0\.6s: sum\(tgi_queue_size\) = 30 > 10$"
    assert re.search(pending, result.stdout, re.M), result.stdout
    assert re.search(r"^\d\d:\d\d:\d\d pending -> \[-\] queue: firing for 0s: ", result.stdout, re.M)
    assert re.search(r'^\d\d:\d\d:\d\d readiness -> unready: rule "queue" firing', result.stdout, re.M)
    assert result.stdout.index("pending ->") < result.stdout.index("readiness -> unready")
    # rate() over the history --watch keeps: about 100/s, which a single scrape cannot show
    rate_fired = r"ok -> \[\+\] requests: firing for 0s \(severity warn\): sum\(rate\(tgi_request_count\[5s\]\)\) = \d"
    assert re.search(rate_fired, result.stdout), result.stdout


def test_endpoint_is_an_alias_of_metrics_endpoint(upstream):
    upstream.body = b"tgi_queue_size 3\n"
    new, old = run_eval("--metrics-endpoint", upstream.url), run_eval("--endpoint", upstream.url)
    assert new.returncode == old.returncode == 0
    assert new.stdout == old.stdout
