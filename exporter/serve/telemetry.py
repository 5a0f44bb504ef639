"""The sidecar's own metrics, every value read from one published decision.

A custom Collector (not Gauge objects updated by the loop) so a scrape of /metrics sees exactly
one evaluation cycle, and label children for every loaded rule exist from the first cycle.
"""

import math

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.core.engine import STATES
from exporter.core.scrape import FAILURE_REASONS
from exporter.serve.explain import BOUNDS
from exporter.serve.fleet_telemetry import fleet_families
from exporter.serve.load_page import HELP as LOAD_HELP
from exporter.serve.load_page import current_load

PREFIX = "llm_healthcheck_"
READINESS = ("ready", "unready")
RELOAD_RESULTS = ("success", "failure")


class DecisionCollector:
    def __init__(self, current_decision):
        self._current = current_decision

    def collect(self):
        d = self._current()
        yield _gauge("ready", "1 when /health answers 200, else 0.", float(d.ready))
        yield _gauge("load", LOAD_HELP, current_load(d).value)  # unlabeled: GKE ignores labels
        yield from _rule_families(d)
        yield from fleet_families(d)

        yield _counter(
            "readiness_transitions",
            "Readiness changes, by the state changed to.",
            "to",
            {to: d.readiness_transitions.get(to, 0) for to in READINESS},
        )

        s = d.scrape
        yield _gauge("scrape_success", "1 when the last scrape of the inference server succeeded.", float(bool(s.ok)))
        yield _gauge("scrape_duration_seconds", "Duration of the last scrape.", s.duration)
        yield _gauge(
            "scrape_consecutive_failures", "Failed scrapes since the last good one.", float(s.consecutive_failures)
        )
        yield _counter(
            "scrape_failures",
            "Failed scrapes of the inference server, by reason.",
            "reason",
            {r: d.scrape_failures.get(r, 0) for r in FAILURE_REASONS},
        )
        yield _gauge(
            "last_scrape_timestamp_seconds",
            "Unix time of the last successful scrape (0 before the first).",
            s.last_success or 0.0,
        )
        yield _gauge("evaluation_duration_seconds", "Duration of the last rule evaluation.", d.evaluation_duration)
        yield _gauge("history_series", "Series held in the evaluator's history.", float(d.history_series))
        dropped = CounterMetricFamily(
            PREFIX + "history_series_dropped", "New series not stored because the history was at HISTORY_MAX_SERIES."
        )
        dropped.add_metric([], d.series_dropped)
        yield dropped
        evicted = CounterMetricFamily(
            PREFIX + "history_series_evicted",
            "Series no longer scraped, forgotten stalest first to make room in the history for new ones.",
        )
        evicted.add_metric([], d.series_evicted)
        yield evicted

        r = d.reload
        yield _gauge("rules_last_reload_successful", "1 when the last rules (re)load succeeded.", float(r.last_ok))
        yield _gauge(
            "rules_last_reload_success_timestamp_seconds",
            "Unix time of the last successful rules (re)load.",
            r.last_success or 0.0,
        )
        yield _counter(
            "rules_reloads",
            "Rules reload attempts, by result.",
            "result",
            {res: r.counts.get(res, 0) for res in RELOAD_RESULTS},
        )
        info = GaugeMetricFamily(PREFIX + "rules_info", "The loaded rule set, by content hash.", labels=["sha256"])
        info.add_metric([d.ruleset.sha256], 1.0)
        yield info
        yield _gauge("rules_loaded", "Number of loaded rules.", float(len(d.ruleset.rules)))
        build = GaugeMetricFamily(PREFIX + "build_info", "The running version.", labels=["version"])
        build.add_metric([__version__], 1.0)
        yield build


def _rule_families(d):
    # `severity` on every per-rule series, so an alert or a dashboard can tell the rules that
    # take a pod out (unready) from the ones that only report (warn).
    state = GaugeMetricFamily(
        PREFIX + "rule_state", "1 for the current state of each rule.", labels=["rule", "severity", "state"]
    )
    value = GaugeMetricFamily(
        PREFIX + "rule_value", "The value compared with the thresholds (NaN when no data).", labels=["rule", "severity"]
    )
    threshold = GaugeMetricFamily(
        PREFIX + "rule_threshold", "Configured thresholds, by bound.", labels=["rule", "severity", "bound"]
    )
    transitions = CounterMetricFamily(
        PREFIX + "rule_transitions", "Rule state changes, by state changed to.", labels=["rule", "severity", "to"]
    )
    no_data = GaugeMetricFamily(
        PREFIX + "rule_no_data",
        "1 while the rule's expression returns no series (absent or misspelt metric), else 0.",
        labels=["rule", "severity"],
    )
    for status in d.rules:
        name, severity = status.rule.name, status.rule.severity
        for candidate in STATES:
            state.add_metric([name, severity, candidate], float(status.state == candidate))
            transitions.add_metric([name, severity, candidate], d.rule_transitions.get((name, candidate), 0))
        value.add_metric([name, severity], math.nan if status.value is None else status.value)
        no_data.add_metric([name, severity], float(status.no_data))
        for bound in BOUNDS:
            bound_value = getattr(status.rule, bound)
            if bound_value is not None:
                threshold.add_metric([name, severity, bound], bound_value)
    yield from (state, value, threshold, transitions, no_data)


def _gauge(name, doc, value):
    family = GaugeMetricFamily(PREFIX + name, doc)
    family.add_metric([], value)
    return family


def _counter(name, doc, label, values):
    family = CounterMetricFamily(PREFIX + name, doc, labels=[label])
    for key, count in values.items():
        family.add_metric([key], count)
    return family


def build_registry(current_decision, with_process: bool = True) -> CollectorRegistry:
    """A registry of our own (not the global one): tests get a fresh one each."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DecisionCollector(current_decision))
    if with_process:
        ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
