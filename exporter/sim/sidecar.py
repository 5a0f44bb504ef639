"""The sidecar inside a simulated pod: the real rule engine and the real readiness policy, fed
the pod's own metric page every interval, exactly as the sidecar's evaluator feeds them.

A page that does not arrive (the server crashed: its /metrics refuses connections) is a failed
scrape, counted as the sidecar counts them, so `failure_threshold` and `on_failure` apply. With
a fleet view (exporter.sim.prometheus) the sidecar's own FleetLink puts the lagged answers
beside the page as fleet:<name> series, and the policy's fail-open guard sees their counts."""

from exporter.config.scrape_config import ScrapeConfig
from exporter.config.settings import DEFAULT_SCRAPE
from exporter.core import engine, policy
from exporter.core.decision import ScrapeStatus
from exporter.core.fleet_link import FleetLink
from exporter.core.fleet_view import guard_inputs
from exporter.core.history import History
from exporter.rules.model import RuleSet

HISTORY_MARGIN_SECONDS = 60.0  # as the sidecar keeps beyond its longest range selector


def effective_scrape(ruleset: RuleSet) -> ScrapeConfig:
    """The rule file's scrape block over the sidecar's defaults (no env or flags in a simulation)."""
    merged = {}
    for name in ScrapeConfig.__dataclass_fields__:
        value = getattr(ruleset.scrape, name)
        merged[name] = value if value is not None else getattr(DEFAULT_SCRAPE, name)
    return ScrapeConfig(**merged)


class SimSidecar:
    __slots__ = ("ruleset", "history", "state", "page_config", "ready", "flips", "scrape", "fail_open", "fleet")

    def __init__(self, ruleset: RuleSet, fleet: FleetLink | None = None):
        self.ruleset = ruleset
        self.history = History(ruleset.max_range_seconds + HISTORY_MARGIN_SECONDS)
        self.state = engine.initial_state()
        self.page_config = effective_scrape(ruleset)
        self.ready = True  # pods start as if they had been serving for a while
        self.flips = 0
        self.scrape = policy.FRESH_PAGE
        self.fail_open = False  # the guard held the pod in at the last evaluation
        self.fleet = fleet  # the fleet view, installed with this rule set's fleet block

    def evaluate(self, t: float, samples) -> bool:
        """One evaluation at `t` over the page's samples (empty: the server printed nothing;
        None: the scrape failed)."""
        guard: dict = {}
        history = self.history
        if samples:
            history.record(t, samples)
        if self.fleet is not None:
            history, status = self.fleet.for_cycle(self.history, t)
            guard = guard_inputs(status)
        if samples:
            self.state, statuses = engine.evaluate(self.ruleset, history, self.state, t)
            self.scrape = policy.FRESH_PAGE
        elif samples is None:
            self.state, statuses = engine.hold(self.ruleset, self.state, t, "scrape failed")
            self.scrape = ScrapeStatus(
                False,
                reason="connect",
                error="connection refused",
                consecutive_failures=self.scrape.consecutive_failures + 1,
                last_success=self.scrape.last_success,
            )
        else:  # TGI prints an empty page before its first request
            self.state, statuses = engine.hold(self.ruleset, self.state, t, "empty body")
            self.scrape = policy.EMPTY_PAGE
        verdict = policy.decide(
            statuses,
            self.scrape,
            self.page_config,
            previous_ready=self.ready,
            **guard,
        )
        self.fail_open = verdict.fail_open
        if verdict.ready != self.ready:
            self.ready = verdict.ready
            self.flips += 1
        return verdict.ready
