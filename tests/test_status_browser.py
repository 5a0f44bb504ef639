"""The status page in a real headless Chromium, from a real sidecar in front of a real upstream
serving the real TGI capture.

The browser loads the page and this test reads what it rendered (--dump-dom: the DOM after
the page loaded, under the page's own Content-Security-Policy, whose violations Chromium logs
as console messages). The upstream is then driven to make a rule fire, and the reloaded page
shows it. The screenshot the docs use is taken here: UPDATE_DOCS=1 writes it to
docs/status-page.png.

Needs Debian's `chromium` (installed by .ci/run); skipped where it is not installed.
"""

import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import FAST, capture
from tests.test_status_page import parse

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
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


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"  # a fresh profile per run
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def browse(tmp_path: Path, url: str) -> tuple[dict, str]:
    """What the browser rendered: {rule: (state, value)}, the verdict line, and its DOM."""
    result = chromium(tmp_path, "--dump-dom", url)
    violations = [line for line in result.stderr.splitlines() if "Content Security Policy" in line]
    assert not violations, violations  # the stylesheet applied under the strict CSP
    dom = result.stdout
    rows = {row["rule"]: row for row in parse(dom).rows}
    seen = {name: (row["cells"][2].split("since")[0].strip(), row["cells"][3].strip()) for name, row in rows.items()}
    verdict = re.search(r'id="verdict">(.*?)</p>', dom, re.S).group(1)
    return seen, re.sub(r"<[^>]+>", "", verdict), dom


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_browser_sees_rules_and_a_rule_firing_after_a_refresh(tmp_path, upstream, start_sidecar):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    upstream.body = _page_with_queue(0)
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(rules), **FAST})
    sidecar.wait_for(lambda: sidecar.health() == 200, what="ready")
    for queue in (2, 7):  # some history for the charts; 7 trips the warning only
        upstream.body = _page_with_queue(queue)
        time.sleep(1.5)  # lets the real 0.2 s loop record it; nothing here is asserted on time
    url = f"http://127.0.0.1:{sidecar.port}/"

    seen, verdict, _ = browse(tmp_path, url)
    assert seen == {
        "tgi_queue_saturated": ("ok", "7"),
        "tgi_queue_warning": ("firing", "7"),
        "tgi_overloaded": ("ok", "no data"),  # the capture has no failures yet: TGI creates the series on first use
        "kv_cache_full": ("ok", "no data"),
    }
    assert verdict.startswith("Ready")

    upstream.body = _page_with_queue(22)
    sidecar.wait_for(lambda: sidecar.health() == 503, what="the queue rule to fire")
    seen, verdict, dom = browse(tmp_path, url + "?refresh=2")
    assert seen["tgi_queue_saturated"] == ("firing", "22") and seen["tgi_queue_warning"] == ("firing", "22")
    assert verdict.startswith("Unready") and 'rule "tgi_queue_saturated" firing' in verdict
    assert '<meta http-equiv="refresh" content="2">' in dom
    assert 'class="st-firing"' in dom and 'class="st-pending"' in dom

    # Back under the recover threshold: recovering for keep_firing_for, shaded on the chart.
    upstream.body = _page_with_queue(3)
    sidecar.wait_for(lambda: '"state":"recovering"' in sidecar.get("/api/v1/status")[1], what="recovering")
    shot = tmp_path / "status-page.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars", url)
    assert _png_size(shot) == (1280, 900) and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("UPDATE_DOCS"):
        shutil.copyfile(shot, DOCS_PNG)


def test_hostile_descriptions_and_label_values_stay_text_in_the_browser(tmp_path, upstream, start_sidecar):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: by_model\n"
        '    description: "<script>document.title=1</script><img src=x onerror=alert(1)>"\n'
        "    expr: max by (model) (tgi_queue_size)\n    above: 10\n"
    )
    upstream.body = b'tgi_queue_size{model="<script>alert(2)</script>"} 12\ntgi_queue_size{model="\\"><b>x</b>"} 1\n'
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(rules), **FAST})
    sidecar.wait_for(lambda: sidecar.health() == 503, what="the rule to fire")
    seen, _, dom = browse(tmp_path, f"http://127.0.0.1:{sidecar.port}/")
    assert seen == {"by_model": ("firing", "12")}
    tags = parse(dom).tags
    assert "img" not in tags and "b" not in tags and tags.count("script") == 0
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in dom and "&lt;img src=x onerror=alert(1)&gt;" in dom
