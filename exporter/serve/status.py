"""The status object behind `GET /` and `GET /api/v1/status`, built once per published decision.

One function, status_document(decision, history), turns a decision and the rules' recent
points into a JSON-ready dict; the JSON answer is that dict and the HTML page is rendered from
it (exporter.serve.status_page), so the two never disagree. StatusPublisher does this on the
evaluator's thread right after each decision is published and keeps the encoded bytes: a
request for the page only copies bytes, so someone watching the page costs the probes nothing
but a send.

The load score is the one /load serves, shown where the rule files configure one. The rule's
`no_data` flag and the decision's `fail_open` flag are read with getattr: present when the
decision has them, derived or null otherwise.
"""

import json
import logging
import threading
from dataclasses import dataclass

from exporter import __version__
from exporter.core.engine import PENDING, RECOVERING
from exporter.serve.explain import json_number, rule_document, scrape_document
from exporter.serve.load_page import current_load
from exporter.serve.status_history import RuleHistory
from exporter.serve.status_page import render_page

log = logging.getLogger("llm_healthcheck")

API_VERSION = 1


def status_document(decision, history: RuleHistory) -> dict:
    ruleset, reload = decision.ruleset, decision.reload
    scrape = scrape_document(decision)
    scrape["last_attempt_time"] = decision.scrape.last_attempt
    scrape["series"] = decision.scrape.series
    return {
        "api_version": API_VERSION,
        "version": __version__,
        "time": decision.time,
        "cycle": decision.cycle,
        "status": "Healthy" if decision.ready else "Unhealthy",
        "ready": decision.ready,
        "reason": decision.reason,
        "phase": decision.phase,
        "load": _load(decision),
        "fail_open": getattr(decision, "fail_open", None),
        "scrape": scrape,
        "rules_source": {
            "files": list(ruleset.files),
            "sha256": ruleset.sha256,
            "reload": {
                "last_successful": reload.last_ok,
                "last_success_time": reload.last_success,
                "last_error": reload.last_error or None,
                "counts": dict(reload.counts),
            },
        },
        "history_window_seconds": history.window,
        "rules": [_rule(status, decision.time, history) for status in decision.rules],
    }


def _rule(status, now: float, history: RuleHistory) -> dict:
    doc = rule_document(status, now)
    doc["no_data"] = _no_data(status)
    doc["progress"] = _progress(status, now)
    doc["history"] = [[p.time, json_number(p.value), p.state] for p in history.points(status.rule.name)]
    return doc


def _no_data(status) -> bool:
    flag = getattr(status, "no_data", None)
    if flag is not None:
        return bool(flag)
    # Until the engine carries the flag: a rule evaluated to nothing reports "no data".
    return status.value is None and status.error is None and status.reason == "no data"


def _progress(status, now: float) -> dict | None:
    """How far a pending rule is into `for`, or a recovering one into `keep_firing_for`."""
    rule = status.rule
    series = next((s for s in status.series if s.state == status.state), None)
    if series is None:
        return None
    if status.state == PENDING and series.active_since is not None and rule.for_seconds > 0:
        return {"of": "for", "elapsed_seconds": max(0.0, now - series.active_since), "total_seconds": rule.for_seconds}
    if status.state == RECOVERING and series.cleared_at is not None and rule.keep_firing_for_seconds > 0:
        return {
            "of": "keep_firing_for",
            "elapsed_seconds": max(0.0, now - series.cleared_at),
            "total_seconds": rule.keep_firing_for_seconds,
        }
    return None


def _load(decision) -> dict | None:
    """The load score exactly as /load serves it (exporter.serve.load_page), where the rule
    files configure one (`score:`); None otherwise, since /load then only mirrors readiness."""
    if getattr(decision.ruleset, "score", None) is None:
        return None
    score = current_load(decision)
    return {"value": json_number(float(score.value)), "state": score.state, "reason": score.reason}


@dataclass(frozen=True)
class Rendered:
    """Encoded answers for one decision. The page is split where an optional refresh tag goes."""

    json: bytes
    html_head: bytes
    html_rest: bytes
    cycle: int


def encode_json(doc: dict) -> bytes:
    return (json.dumps(doc, ensure_ascii=True, allow_nan=False, separators=(",", ":")) + "\n").encode()


class StatusPublisher:
    """Keeps the rendered status for the latest decision; `observe` runs on the publishing thread."""

    def __init__(self, history: RuleHistory | None = None):
        self._render_page = render_page
        self.history = history or RuleHistory()
        self._lock = threading.Lock()
        self._failed_once = False
        self.current: Rendered | None = None

    def observe(self, decision) -> None:
        """Record and render; an error keeps the previous page (logged once) and never reaches
        the evaluator loop."""
        try:
            with self._lock:
                current = self.current
                if current is not None and decision.cycle < current.cycle:
                    return  # a late publish of an older cycle must not replace a newer page
                if decision.cycle:  # cycle 0 is the startup placeholder: nothing was evaluated
                    self.history.record(decision)
                doc = status_document(decision, self.history)
                head, rest = self._render_page(doc)
                self.current = Rendered(encode_json(doc), head, rest, decision.cycle)
        except Exception:
            if not self._failed_once:
                self._failed_once = True
                log.exception("status page rendering failed; serving the previous page")
