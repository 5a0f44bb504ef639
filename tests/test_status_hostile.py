"""The status page with hostile rule names, descriptions, expressions, label values and URLs:
everything shows as text, nothing becomes markup, and the table keeps its shape.

The loader only admits plain rule names, so hostile names are put into a loaded rule set
directly: the page must not rely on the loader for its escaping. Label values come from a
real upstream page, through the real scrape and evaluation.
"""

import json
from dataclasses import replace

import pytest
from falcon import testing

from exporter.config.settings import load_settings
from exporter.rules import loader
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.telemetry import build_registry
from tests.test_status_page import parse

LONG = "W" * 3000 + "-end"
NAMES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    'it\'s & "quoted" </td></tr></table>',
    LONG,
]
LABELS = [
    "<script>alert(3)</script>",
    "\"'><b>bold</b>",
    "<!-- x --><style>*{display:none}</style>",
    "L" * 4000,
]  # long, yet under the 4 KiB label cap (a longer one fails the scrape)
DESCRIPTION = "</span><iframe src=//evil></iframe> & more"
RULES = f"""\
rules:
  - name: a
    description: {json.dumps(DESCRIPTION)}
    expr: max by (model) (tgi_queue_size{{model!="</code><script>alert(4)</script>"}})
    above: 10
    recover_below: 4
  - name: b
    expr: sum(tgi_queue_size)
    above: 5
  - name: c
    expr: max(vllm:gpu_cache_usage_perc)
    above: 0.9
  - name: d
    expr: sum(tgi_queue_size) > 0
"""


class _Source:
    """A rules source whose rules carry names the loader would refuse."""

    path = None

    def __init__(self, ruleset):
        self.ruleset = ruleset

    def load(self):
        return self.ruleset, None

    def fingerprint(self):
        return None


@pytest.fixture
def page(tmp_path, clock, upstream):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    loaded = loader.load_rules([str(path)])
    hostile = replace(loaded, rules=tuple(replace(r, name=n) for r, n in zip(loaded.rules, NAMES)))
    endpoint = upstream.url.replace("/metrics", '/metrics?q="><script>alert(5)</script>&token=s3cret')
    settings = load_settings({"METRICS_ENDPOINT": endpoint, "METRIC_THRESHOLD": "10"})
    evaluator = Evaluator(settings, _Source(hostile), clock=clock)
    client = testing.TestClient(create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False)))
    body = "".join(f'tgi_queue_size{{model="{_quoted(v)}"}} {12 - i}\n' for i, v in enumerate(LABELS)).encode()
    for _ in range(4):
        upstream.body = body
        clock.advance(1)
        evaluator.cycle()
    assert evaluator.decision.scrape.ok  # the label values really came through a scrape
    result = client.simulate_get("/")
    assert result.status_code == 200
    return result.text, client.simulate_get("/api/v1/status").json


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')  # exposition-format escaping


def test_nothing_hostile_becomes_markup(page):
    html, _ = page
    tags = set(parse(html).tags)
    assert not tags & {"script", "img", "iframe", "b"}, tags
    assert parse(html).tags.count("style") == 1  # only the page's own stylesheet
    assert "<script" not in html and "<iframe" not in html and "<img" not in html
    assert "s3cret" not in html


def test_hostile_strings_show_as_the_same_text(page):
    html, doc = page
    rows = parse(html).rows
    assert [row["rule"] for row in rows] == NAMES  # attribute escaping round-trips
    text = "".join("".join(row["cells"]) for row in rows)
    for value in NAMES + LABELS + [DESCRIPTION, "</code><script>alert(4)</script>"]:
        assert value in text, value[:40]
    assert [r["name"] for r in doc["rules"]] == NAMES
    assert {s["labels"]["model"] for s in doc["rules"][0]["series"]} == set(LABELS)


def test_table_keeps_its_shape(page):
    html, _ = page
    rows = parse(html).rows
    assert len(rows) == len(NAMES)
    assert all(len(row["cells"]) == 6 for row in rows)  # no name or label closed a cell early
    assert html.count("<svg") == len(NAMES) and html.count("</svg>") == len(NAMES)
    assert html.count("<tr") == html.count("</tr>") == len(NAMES) + 1
    # Long unbroken strings wrap inside their column instead of widening the table.
    assert "table-layout:fixed" in parse(html).style and "overflow-wrap:anywhere" in parse(html).style
