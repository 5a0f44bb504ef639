"""The status page in a real headless Chromium, from a real sidecar in front of a real upstream
serving the real TGI capture.

The browser keeps the page open with `?refresh=1` and this test reads what it rendered (over
the DevTools protocol, tests/browser.py); the upstream is then driven to make a rule fire and
the page, reloaded by its own refresh tag, shows it. Hostile text from the rule file and the
upstream page is checked in the browser too (nothing injected, no layout blown up, no CSP
violation logged). The screenshot the docs use is taken here with --screenshot:
UPDATE_DOCS=1 writes it to docs/status-page.png.

Needs Debian's `chromium`: .ci/run installs it; elsewhere the tests skip without it
(tests/support.require_tool).
"""

import json
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

from tests import browser
from tests.support import FAST, capture

DOCS_PNG = Path(__file__).resolve().parents[1] / "docs" / "status-page.png"

# The shipped TGI pack's shape with shorter timers, so the test sees pending, firing and
# recovering within seconds; plus a vLLM rule whose metric this page never has (no data).
RULES = """\
rules:
  - name: tgi_queue_saturated
    description: Requests are piling up in TGI's queue; stop sending this pod more.
    expr: sum(tgi_queue_size)
    above: 15
    recover_below: 5
    for: 1s
    keep_firing_for: 4s
  - name: tgi_queue_warning
    description: More requests waiting than the inference gateway considers a low queue.
    expr: sum(tgi_queue_size)
    above: 5
    severity: warn
  - name: tgi_overloaded
    description: TGI refused requests in the last minute (HTTP 429).
    expr: sum(increase(tgi_request_failure{err="overloaded"}[1m]))
    above: 0
  - name: kv_cache_full
    description: vLLM's KV cache is full (this TGI page has no such metric).
    expr: max(vllm:gpu_cache_usage_perc)
    above: 0.95
"""
PAGE = capture("tgi-datadog-integrations-core-3.3.5.prom").decode()


def _page_with_queue(queue: int) -> bytes:
    body, count = re.subn(r"(?m)^tgi_queue_size \S+$", f"tgi_queue_size {queue}", PAGE)
    assert count == 1
    return body.encode()


# What the browser shows: each rule row's name, state and value text, and the verdict line.
ROWS = (
    "JSON.stringify([...document.querySelectorAll('tr.rule')].map(row => [row.dataset.rule,"
    " row.querySelector('.state').innerText, row.cells[3].innerText.trim()]))"
)
VERDICT = "document.readyState === 'complete' && document.getElementById('verdict') ? verdict.innerText : ''"


def shown(page) -> dict:
    return {name: (state, value) for name, state, value in json.loads(page.evaluate(ROWS))}


def _recorded(sidecar, queue: int) -> int:
    """How many cycles the first rule's history holds at this queue value."""
    history = json.loads(sidecar.get("/api/v1/status")[1])["rules"][0]["history"]
    return sum(1 for _, value, _ in history if value == queue)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def live_page(tmp_path):
    browser.chromium()  # fails in CI, skips elsewhere, before a sidecar is started
    page = browser.LivePage(tmp_path)
    yield page
    page.close()


def test_browser_sees_rules_and_a_rule_firing_after_a_refresh(tmp_path, upstream, start_sidecar, live_page):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    upstream.body = _page_with_queue(0)
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(rules), **FAST})
    sidecar.wait_for(lambda: sidecar.health() == 200, what="ready")
    for queue in (2, 7):  # some history for the charts; 7 trips the warning only
        upstream.body = _page_with_queue(queue)
        sidecar.wait_for(lambda q=queue: _recorded(sidecar, q) >= 5, what=f"five cycles at queue {queue}")
    url = f"http://127.0.0.1:{sidecar.port}/"

    live_page.navigate(url + "?refresh=1")
    assert live_page.wait_for(VERDICT, bool, what="the page").startswith("Ready")
    assert shown(live_page) == {
        "tgi_queue_saturated": ("ok", "7"),
        "tgi_queue_warning": ("firing", "7"),
        "tgi_overloaded": ("ok", "no data"),  # the capture has no failures yet: TGI creates the series on first use
        "kv_cache_full": ("ok", "no data"),
    }
    # The stylesheet applied under the page's strict CSP (a blocked one would leave no border).
    assert live_page.evaluate("getComputedStyle(verdict).borderLeftWidth") == "6px"
    loaded_at = live_page.evaluate("performance.timeOrigin")

    upstream.body = _page_with_queue(22)
    sidecar.wait_for(lambda: sidecar.health() == 503, what="the queue rule to fire")
    verdict = live_page.wait_for(VERDICT, lambda v: v.startswith("Unready"), what="the refreshed page")
    assert 'rule "tgi_queue_saturated" firing' in verdict
    assert live_page.evaluate("performance.timeOrigin") > loaded_at  # a new document: the refresh tag reloaded it
    now = shown(live_page)
    assert now["tgi_queue_saturated"] == ("firing", "22") and now["tgi_queue_warning"] == ("firing", "22")
    assert live_page.evaluate("document.querySelectorAll('tr.rule svg rect.st-firing').length") >= 2

    # Back under the recover threshold: recovering for keep_firing_for, shaded on the chart.
    upstream.body = _page_with_queue(3)
    sidecar.wait_for(lambda: '"state":"recovering"' in sidecar.get("/api/v1/status")[1], what="recovering")
    shot = tmp_path / "status-page.png"
    browser.run(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars", url)
    assert _png_size(shot) == (1280, 900) and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("UPDATE_DOCS"):
        shutil.copyfile(shot, DOCS_PNG)


LONG = "x" * 4000


def test_hostile_descriptions_and_label_values_stay_text_in_the_browser(tmp_path, upstream, start_sidecar, live_page):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: by_model\n"
        f'    description: "<script>document.title=1</script><img src=x onerror=alert(1)> {LONG}"\n'
        "    expr: max by (model) (tgi_queue_size)\n    above: 10\n"
    )
    upstream.body = (
        b'tgi_queue_size{model="<script>alert(2)</script>"} 12\n'
        b'tgi_queue_size{model="\\"><b>x</b>"} 1\n' + f'tgi_queue_size{{model="{LONG}"}} 2\n'.encode()
    )
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(rules), **FAST})
    # Not /health 503: that is also the answer before the first scrape.
    firing = '"state":"firing"'
    sidecar.wait_for(lambda: firing in sidecar.get("/api/v1/status")[1], what="the rule to fire")
    url = f"http://127.0.0.1:{sidecar.port}/"

    live_page.navigate(url)
    live_page.wait_for(VERDICT, bool, what="the page")
    assert shown(live_page) == {"by_model": ("firing", "12")}
    assert live_page.evaluate("document.querySelectorAll('script, img, iframe, b').length") == 0
    assert live_page.evaluate("document.title").startswith("Unready")  # no injected script ran
    text = live_page.evaluate("document.body.innerText")
    assert "<script>alert(2)</script>" in text and "<img src=x onerror=alert(1)>" in text
    # 4,000-character strings wrap inside their column: the page is no wider than the window.
    assert live_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth") is True
    dumped = browser.run(tmp_path, "--dump-dom", url)
    violations = [line for line in dumped.stderr.splitlines() if "Content Security Policy" in line]
    assert not violations, violations
