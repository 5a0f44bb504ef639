"""The fleet view and the fail-open guard on /metrics, read from the same published decision.

`fail_open` is always there (0 without a fleet block: the guard cannot act). The fleet_*
families appear only with a fleet block, so a pod that does not use one raises no "fleet query
failing" alert; with one, every failure reason's child exists from the first cycle.
"""

import math

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exporter.core.fleet_query import FAILURE_REASONS

PREFIX = "llm_healthcheck_"


def fleet_families(d):
    yield _gauge(
        "fail_open",
        "1 while the fail-open guard keeps this pod ready although its rules would take it out.",
        float(d.fail_open),
    )
    fleet = d.fleet
    if fleet is None:
        return
    yield _gauge(
        "fleet_query_success",
        "1 while the fleet view is in use (the last round of fleet queries succeeded and is fresh).",
        float(fleet.in_use),
    )
    last = fleet.last
    yield _gauge(
        "fleet_query_duration_seconds", "Duration of the last round of fleet queries.", last.duration if last else 0.0
    )
    yield _gauge(
        "fleet_last_success_timestamp_seconds",
        "Unix time of the last successful round of fleet queries (0 before the first).",
        fleet.last_success_time or 0.0,
    )
    failures = CounterMetricFamily(
        PREFIX + "fleet_query_failures", "Failed rounds of fleet queries, by reason.", labels=["reason"]
    )
    for reason in FAILURE_REASONS:
        failures.add_metric([reason], fleet.failures.get(reason, 0))
    yield failures
    yield _gauge(
        "fleet_pods", "Pods in the fleet, from the pods query (NaN while the view is not in use).", _count(fleet.pods)
    )
    yield _gauge(
        "fleet_unready",
        "Unready pods in the fleet, from the unready query (NaN while not in use).",
        _count(fleet.unready),
    )


def _count(value) -> float:
    return math.nan if value is None else float(value)


def _gauge(name, doc, value):
    family = GaugeMetricFamily(PREFIX + name, doc)
    family.add_metric([], value)
    return family
