"""What one evaluation cycle makes of the fleet queries: in use or not, and the series rules see.

The view is in use only while the newest round succeeded and is younger than max_age. Out of
use, the cycle runs exactly as without a fleet block: rules read no fleet:<name> series (no
data, so ok by default), and the guard gets no fleet view. That is the whole degraded mode,
and FleetStatus says which case holds, for /health?verbose, the JSON answers and /metrics.
"""

from dataclasses import dataclass, field
from itertools import chain
from types import MappingProxyType

from exporter.config.fleet_config import SERIES_PREFIX, FleetConfig
from exporter.core.fleet_query import FleetRound
from exporter.core.policy import FleetView

_EMPTY: MappingProxyType = MappingProxyType({})


@dataclass(frozen=True)
class FleetStatus:
    """The fleet view as one cycle used it; part of the published decision."""

    url: str  # redacted
    config: FleetConfig
    in_use: bool = False
    why_not: str = "no answer yet"  # empty while in use
    last: FleetRound | None = None  # the newest round, good or bad
    last_success_time: float | None = None  # unix seconds
    age: float | None = None  # seconds since the newest good round
    pods: int | None = None  # of the good round in use
    unready: int | None = None
    series: int = 0  # fleet:<name> series the rules could read this cycle
    failures: MappingProxyType = field(default_factory=lambda: _EMPTY)  # reason -> n


def judge(config: FleetConfig, last: FleetRound | None, last_good: FleetRound | None, now: float) -> str:
    """Why the view is not in use at monotonic time `now`, or "" when it is."""
    if last is None:
        return "no answer yet"
    if not last.ok:
        return f"query failed: {last.error}"
    age = now - last.finished
    if last_good is None or age > config.max_age:
        return f"stale: the last answer is {age:.0f}s old, more than max_age {config.max_age:g}s"
    return ""


def guard_inputs(status: FleetStatus | None) -> dict:
    """policy.decide()'s fleet arguments: none unless the view is in use and the block sets
    max_unready_fraction, so a missing, failed or stale view decides exactly as standalone."""
    if status is None or not status.in_use or not status.config.guarded or status.pods is None:
        return {}
    view = FleetView(status.pods, status.unready or 0)
    return {"fleet": view, "max_unready_fraction": status.config.max_unready_fraction}


class LayeredHistory:
    """The scraped history with the fleet's series beside it, read-only, for the PromQL evaluator.

    fleet:<name> is looked up only in the fleet's history, every other name only in the scraped
    one, so an inference server that happened to print a fleet:<name> line cannot shadow the
    fleet's answer. Selector results are cached until either history gains or loses a series."""

    def __init__(self, base, fleet):
        self.base = base
        self.fleet = fleet
        self._cache: dict = {}
        self._generations = (None, None)

    @property
    def selector_cache(self) -> dict:
        generations = (self.base.generation, self.fleet.generation)
        if generations != self._generations:
            self._cache = {}
            self._generations = generations
        return self._cache

    def series_named(self, name: str):
        return (self.fleet if name.startswith(SERIES_PREFIX) else self.base).series_named(name)

    def series(self):
        return chain(self.base.series(), self.fleet.series())
