"""The HTTP surface through falcon.testing, over a real evaluator fed by a loopback upstream."""

import pytest
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.settings import load_settings
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.telemetry import build_registry


@pytest.fixture
def world(clock, upstream):
    settings = load_settings({"METRICS_ENDPOINT": upstream.url, "METRIC_THRESHOLD": "10"})
    evaluator = Evaluator(settings, clock=clock)
    app = create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False))

    class World:
        client = testing.TestClient(app)

        def cycle(self, body: bytes):
            upstream.body = body
            clock.advance(1)
            return evaluator.cycle()

    world = World()
    world.evaluator = evaluator
    return world


def test_health_bodies_are_the_seeds(world):
    world.cycle(b"tgi_queue_size 1\n")
    ok = world.client.simulate_get("/health")
    assert (ok.status_code, ok.text, ok.headers["content-type"]) == (200, "Healthy\n", "text/plain; charset=utf-8")
    world.cycle(b"tgi_queue_size 12\n")
    bad = world.client.simulate_get("/health")
    assert (bad.status_code, bad.text) == (503, "Unhealthy\n")


def test_head_health_has_the_status_and_no_body(world):
    world.cycle(b"tgi_queue_size 12\n")
    result = world.client.simulate_head("/health")
    assert result.status_code == 503 and result.text == ""


def test_verbose_lists_each_rule_and_the_scrape(world):
    world.cycle(b"tgi_queue_size 12\n")
    result = world.client.simulate_get("/health", query_string="verbose")
    assert result.status_code == 503
    assert result.text.splitlines() == [
        "[+] scrape: ok",
        "[-] tgi_queue_size: firing for 0s: sum(tgi_queue_size) = 12 > 10",
        'unready: rule "tgi_queue_size" firing: value 12 > threshold 10',
    ]


def test_json_health_on_request(world):
    world.cycle(b"tgi_queue_size 12\n")
    result = world.client.simulate_get("/health", headers={"Accept": "application/json"})
    doc = result.json
    assert result.status_code == 503 and doc["status"] == "Unhealthy"
    rule = doc["rules"][0]
    assert (rule["name"], rule["state"], rule["value"], rule["thresholds"]) == (
        "tgi_queue_size",
        "firing",
        12,
        {"above": 10.0},
    )


def test_kubelet_accept_gets_plain_text(world):
    world.cycle(b"tgi_queue_size 1\n")
    assert world.client.simulate_get("/health", headers={"Accept": "*/*"}).text == "Healthy\n"


def test_rules_document_has_state_and_scrape_status(world):
    world.cycle(b"tgi_queue_size 1\n")
    doc = world.client.simulate_get("/rules").json
    assert doc["rules"][0]["state"] == "ok"
    assert doc["scrape"]["consecutive_failures"] == 0
    assert doc["scrape"]["last_success_age_seconds"] == 0


def test_livez_does_not_depend_on_the_upstream(world, upstream):
    upstream.status = 500
    world.cycle(b"")
    assert world.client.simulate_get("/livez").status_code == 200


def test_metrics_text_and_openmetrics(world):
    world.cycle(b"tgi_queue_size 12\n")
    text = world.client.simulate_get("/metrics")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text.text)}
    assert families["llm_healthcheck_ready"].samples[0].value == 0
    assert families["llm_healthcheck_scrape_success"].samples[0].value == 1
    om = world.client.simulate_get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")
    assert "_created" not in om.text


def test_unknown_path_404_and_wrong_method_405(world):
    assert world.client.simulate_get("/nope").status_code == 404
    assert world.client.simulate_post("/health").status_code == 405
    assert world.client.simulate_delete("/metrics").status_code == 405


def test_reload_endpoint_is_off_by_default(world):
    result = world.client.simulate_post("/-/reload")
    assert result.status_code == 403 and "disabled" in result.text
