"""The optional `fleet:` block of a rule file: where the fleet view comes from and what it asks.

A sidecar sees only its own pod; the fleet is already in Prometheus (every sidecar exports
`llm_healthcheck_ready`). This block names a Prometheus-compatible query endpoint and a few
instant queries. Each query `<name>` becomes the series `fleet:<name>` that rule expressions
read like any scraped metric; `pods` and `unready` also feed the fail-open guard
(`max_unready_fraction`). See docs/rules.md ("Fleet view").
"""

from dataclasses import dataclass

# Rule expressions read query `x` as the metric `fleet:x`. The colon keeps the names apart from
# anything an inference server exports (exporters must not use colons; recording rules do).
SERIES_PREFIX = "fleet:"
# The two queries the guard reads; both are optional unless max_unready_fraction is set.
GUARD_QUERIES = ("pods", "unready")

DEFAULT_INTERVAL = 15.0  # Prometheus' default scrape interval: querying faster sees nothing new
DEFAULT_TIMEOUT = 5.0
# A fleet answer is a few series; anything near this is a query that selects far too much.
MAX_BODY_BYTES = 1 << 20
MAX_SERIES_PER_QUERY = 1000


@dataclass(frozen=True)
class FleetConfig:
    url: str  # the instant-query endpoint itself, ending in /api/v1/query
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT  # one deadline for a whole round of queries
    max_age: float = 2 * DEFAULT_INTERVAL + DEFAULT_TIMEOUT  # older answers are not used
    max_unready_fraction: float | None = None
    queries: tuple[tuple[str, str], ...] = ()  # (name, PromQL), pods and unready first when given

    @property
    def guarded(self) -> bool:
        return self.max_unready_fraction is not None

    def query(self, name: str) -> str | None:
        return dict(self.queries).get(name)

    @property
    def series_names(self) -> frozenset[str]:
        return frozenset(SERIES_PREFIX + name for name, _ in self.queries)


def default_timeout(interval: float) -> float:
    """5s, or 80% of a shorter interval (as the main scrape derives its timeout)."""
    return min(DEFAULT_TIMEOUT, round(interval * 0.8, 6))


def default_max_age(interval: float, timeout: float) -> float:
    """Two missed rounds: one slow round is tolerated, a stuck poller is not."""
    return 2 * interval + timeout
