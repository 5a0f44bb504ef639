"""Why the pod is (not) ready: the decision rendered as text lines or as JSON-ready dicts.

Shared by /health?verbose, /health with Accept: application/json, /rules and `eval`.
"""

import math

from exporter.config.settings import redact_url
from exporter.core.decision import TERMINATING, Decision
from exporter.serve.fleet_explain import fleet_document, fleet_lines
from exporter.serve.load_page import load_document, load_line
from exporter.serve.verbose_lines import reload_line, rule_line

BOUNDS = ("above", "below", "recover_below", "recover_above")


def verbose_lines(decision: Decision) -> list[str]:
    lines = []
    if decision.phase == TERMINATING:
        lines.append("[-] shutdown: terminating")
    lines.append(_scrape_line(decision))
    lines.extend(fleet_lines(decision))
    reload = reload_line(decision)
    if reload:
        lines.append(reload)
    lines.extend(rule_line(status, decision.time) for status in decision.rules)
    if decision.ruleset.score is not None:  # without one, the load only mirrors readiness
        lines.append(load_line(decision))
    lines.append(f"{'ready' if decision.ready else 'unready'}: {decision.reason}")
    return lines


def _scrape_line(decision: Decision) -> str:
    scrape = decision.scrape
    if scrape.ok is None:
        return "[-] scrape: no scrape has completed yet"
    if scrape.ok:
        return "[+] scrape: ok (empty body)" if scrape.empty else "[+] scrape: ok"
    mark = "-" if not decision.ready else "+"
    return f"[{mark}] scrape: {scrape.error} ({scrape.consecutive_failures} consecutive failures)"


def health_document(decision: Decision) -> dict:
    return {
        "status": "Healthy" if decision.ready else "Unhealthy",
        "ready": decision.ready,
        "reason": decision.reason,
        "phase": decision.phase,
        "time": decision.time,
        "scrape": scrape_document(decision),
        "fail_open": decision.fail_open,
        "fleet": fleet_document(decision),
        "load": load_document(decision),
        "rules": [rule_document(status, decision.time) for status in decision.rules],
    }


def rules_document(decision: Decision) -> dict:
    ruleset = decision.ruleset
    return {
        "ready": decision.ready,
        "sha256": ruleset.sha256,
        "files": list(ruleset.files),
        "reload": {
            "last_successful": decision.reload.last_ok,
            "last_success_time": decision.reload.last_success,
            "last_error": decision.reload.last_error,
        },
        "scrape": scrape_document(decision),
        "fleet": fleet_document(decision),
        "score": load_document(decision),
        "rules": [rule_document(status, decision.time) for status in decision.rules],
    }


def scrape_document(decision: Decision) -> dict:
    scrape, config = decision.scrape, decision.scrape_config
    age = None if scrape.last_success is None else max(0.0, decision.time - scrape.last_success)
    return {
        "endpoint": redact_url(config.endpoint),
        "interval_seconds": config.interval,
        "timeout_seconds": config.timeout,
        "on_failure": config.on_failure,
        "failure_threshold": config.failure_threshold,
        "on_empty": config.on_empty,
        "ok": scrape.ok,
        "empty": scrape.empty,
        "last_success_time": scrape.last_success,
        "last_success_age_seconds": age,
        "consecutive_failures": scrape.consecutive_failures,
        "last_error": scrape.error or None,
        "last_failure_reason": scrape.reason,
        "duration_seconds": scrape.duration,
    }


def rule_document(status, now: float) -> dict:
    rule = status.rule
    return {
        "name": rule.name,
        "expr": rule.expr_text,
        "description": rule.description,
        "severity": rule.severity,
        "state": status.state,
        "blocking": status.blocking,
        "value": json_number(status.value),
        "thresholds": {bound: getattr(rule, bound) for bound in BOUNDS if getattr(rule, bound) is not None},
        "for_seconds": rule.for_seconds,
        "keep_firing_for_seconds": rule.keep_firing_for_seconds,
        "since": status.since,
        "since_seconds": max(0.0, now - status.since),
        "reason": status.reason,
        "no_data": status.no_data,
        "on_missing": rule.on_missing,
        "error": status.error,
        "series": [
            {
                "labels": dict(s.labels),
                "state": s.state,
                "value": json_number(s.value),
                "since": s.since,
                "reason": s.reason,
            }
            for s in status.series
        ],
    }


def json_number(value):
    """JSON has no NaN/Inf: they become strings, as Prometheus' API writes sample values."""
    if value is None:
        return None
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    return value
