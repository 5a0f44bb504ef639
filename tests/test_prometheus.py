"""Where the test is about Prometheus, a real Prometheus: promtool lints /metrics, and a Prometheus
server scrapes a real sidecar and serves back what the sidecar exported."""

import subprocess

import pytest

from tests.real_prometheus import real_prometheus
from tests.support import FAST, require_tool


def need(tool: str) -> str:
    return require_tool(tool, "apt-get install prometheus")


@pytest.fixture
def sidecar(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 20\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    sidecar.wait_ready_to_serve()
    sidecar.wait_for(lambda: sidecar.health() == 503, 5, "unready on queue 20")
    return sidecar


def test_promtool_finds_nothing_to_say(sidecar):
    promtool = need("promtool")
    body = sidecar.get("/metrics")[1]
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_openmetrics_answer_passes_the_strict_parser(sidecar):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    body = sidecar.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})[1]
    names = {f.name for f in text_string_to_metric_families(body)}
    assert {"llm_healthcheck_ready", "llm_healthcheck_scrape_failures", "llm_healthcheck_build_info"} <= names
    assert "_created" not in body


def test_real_prometheus_scrapes_the_sidecar(sidecar, tmp_path):
    with real_prometheus(tmp_path, {"llm-healthcheck": sidecar.port}) as prometheus:
        ready = prometheus.wait_for(lambda p: p.query("llm_healthcheck_ready"), "llm_healthcheck_ready")
        assert float(ready[0]["value"][1]) == 0.0  # the sidecar answers 503 on queue 20
        assert ready[0]["metric"]["job"] == "llm-healthcheck"
        firing_expr = 'llm_healthcheck_rule_state{rule="tgi_queue_size",state="firing"}'
        firing = prometheus.wait_for(lambda p: p.query(firing_expr), firing_expr)
        assert float(firing[0]["value"][1]) == 1.0
        value_expr = 'llm_healthcheck_rule_value{rule="tgi_queue_size"}'
        value = prometheus.wait_for(lambda p: p.query(value_expr), value_expr)
        assert float(value[0]["value"][1]) == 20.0
        up = prometheus.wait_for(lambda p: p.query('up{job="llm-healthcheck"}'), "up")
        assert float(up[0]["value"][1]) == 1.0
