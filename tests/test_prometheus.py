"""Where the test is about Prometheus, a real Prometheus: promtool lints /metrics, and a Prometheus
server scrapes a real sidecar and serves back what the sidecar exported."""

import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.support import FAST, free_port, require_tool


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
    prometheus = need("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: llm-healthcheck\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{sidecar.port}']\n"
    )
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def query(expr: str):
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)["data"]["result"]

        def wait_for(expr: str):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read()
                try:
                    result = query(expr)
                    if result:
                        return result
                except OSError:
                    pass
                time.sleep(0.5)
            raise AssertionError(f"Prometheus never returned {expr}")

        ready = wait_for("llm_healthcheck_ready")
        assert float(ready[0]["value"][1]) == 0.0  # the sidecar answers 503 on queue 20
        assert ready[0]["metric"]["job"] == "llm-healthcheck"
        firing = wait_for('llm_healthcheck_rule_state{rule="tgi_queue_size",state="firing"}')
        assert float(firing[0]["value"][1]) == 1.0
        value = wait_for('llm_healthcheck_rule_value{rule="tgi_queue_size"}')
        assert float(value[0]["value"][1]) == 20.0
        up = wait_for('up{job="llm-healthcheck"}')
        assert float(up[0]["value"][1]) == 1.0
    finally:
        proc.terminate()
        proc.wait(20)
