"""The status page (`GET /`) rendered from the status document, as bytes.

Everything that comes from configuration or from the upstream page (rule names, expressions,
descriptions, label values, file paths, the endpoint, error texts) goes through html.escape;
numbers are formatted here. No script at all and one stylesheet whose hash is in the
Content-Security-Policy (exporter.serve.status_http), so nothing injected could run or load
anything even if escaping were missed. Works offline: no font, image or script from anywhere.
"""

import base64
import hashlib
import time
from html import escape

from exporter.core.engine import format_value
from exporter.serve.status_chart import chart_svg

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#1d2430;background:#fff}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.05em;margin:1.4em 0 .4em}
.verdict{font-size:1.15em;padding:.5em .8em;border-radius:4px;overflow-wrap:anywhere}
.verdict.ready{background:#e3f4e6;border-left:6px solid #2e8b47}
.verdict.unready{background:#fbe4e2;border-left:6px solid #c0392b}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{text-align:left;vertical-align:top;padding:.35em .5em;border-bottom:1px solid #dde2ea;overflow-wrap:anywhere}
th{background:#f3f5f8;font-weight:600}
col.name{width:22%}col.sev{width:7%}col.state{width:12%}col.value{width:9%}col.thr{width:12%}col.chart{width:380px}
code,pre{font:12px/1.35 ui-monospace,monospace;overflow-wrap:anywhere;white-space:pre-wrap}
.muted{color:#5d6776}.nodata{color:#8a5a00;font-weight:600}
.state{font-weight:600}.state.ok{color:#2e8b47}.state.pending{color:#a07000}
.state.firing{color:#c0392b}.state.recovering{color:#c26a00}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:0}
dl.kv dd{margin:0;overflow-wrap:anywhere}
svg.chart{display:block;max-width:100%;height:auto}
.plot{fill:#fafbfc;stroke:#d5dae2}.band{fill:#f0c36d;fill-opacity:.25}
.threshold{stroke:#c0392b;stroke-dasharray:4 3}.recover{stroke:#c26a00;stroke-dasharray:1 3}
.value{fill:none;stroke:#1f5fbf;stroke-width:1.6}.now{fill:#1f5fbf}
.st-pending{fill:#f5d76e;fill-opacity:.45}.st-firing{fill:#e57373;fill-opacity:.45}
.st-recovering{fill:#ffb74d;fill-opacity:.45}
svg text{font:10px system-ui,sans-serif;fill:#5d6776}.ylabel{text-anchor:end}.end{text-anchor:end}
.tlabel{text-anchor:end;fill:#c0392b}
.legend span{display:inline-block;padding:0 .5em;margin-right:.4em;border-radius:3px}
.legend .pending{background:#f8e7a6}.legend .firing{background:#f1b1b1}.legend .recovering{background:#ffd9a0}
.legend .band{background:#f7e2b8}
nav a{margin-right:1em}
"""
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

MAX_SERIES_LISTED = 50  # per rule on the page (a rule over every model or adapter); the JSON has all
REFRESH_CHOICES = (5, 15, 60)  # seconds offered as links; any 1..3600 is accepted


def render_page(doc: dict) -> tuple[bytes, bytes]:
    """(head, rest): an optional refresh tag goes between them (exporter.serve.status_http)."""
    ready = doc["ready"]
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{'Ready' if ready else 'Unready'} · llm-healthcheck</title>"
    )
    body = [
        f"<style>{STYLE}</style></head><body>",
        "<h1>llm-healthcheck</h1>",
        f'<p class="verdict {"ready" if ready else "unready"}" id="verdict"><strong>'
        f"{'Ready' if ready else 'Unready'}</strong> ({_e(doc['phase'])}): {_e(doc['reason'])}</p>",
        _summary(doc),
        "<h2>Rules</h2>",
        _legend(doc["history_window_seconds"]),
        _rules_table(doc),
        "<h2>Scrape</h2>",
        _scrape(doc["scrape"], doc["time"]),
        "<h2>Rules source</h2>",
        _source(doc["rules_source"], doc["time"]),
        _nav(),
        "</body></html>\n",
    ]
    return head.encode(), "".join(body).encode()


def refresh_tag(seconds: int) -> bytes:
    return f'<meta http-equiv="refresh" content="{int(seconds)}">'.encode()


def _e(value) -> str:
    return escape(str(value), quote=True)


def _summary(doc: dict) -> str:
    evaluated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(doc["time"]))
    items = [("evaluated", f"{evaluated} (durations below are as of then)"), ("cycle", str(doc["cycle"]))]
    load = doc.get("load")
    if load is not None:
        detail = ", ".join(_e(x) for x in (load["state"], load["reason"]) if x)
        items.append(
            ("load score", _number(load["value"]) + (f' <span class="muted">({detail})</span>' if detail else ""))
        )
    if doc.get("fail_open"):
        items.append(("fail-open", "on: kept in although rules fire, too many peers are out already"))
    items.append(("version", _e(doc["version"])))
    return _kv(items)


def _legend(window: float) -> str:
    minutes = f"{window / 60:g} min" if window >= 60 else f"{window:g} s"
    return (
        f'<p class="legend muted">charts: up to the last {minutes}; shading: <span class="pending">pending</span>'
        '<span class="firing">firing</span><span class="recovering">recovering</span>'
        '<span class="band">recover band</span> dashed: threshold, dotted: recover threshold</p>'
    )


def _rules_table(doc: dict) -> str:
    if not doc["rules"]:
        return '<p class="muted">no rules loaded</p>'
    rows = [
        '<table id="rules"><colgroup><col class="name"><col class="sev"><col class="state"><col class="value">'
        '<col class="thr"><col class="chart"></colgroup>',
        "<thead><tr><th>rule</th><th>severity</th><th>state</th><th>value</th><th>thresholds</th>"
        "<th>recent history</th></tr></thead><tbody>",
    ]
    for rule in doc["rules"]:
        rows.append(_rule_row(rule, doc["time"], doc["history_window_seconds"]))
    rows.append("</tbody></table>")
    return "".join(rows)


def _rule_row(rule: dict, now: float, window: float) -> str:
    name = (
        f'<strong class="rule-name">{_e(rule["name"])}</strong><br><code>{_e(rule["expr"])}</code>'
        + (f'<br><span class="muted">{_e(rule["description"])}</span>' if rule["description"] else "")
        + f'<br><span class="reason">{_e(rule["reason"])}</span>'
        + _series(rule["series"])
    )
    state = (
        f'<span class="state {_e(rule["state"])}">{_e(rule["state"])}</span>'
        f'<br><span class="muted">since {_when(rule["since"], now)}</span>{_progress(rule["progress"])}'
    )
    if rule["no_data"]:
        value = '<span class="nodata">no data</span>'
    elif rule["error"]:
        value = f'<span class="nodata">error</span><br><span class="muted">{_e(rule["error"])}</span>'
    else:
        value = f'<span class="value">{_number(rule["value"])}</span>'
    return (
        f'<tr class="rule {_e(rule["state"])}" data-rule="{_e(rule["name"])}">'
        f"<td>{name}</td><td>{_severity(rule['severity'])}</td><td>{state}</td><td>{value}</td>"
        f"<td>{_thresholds(rule)}</td><td>{chart_svg(rule, now, window)}</td></tr>"
    )


def _severity(severity: str) -> str:
    if severity == "warn":
        return 'warn<br><span class="muted">reported only</span>'
    return _e(severity)


def _series(series: list) -> str:
    if len(series) <= 1:
        return ""
    items = "".join(
        f"<li><code>{_e(_labels(s['labels']))}</code> {_e(s['state'])} {_number(s['value'])}</li>"
        for s in series[:MAX_SERIES_LISTED]
    )
    if len(series) > MAX_SERIES_LISTED:
        items += f"<li>and {len(series) - MAX_SERIES_LISTED} more in api/v1/status</li>"
    return f"<details><summary>{len(series)} series</summary><ul>{items}</ul></details>"


def _labels(labels: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _progress(progress: dict | None) -> str:
    if not progress:
        return ""
    done, total = progress["elapsed_seconds"], progress["total_seconds"]
    return (
        f'<br><progress max="{total:g}" value="{min(done, total):g}"></progress> '
        f'<span class="muted">{_seconds(done)} of {progress["of"]} {_seconds(total)}</span>'
    )


def _thresholds(rule: dict) -> str:
    t = rule["thresholds"]
    lines = []
    if "above" in t:
        lines.append(f"trips &gt; {_number(t['above'])}")
        if "recover_below" in t:
            lines.append(f"recovers &lt; {_number(t['recover_below'])}")
    elif "below" in t:
        lines.append(f"trips &lt; {_number(t['below'])}")
        if "recover_above" in t:
            lines.append(f"recovers &gt; {_number(t['recover_above'])}")
    else:
        lines.append("fires while the expression returns a value")
    if rule["for_seconds"]:
        lines.append(f"for {_seconds(rule['for_seconds'])}")
    if rule["keep_firing_for_seconds"]:
        lines.append(f"keep_firing_for {_seconds(rule['keep_firing_for_seconds'])}")
    return "<br>".join(lines)


def _scrape(scrape: dict, now: float) -> str:
    if scrape["ok"] is None:
        status = "no scrape has completed yet"
    elif scrape["ok"]:
        status = "ok (empty body)" if scrape["empty"] else "ok"
    else:
        status = f"failing ({_e(scrape['last_failure_reason'])})"
    policy = f"policy: on_failure={_e(scrape['on_failure'])} after {scrape['failure_threshold']}"
    items = [
        ("endpoint", f"<code>{_e(scrape['endpoint'])}</code>"),
        ("status", status),
        ("last success", _when(scrape["last_success_time"], now)),
        ("duration", f"{scrape['duration_seconds'] * 1000:.1f} ms"),
        ("consecutive failures", f"{scrape['consecutive_failures']} ({policy})"),
        ("interval / timeout", f"{_seconds(scrape['interval_seconds'])} / {_seconds(scrape['timeout_seconds'])}"),
    ]
    if scrape["last_error"]:
        items.append(("last error", f"<code>{_e(scrape['last_error'])}</code>"))
    return _kv(items)


def _source(source: dict, now: float) -> str:
    reload = source["reload"]
    files = "<br>".join(f"<code>{_e(f)}</code>" for f in source["files"]) or "the seed environment variables"
    result = "successful" if reload["last_successful"] else "FAILED; the previous rules are kept"
    items = [
        ("files", files),
        ("sha256", f"<code>{_e(source['sha256'])}</code>"),
        ("last reload", f"{result}, last success {_when(reload['last_success_time'], now)}"),
        ("reloads", _e(", ".join(f"{k} {v}" for k, v in sorted(reload["counts"].items())) or "none")),
    ]
    if reload["last_error"]:
        items.append(("reload error", f"<pre>{_e(reload['last_error'])}</pre>"))
    return _kv(items)


def _nav() -> str:
    refresh = " ".join(f'<a href="?refresh={s}">{s} s</a>' for s in REFRESH_CHOICES)
    return (
        '<h2>More</h2><nav><a href="api/v1/status">JSON (api/v1/status)</a><a href="health?verbose">'
        'health?verbose</a><a href="rules">rules</a><a href="metrics">metrics</a></nav>'
        f'<p class="muted">auto-refresh: <a href="./">off</a> {refresh}</p>'
    )


def _kv(items) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _number(value) -> str:
    if value is None:
        return '<span class="muted">none</span>'
    if isinstance(value, str):  # "NaN", "+Inf", "-Inf" from the JSON form
        return _e(value)
    return _e(format_value(float(value)))


def _seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest}s" if rest else f"{minutes}m"


def _when(stamp, now: float) -> str:
    """A time and how long before the evaluation: the page is rendered then, not when it is read."""
    if stamp is None:
        return '<span class="muted">never</span>'
    clock = time.strftime("%H:%M:%S", time.gmtime(stamp))
    return f"{clock} UTC ({_seconds(max(0.0, now - stamp))} before)"
