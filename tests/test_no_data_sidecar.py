"""The blocker of issue 15, end to end: a misspelt metric name against the fake TGI server.

A real sidecar (gunicorn on loopback) scrapes a real `fake-server --engine tgi`; the pod stays
ready, as it must, but its /metrics says the rule has no data, its log names the absent family
once, and the shipped alert fires in `promtool test rules` on exactly the values the sidecar
exported."""

import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import FAST, REPO, require_tool
from tests.test_fake_server import FakeServer

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"


@pytest.fixture
def tgi():
    server = FakeServer("--engine", "tgi", "--rate", "3")
    yield server
    server.stop()


def _alert(name: str) -> dict:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return next(rule for rule in rules if rule.get("alert") == name)


def samples(text: str, *names: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name in names]


def test_misspelt_metric_is_ready_but_flagged_logged_and_alerted(start_sidecar, tgi, tmp_path):
    sidecar = start_sidecar({"METRICS_ENDPOINT": tgi.url + "/metrics", "METRIC_TO_CHECK": "tgi_queue_sizee", **FAST})
    sidecar.wait_ready_to_serve()
    sidecar.wait_for(lambda: sidecar.health() == 200, 10, "ready")

    def flagged():
        text = sidecar.get("/metrics")[1]
        found = samples(text, "llm_healthcheck_rule_no_data", "llm_healthcheck_scrape_success")
        values = {s.name: s.value for s in found}
        return found if values == {"llm_healthcheck_rule_no_data": 1.0, "llm_healthcheck_scrape_success": 1.0} else None

    exported = sidecar.wait_for(flagged, 10, "rule_no_data 1 while scrapes succeed")
    sidecar.wait_for(lambda: "absent from the page" in sidecar.output, 5, "the no-data warning")
    for _ in range(5):  # several more cycles: the warning is not repeated
        sidecar.get("/health")
    sidecar.wait_for(lambda: samples(sidecar.get("/metrics")[1], "llm_healthcheck_scrape_success"), 5, "a scrape")
    warnings = [line for line in sidecar.output.splitlines() if "absent from the page" in line]
    assert len(warnings) == 1, sidecar.output
    assert 'rule "tgi_queue_sizee": no data: metric families absent from the page: tgi_queue_sizee' in warnings[0]
    assert "WARNING" in warnings[0]
    verbose = sidecar.get("/health?verbose")[1]
    assert "tgi_queue_sizee: ok: no data" in verbose, verbose

    promtool = require_tool("promtool", "apt-get install prometheus")
    pod = {"namespace": "llm", "workload": "tgi", "pod": "tgi-a"}
    series = []
    for sample in exported:
        labels = {**sample.labels, **pod}
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        series.append({"series": f"{sample.name}{{{text}}}", "values": f"{sample.value:g}x20"})
    shutil.copy(ALERTS, tmp_path / "alerts.yaml")
    tests = {
        "rule_files": ["alerts.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "LLMHealthcheckRuleNoData", "exp_alerts": []},
                    {
                        "eval_time": "11m",
                        "alertname": "LLMHealthcheckRuleNoData",
                        "exp_alerts": [
                            {
                                "exp_labels": {**pod, "severity": "warning", "rule": "tgi_queue_sizee"},
                                "exp_annotations": {
                                    "summary": "llm/tgi-a rule tgi_queue_sizee has had no data for 10 minutes",
                                    "description": _alert("LLMHealthcheckRuleNoData")["annotations"]["description"],
                                },
                            },
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "no_data.test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "no_data.test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
