"""The compiled, immutable shape of a rule set: what the loader produces and the engine reads."""

from dataclasses import dataclass, field
from functools import cached_property

from exporter.config.fleet_config import SERIES_PREFIX, FleetConfig
from exporter.config.scrape_config import ScrapeConfig
from exporter.promql import CompiledExpr
from exporter.rules.score import ScoreSpec

SEVERITIES = ("unready", "warn")
# What an empty result means: ok (the condition is false), unready (it holds), keep (hold the last state).
MISSING_POLICIES = ("ok", "unready", "keep")


@dataclass(frozen=True)
class Rule:
    name: str
    expr_text: str
    expr: CompiledExpr = field(compare=False)
    above: float | None = None
    below: float | None = None
    recover_below: float | None = None
    recover_above: float | None = None
    for_seconds: float = 0.0
    keep_firing_for_seconds: float = 0.0
    severity: str = "unready"
    on_missing: str = "ok"
    hard_failure: bool = False  # broken or stalled, not merely busy: the fail-open guard never overrides it
    description: str = field(default="", compare=False)
    source: str = field(default="", compare=False)  # "file:line", for messages
    expr_source: str = field(default="", compare=False)  # "file:line:col" of the expression

    @property
    def is_threshold(self) -> bool:
        return self.above is not None or self.below is not None

    def definition(self) -> tuple:
        """What must stay equal for a rule to keep its state across a reload."""
        return (
            self.name,
            self.expr_text,
            self.above,
            self.below,
            self.recover_below,
            self.recover_above,
            self.for_seconds,
            self.keep_firing_for_seconds,
            self.severity,
            self.on_missing,
            self.hard_failure,
        )


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    scrape: ScrapeConfig = ScrapeConfig()
    sha256: str = ""
    files: tuple[str, ...] = ()
    fleet: FleetConfig | None = None  # the optional fleet: block (exporter/config/fleet_config.py)
    score: ScoreSpec | None = None  # the `score:` section: the load score for balancers

    @cached_property  # read every cycle to select lines before parsing
    def metric_names(self) -> frozenset[str] | None:
        """Sample names the rules read from the scraped page; None when some selector cannot be
        narrowed to names. fleet:<name> series are left out: they come from the fleet view's
        answers (exporter/core/fleet_view.py), never from the page."""
        names: set[str] = set()
        for rule in self.rules:
            wanted = rule.expr.metric_names
            if wanted is None:
                return None
            names |= wanted
        if self.score is not None:
            if self.score.metric_names is None:
                return None
            names |= self.score.metric_names
        return frozenset(name for name in names if not name.startswith(SERIES_PREFIX))

    @cached_property
    def max_range_seconds(self) -> float:
        ranges = [rule.expr.max_range_seconds for rule in self.rules]
        return max(ranges + [self.score.max_range_seconds if self.score else 0.0])
