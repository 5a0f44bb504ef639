"""The published decision: one immutable snapshot that /health, /rules and /metrics all read.

Everything a reader needs is in here (including cumulative counters), so no answer ever mixes
two evaluation cycles.
"""

from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.config.scrape_config import ScrapeConfig
from exporter.rules.model import RuleSet

STARTING, SERVING, TERMINATING = "starting", "serving", "terminating"

_EMPTY: MappingProxyType = MappingProxyType({})


@dataclass(frozen=True)
class ScrapeStatus:
    ok: bool | None = None  # None: no scrape finished yet
    empty: bool = False
    reason: str | None = None  # failure reason of the last scrape
    error: str = ""
    consecutive_failures: int = 0
    last_attempt: float | None = None  # unix seconds
    last_success: float | None = None
    duration: float = 0.0
    series: int = 0  # samples kept from the last good scrape


@dataclass(frozen=True)
class ReloadStatus:
    last_ok: bool = True
    last_success: float | None = None  # unix seconds of the last successful (re)load
    last_error: str = ""
    counts: MappingProxyType = field(default_factory=lambda: _EMPTY)  # result -> n


@dataclass(frozen=True)
class Decision:
    ready: bool
    reason: str  # one line: why ready or not
    phase: str
    time: float  # unix seconds of the cycle that produced it
    ruleset: RuleSet
    scrape_config: ScrapeConfig
    rules: tuple = ()  # engine.RuleStatus per rule
    scrape: ScrapeStatus = ScrapeStatus()
    reload: ReloadStatus = ReloadStatus()
    rule_transitions: MappingProxyType = field(default_factory=lambda: _EMPTY)  # (rule, to) -> n
    readiness_transitions: MappingProxyType = field(default_factory=lambda: _EMPTY)  # "ready"/"unready" -> n
    scrape_failures: MappingProxyType = field(default_factory=lambda: _EMPTY)  # reason -> n
    evaluation_duration: float = 0.0
    cycle: int = 0
    history_series: int = 0  # series held for range functions and lookback
    series_dropped: int = 0  # new series refused because the history was full (cumulative)
    fail_open: bool = False  # the fail-open guard holds the pod in although rules would take it out
    fleet: object = None  # core.fleet_view.FleetStatus as this cycle used it; None without a fleet: block
    series_evicted: int = 0  # series no longer scraped, forgotten early to make room (cumulative)
    load: object = None  # core.load_score.LoadScore of this cycle; read through load_score.published()


def frozen(mapping: dict) -> MappingProxyType:
    return MappingProxyType(dict(mapping))
