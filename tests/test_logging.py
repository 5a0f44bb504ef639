"""Logs: state changes only (never per probe), JSON on request, secrets redacted everywhere."""

import json

from tests.support import FAST


def test_json_logs_redacted_and_quiet_per_probe(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    secret_url = upstream.url.replace("http://", "http://scraper:hunter2@") + "?token=abc123"
    sidecar = start_sidecar({"METRICS_ENDPOINT": secret_url, "LOG_FORMAT": "json", **FAST})
    sidecar.wait_ready_to_serve()
    sidecar.wait_for(lambda: sidecar.health() == 200, 5, "ready")
    sidecar.wait_for(lambda: "readiness -> ready" in sidecar.output, 5, "readiness log line")
    lines_before = sidecar.output.count("\n")
    for _ in range(50):
        sidecar.get("/health")
    rules = sidecar.get("/rules")[1]
    assert sidecar.output.count("\n") == lines_before  # nothing per probe
    upstream.body = b"tgi_queue_size 99\n"
    sidecar.wait_for(lambda: "readiness -> unready" in sidecar.output, 5, "unready log line")

    ours = [json.loads(line) for line in sidecar.output.splitlines() if line.startswith("{")]
    assert ours and all({"ts", "level", "msg"} <= entry.keys() for entry in ours)
    assert any(entry["msg"].startswith("listening on 127.0.0.1") for entry in ours)
    assert any('rule "tgi_queue_size" ok -> firing' in entry["msg"] for entry in ours)
    for text in (sidecar.output, rules):
        assert "hunter2" not in text and "abc123" not in text
    assert "http://***@127.0.0.1" in rules and "token=***" in rules
