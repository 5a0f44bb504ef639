"""Readiness: the one place that decides whether the pod is in or out.

Pure: decide(rule statuses, scrape status, scrape config, lifecycle, fleet view) -> Verdict.
The sidecar's evaluator, the simulator, `llm-healthcheck eval` and `llm-healthcheck test` all
call it, so a change to what readiness means is made here once and cannot drift between them.

The order of the questions is the order an operator asks them in:
1. Is the sidecar shutting down? Then out, whatever else holds (SIGTERM drains the pod).
2. Has scraping failed `failure_threshold` times in a row? Then `on_failure` decides.
3. Has no scrape ever succeeded? Then out: "starting".
4. Was the page empty (TGI before its first request)? Then `on_empty` decides.
5. Does a rule of severity `unready` fire or recover? Then out, unless the fail-open guard
   holds the pod in (below).
6. Otherwise in.

The fail-open guard (Envoy's panic threshold, outlier detection's max ejection percent):
draining a busy pod only helps while its peers have room. With a fleet view and
`max_unready_fraction`, a pod whose blocking rules are all "busy" rules stays in when taking it
out would leave more than that fraction of the fleet unready. A rule marked `hard_failure`
(the server is broken or stalled, not merely busy) is never overridden. Without a fleet view
(none configured, or the query failed or went stale) the guard does nothing: standalone.
"""

from dataclasses import dataclass

from exporter.config.scrape_config import ScrapeConfig
from exporter.core.decision import SERVING, STARTING, TERMINATING, ScrapeStatus

TERMINATING_REASON = "terminating: shutting down"


@dataclass(frozen=True)
class FleetView:
    """What the fleet view knows, already judged fresh by whoever queried it."""

    pods: int  # pods counted in the fleet, this one included
    unready: int  # of those, how many are unready now, this one included if it is


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: str  # one line: why in or out
    phase: str  # STARTING, SERVING or TERMINATING
    fail_open: bool = False  # the guard held the pod in although rules would take it out


def decide(
    statuses,
    scrape: ScrapeStatus,
    config: ScrapeConfig,
    *,
    previous_ready: bool,
    terminating: bool = False,
    fleet: FleetView | None = None,
    max_unready_fraction: float | None = None,
) -> Verdict:
    """Readiness from this cycle's rule statuses and scrape status.

    `scrape` is the status after this cycle's scrape; `previous_ready` is the answer published
    before it (on_failure=hold keeps it). `config` is the effective scrape configuration.
    """
    if terminating:
        return Verdict(False, TERMINATING_REASON, TERMINATING)
    ever_scraped = scrape.last_success is not None
    if scrape.ok is False and scrape.consecutive_failures >= (config.failure_threshold or 1):
        detail = f"scrape failing: {scrape.error} ({scrape.consecutive_failures} consecutive failures)"
        if config.on_failure == "ready":
            return Verdict(True, detail + "; on_failure=ready", SERVING)
        if config.on_failure == "hold" and ever_scraped:
            held = "ready" if previous_ready else "unready"
            return Verdict(previous_ready, f"{detail}; on_failure=hold keeps {held}", SERVING)
        return Verdict(False, detail, SERVING if ever_scraped else STARTING)
    if not ever_scraped:
        return Verdict(False, f"starting: no successful scrape yet ({scrape.error})", STARTING)
    if scrape.ok and scrape.empty:
        on_empty = config.on_empty or "ready"
        return Verdict(on_empty == "ready", f"upstream returned an empty body; on_empty={on_empty}", SERVING)
    blocking = [status for status in statuses if status.blocking]
    if not blocking:
        return Verdict(True, "all rules ok", SERVING)
    first = blocking[0]
    more = f" (+{len(blocking) - 1} more)" if len(blocking) > 1 else ""
    reason = f'rule "{first.rule.name}" {first.state}: {first.reason}{more}'
    held = _guard(blocking, previous_ready, fleet, max_unready_fraction)
    if held:
        return Verdict(True, f"fail-open: {held}; would be out because {reason}", SERVING, fail_open=True)
    return Verdict(False, reason, SERVING)


# For callers whose pages never fail to arrive (the simulator, rule unit tests): a scrape
# that succeeded, with or without samples.
FRESH_PAGE = ScrapeStatus(ok=True, last_success=0.0)
EMPTY_PAGE = ScrapeStatus(ok=True, empty=True, last_success=0.0)


def _guard(blocking, previous_ready: bool, fleet: FleetView | None, limit: float | None) -> str:
    """Why the guard holds the pod in, or "" when it does not."""
    if fleet is None or limit is None or fleet.pods <= 0:
        return ""
    if any(status.rule.hard_failure for status in blocking):
        return ""
    # The fleet's count includes this pod as it was last published: a pod that is in now
    # would add one to the unready count by going out.
    unready_after = fleet.unready + (1 if previous_ready else 0)
    unready_after = min(unready_after, fleet.pods)
    if unready_after / fleet.pods <= limit:
        return ""
    return f"{unready_after} of {fleet.pods} pods would be unready, more than max_unready_fraction {limit:g}"
