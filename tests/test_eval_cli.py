"""`llm-healthcheck eval` over saved captures and a live loopback endpoint."""

import json
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
    assert result.stderr.startswith(f"{rules}:3:")
    assert "Traceback" not in result.stderr
