"""The sidecar inside a simulated pod: the real rule engine and the real readiness policy, fed
the pod's own metric page every interval, exactly as the sidecar's evaluator feeds them."""

from exporter.config.scrape_config import ScrapeConfig
from exporter.core import engine, policy
from exporter.core.history import History
from exporter.rules.model import RuleSet

HISTORY_MARGIN_SECONDS = 60.0  # as the sidecar keeps beyond its longest range selector


class SimSidecar:
    __slots__ = ("ruleset", "history", "state", "page_config", "ready", "flips")

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self.history = History(ruleset.max_range_seconds + HISTORY_MARGIN_SECONDS)
        self.state = engine.initial_state()
        # A simulated page always arrives; of the scrape settings only on_empty matters.
        self.page_config = ScrapeConfig(on_empty=ruleset.scrape.on_empty or "ready")
        self.ready = True  # pods start as if they had been serving for a while
        self.flips = 0

    def evaluate(self, t: float, samples) -> bool:
        """One evaluation at `t` over the page's samples (empty: the server printed nothing)."""
        if samples:
            self.history.record(t, samples)
            self.state, statuses = engine.evaluate(self.ruleset, self.history, self.state, t)
            page = policy.FRESH_PAGE
        else:  # TGI prints an empty page before its first request
            self.state, statuses = engine.hold(self.ruleset, self.state, t, "empty body")
            page = policy.EMPTY_PAGE
        ready = policy.decide(statuses, page, self.page_config, previous_ready=self.ready).ready
        if ready != self.ready:
            self.ready = ready
            self.flips += 1
        return ready
