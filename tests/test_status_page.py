"""`GET /` and `GET /api/v1/status` over a real evaluator fed by a loopback upstream, on a fake clock."""

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from falcon import testing

from exporter.config.settings import load_settings
from exporter.core.engine import RuleStatus
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.status import StatusPublisher, status_document
from exporter.serve.status_history import RuleHistory
from exporter.serve.status_page import render_page
from exporter.serve.telemetry import build_registry

RULES = """\
rules:
  - name: queue_saturated
    description: too many queued requests
    expr: sum(tgi_queue_size)
    above: 10
    recover_below: 4
    for: 3s
    keep_firing_for: 5s
  - name: queue_warning
    expr: sum(tgi_queue_size)
    above: 5
    severity: warn
  - name: kv_cache_full
    expr: max(vllm:gpu_cache_usage_perc)
    above: 0.95
"""


@pytest.fixture
def world(clock, upstream, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = load_settings(
        {"RULES_PATH": str(rules), "METRICS_ENDPOINT": upstream.url.replace("://", "://ops:hunter2@")}
    )
    evaluator = Evaluator(settings, clock=clock)
    app = create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False))

    class World:
        client = testing.TestClient(app)

        def cycle(self, queue: float, seconds: float = 1.0):
            upstream.body = f"tgi_queue_size {queue}\n".encode()
            clock.advance(seconds)
            return evaluator.cycle()

        def cycle_body(self, body: bytes):
            upstream.body = body
            clock.advance(1)
            return evaluator.cycle()

        def page(self, query: str = ""):
            result = self.client.simulate_get("/", query_string=query)
            assert result.status_code == 200
            return result

        def api(self):
            result = self.client.simulate_get("/api/v1/status")
            assert result.status_code == 200 and result.headers["content-type"] == "application/json"
            return result.json

    world = World()
    world.evaluator, world.rules = evaluator, rules
    return world


class Rows(HTMLParser):
    """Each rules-table row as {rule, state, cells: [text per cell]}, and every tag seen."""

    def __init__(self):
        super().__init__()
        self.rows, self.tags, self._cell, self.meta = [], [], None, []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "tr" and "data-rule" in attrs:
            self.rows.append({"rule": attrs["data-rule"], "class": attrs.get("class", ""), "cells": []})
        elif tag == "td" and self.rows:
            self.rows[-1]["cells"].append("")
            self._cell = self.rows[-1]["cells"]
        elif tag == "meta":
            self.meta.append(attrs)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "tr":
            self._cell = None
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data
        elif self._cell is not None:
            self._cell[-1] += data


def parse(html: str) -> Rows:
    parser = Rows()
    parser.feed(html)
    return parser


def test_page_and_json_show_each_rule_with_state_and_value(world):
    world.cycle(7)
    rows = {row["rule"]: row for row in parse(world.page().text).rows}
    assert list(rows) == ["queue_saturated", "queue_warning", "kv_cache_full"]
    saturated, warning, kv = rows["queue_saturated"], rows["queue_warning"], rows["kv_cache_full"]
    assert saturated["cells"][2].startswith("ok") and saturated["cells"][3] == "7"
    assert warning["cells"][2].startswith("firing") and warning["cells"][1] == "warnreported only"
    assert kv["cells"][3] == "no data"
    assert "trips > 10" in saturated["cells"][4] and "recovers < 4" in saturated["cells"][4]
    doc = world.api()
    assert [(r["name"], r["state"], r["value"], r["no_data"]) for r in doc["rules"]] == [
        ("queue_saturated", "ok", 7, False),
        ("queue_warning", "firing", 7, False),
        ("kv_cache_full", "ok", None, True),
    ]
    assert doc["ready"] is True and doc["reason"] == "all rules ok"


def test_top_line_says_why_the_pod_is_out(world):
    world.cycle(1)
    for _ in range(5):
        world.cycle(12)
    text = world.page().text
    verdict = re.search(r'<p class="verdict unready" id="verdict">(.*?)</p>', text).group(1)
    assert "Unready" in verdict and "queue_saturated" in verdict and "firing" in verdict
    assert world.api()["status"] == "Unhealthy"


def test_pending_shows_progress_of_for_and_recovering_of_keep_firing_for(world):
    world.cycle(1)
    world.cycle(12)
    world.cycle(12)
    rule = world.api()["rules"][0]
    assert rule["state"] == "pending"
    assert rule["progress"] == {"of": "for", "elapsed_seconds": 1.0, "total_seconds": 3.0}
    assert "1s of for 3s" in world.page().text
    world.cycle(12, seconds=3)  # firing
    world.cycle(2, seconds=2)  # cleared: recovering
    rule = world.api()["rules"][0]
    assert rule["state"] == "recovering"
    assert rule["progress"]["of"] == "keep_firing_for" and rule["progress"]["total_seconds"] == 5.0


def test_chart_draws_threshold_band_and_shades_pending_firing_recovering(world):
    world.cycle(1)
    for queue in (12, 12, 12, 12, 12, 2, 2):
        world.cycle(queue)
    svg = _chart(world.page().text, "queue_saturated")
    for css in ("st-pending", "st-firing", "st-recovering", "band", "threshold", "recover", "value"):
        assert f'class="{css}"' in svg, css
    points = world.api()["rules"][0]["history"]
    assert [p[2] for p in points] == [
        "ok",
        "pending",
        "pending",
        "pending",
        "firing",
        "firing",
        "recovering",
        "recovering",
    ]
    assert [p[1] for p in points] == [1, 12, 12, 12, 12, 12, 2, 2]


def test_no_data_leaves_a_gap_instead_of_a_line(world):
    world.cycle(3)
    world.cycle(3)
    world.cycle_body(b"other_metric 1\n")  # the queue metric is absent: no data
    world.cycle(4)
    world.cycle(4)
    assert [p[1] for p in world.api()["rules"][0]["history"]] == [3, 3, None, 4, 4]
    svg = _chart(world.page().text, "queue_saturated")
    assert svg.count("<polyline") == 2  # before and after the gap


def _chart(html: str, rule: str) -> str:
    row = html.split(f'data-rule="{rule}"', 1)[1].split("</tr>", 1)[0]
    return row[row.index("<svg") : row.index("</svg>") + 6]


def test_refresh_is_optional_and_bounded(world):
    world.cycle(1)
    assert not parse(world.page().text).meta[2:]  # charset and viewport only
    tags = parse(world.page("refresh=5").text).meta
    assert {"http-equiv": "refresh", "content": "5"} in tags
    for bad in ("refresh=0", "refresh=99999", "refresh=abc", "refresh=5%3Cscript%3E", "refresh="):
        assert not any(m.get("http-equiv") == "refresh" for m in parse(world.page(bad).text).meta), bad


def test_strict_csp_allows_exactly_the_served_stylesheet(world):
    world.cycle(1)
    result = world.page()
    csp = result.headers["content-security-policy"]
    style = parse(result.text).style
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "script" not in parse(result.text).tags and " style=" not in result.text
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["cache-control"] == "no-store"


def test_endpoint_secret_never_reaches_page_or_json(world):
    world.cycle(1)
    page, doc = world.page().text, world.client.simulate_get("/api/v1/status").text
    assert "hunter2" not in page and "hunter2" not in doc
    assert "http://***@127.0.0.1" in page and json.loads(doc)["scrape"]["endpoint"].startswith("http://***@")


def test_request_parameters_do_not_reach_the_upstream(world, upstream):
    world.cycle(1)
    before = upstream.requests
    world.page("refresh=5&endpoint=http://evil/&x=" + "A" * 2000)
    world.client.simulate_get("/api/v1/status", query_string="expr=up")
    assert upstream.requests == before  # served from the last cycle's bytes, no scrape


def test_page_is_rendered_once_per_decision_not_per_request(world):
    world.cycle(1)
    first = world.evaluator.decision
    a, b = world.page().content, world.page().content
    assert a == b
    world.cycle(2)
    assert world.evaluator.decision is not first and world.page().content != a


def test_failed_reload_is_shown_and_rules_stay(world):
    world.cycle(1)
    world.rules.write_text("rules:\n  - name: broken\n    expr: sum(\n")
    assert world.evaluator.reload() is False
    world.cycle(1)
    text = world.page().text
    assert "FAILED; the previous rules are kept" in text and "queue_saturated" in text
    assert world.api()["rules_source"]["reload"]["last_successful"] is False


def test_rendering_error_keeps_the_previous_page_and_the_loop(world, monkeypatch):
    world.cycle(1)
    good = world.page().content
    publisher = world.client.app.status

    def broken(doc):
        raise RuntimeError("boom")

    monkeypatch.setattr(publisher, "_render_page", broken)
    decision = world.cycle(12)
    assert decision.cycle == 2  # the evaluator published regardless
    assert world.page().content == good


def test_starting_page_before_any_scrape(world):
    doc = world.api()
    assert doc["phase"] == "starting" and doc["ready"] is False
    assert "no scrape has completed yet" in world.page().text


def _carrying(obj, **extra) -> SimpleNamespace:
    """A decision or rule status with fields other branches add (or already added on main)."""
    fields = {f: getattr(obj, f) for f in obj.__dataclass_fields__}
    if isinstance(obj, RuleStatus):
        fields["blocking"] = obj.blocking
    return SimpleNamespace(**{**fields, **extra})


def test_no_data_and_fail_open_are_shown_when_the_decision_carries_them(world):
    world.cycle(3)
    decision = world.evaluator.decision
    rules = tuple(_carrying(s, no_data=True) for s in decision.rules[:1])
    doc = status_document(_carrying(decision, rules=rules, fail_open=True), RuleHistory())
    assert doc["fail_open"] is True and doc["rules"][0]["no_data"] is True
    text = render_page(doc)[1].decode()
    assert "fail-open</dt><dd>on" in text
    assert "no data" in parse(text).rows[0]["cells"][3]
    quiet = render_page(status_document(decision, RuleHistory()))[1].decode()
    assert "fail-open" not in quiet and "load score" not in quiet  # no guard on, no score: section


def test_load_score_is_the_one_load_serves_where_configured(clock, upstream, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "score:\n  terms:\n    - name: queue\n      expr: sum(tgi_queue_size) / 20\n"
        "rules:\n  - name: q\n    expr: sum(tgi_queue_size)\n    above: 10\n"
    )
    settings = load_settings({"RULES_PATH": str(rules), "METRICS_ENDPOINT": upstream.url})
    evaluator = Evaluator(settings, clock=clock)
    client = testing.TestClient(create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False)))
    upstream.body = b"tgi_queue_size 5\n"
    clock.advance(1)
    evaluator.cycle()
    doc = client.simulate_get("/api/v1/status").json
    served = client.simulate_get("/load").text
    assert doc["load"]["value"] == 0.25 and served.rstrip().endswith("llm_healthcheck_load 0.25")
    assert doc["load"]["state"] == "ok"
    assert "load score</dt><dd>0.25" in client.simulate_get("/").text


def test_publisher_keeps_the_newer_page_when_an_older_decision_arrives_late(world):
    world.cycle(1)
    older = world.evaluator.decision
    world.cycle(2)
    newer = world.evaluator.decision
    publisher = StatusPublisher()
    publisher.observe(newer)
    publisher.observe(older)
    assert publisher.current.cycle == newer.cycle
    assert json.loads(publisher.current.json)["rules"][0]["value"] == 2


@pytest.mark.parametrize(
    "values",
    [
        [1e308, -1e308, 0.0],
        [float("nan"), float("inf"), float("-inf"), 3.0],
        [5e-324, 1e-320],
        [7.0, 7.0, 7.0],
        [None, None],
        [-0.0, 0.0],
    ],
)
def test_chart_of_extreme_values_has_only_finite_coordinates(values):
    from exporter.serve.status_chart import chart_svg

    points = [[1000.0 + i, v, "ok"] for i, v in enumerate(values)]
    svg = chart_svg({"name": "x", "history": points, "thresholds": {"above": 10.0}}, 1000.0 + len(values), 300.0)
    numbers = re.findall(r'(?:x|y|x1|y1|x2|y2|cx|cy|width|height|points)="([^"]*)"', svg)
    for text in numbers:
        for number in re.split(r"[ ,]", text):
            assert re.fullmatch(r"-?\d+(\.\d+)?", number), (number, svg)


def test_terminating_shows_at_once(world):
    world.cycle(1)
    world.evaluator.terminate()  # SIGTERM: published without waiting for a cycle
    doc = world.api()
    assert (doc["ready"], doc["phase"]) == (False, "terminating")
    assert "<strong>Unready</strong> (terminating)" in world.page().text


def test_falcon_route_gives_the_fast_paths_bytes(world):
    world.cycle(1)
    routed = testing.TestClient(world.client.app.app)  # Falcon itself, without the WSGI fast path
    for path, query in (("/", "refresh=5"), ("/api/v1/status", "")):
        fast, slow = world.client.simulate_get(path, query_string=query), routed.simulate_get(path, query_string=query)
        assert (slow.status_code, slow.content) == (fast.status_code, fast.content)
        assert slow.headers["content-security-policy"] == fast.headers["content-security-policy"]
    assert routed.simulate_post("/").status_code == 405


def test_a_rule_over_many_series_lists_fifty_on_the_page_and_all_in_json(world):
    world.rules.write_text("rules:\n  - name: per_model\n    expr: max by (model) (tgi_queue_size)\n    above: 10\n")
    assert world.evaluator.reload() is True
    world.cycle_body("".join(f'tgi_queue_size{{model="m{i}"}} {i}\n' for i in range(80)).encode())
    text = world.page().text
    assert text.count("<li><code>") == 50 and "and 30 more in api/v1/status" in text
    assert len(world.api()["rules"][0]["series"]) == 80


def test_failing_scrape_shows_reason_error_and_count(world, upstream):
    world.cycle(1)
    upstream.status = 500
    for _ in range(3):
        world.cycle(1)
    text = world.page().text
    assert "failing (http_status)" in text and "upstream answered HTTP 500" in text
    assert "3 (policy: on_failure=unready after 3)" in text
    scrape = world.api()["scrape"]
    assert (scrape["ok"], scrape["consecutive_failures"], scrape["last_failure_reason"]) == (False, 3, "http_status")
