"""The fleet view as a sidecar would get it from Prometheus: late, and in steps.

Prometheus scrapes every sidecar's `llm_healthcheck_ready` every `scrape_interval` (each
target at its own phase, as Prometheus spreads targets), and the sidecar runs its fleet
query every `query_interval`. So what a sidecar knows about its peers at time t is their
readiness as of up to scrape_interval + query_interval ago: 15 s + 15 s by default, the
Prometheus default scrape interval and a query interval of the same length. The guard in
exporter.core.policy.decide then judges with that lagged view, exactly as the sidecar does.

The fleet is every pod of the scenario (one model served from several regions): draining a
pod helps as long as some pod anywhere can take its traffic, which is what the gateway's
spill does.
"""

import random
from dataclasses import dataclass

from exporter.core.policy import FleetView


@dataclass(frozen=True)
class FleetSpec:
    scrape_interval: float = 15.0  # Prometheus' scrape of each sidecar's /metrics
    query_interval: float = 15.0  # the sidecar's fleet query
    max_unready_fraction: float | None = 0.5  # None: the guard off (the sidecar's fleet view without it)

    @property
    def lag(self) -> float:
        return self.scrape_interval + self.query_interval


def parse_fleet(reader, value) -> FleetSpec:
    """A scenario's `fleet:` block, read with the scenario reader (problems carry file:line:col)."""
    where = ("fleet",)
    data = reader.mapping(value, where, ("scrape_interval", "query_interval", "max_unready_fraction"))
    base = FleetSpec()
    scrape = reader.duration(data.get("scrape_interval"), where + ("scrape_interval",), base.scrape_interval)
    query = reader.duration(data.get("query_interval"), where + ("query_interval",), base.query_interval)
    fraction = reader.number(data.get("max_unready_fraction"), where + ("max_unready_fraction",), minimum=0)
    if fraction is not None and fraction >= 1:
        # The rule file's fleet.max_unready_fraction has the same bounds.
        reader.fail(where + ("max_unready_fraction",), f"must be at least 0 and below 1, got {fraction:g}")
        fraction = None
    return FleetSpec(scrape, query, base.max_unready_fraction if fraction is None else fraction)


class FleetLag:
    """Per pod: the readiness Prometheus last scraped; per sidecar: the last query's answer."""

    def __init__(self, spec: FleetSpec, pods: int, rng: random.Random):
        self.spec = spec
        self._scraped = [True] * pods  # pods start ready
        self._next_scrape = [rng.uniform(0, spec.scrape_interval) for _ in range(pods)]
        self._next_query = [rng.uniform(0, spec.query_interval) for _ in range(pods)]
        self._views = [FleetView(pods, 0)] * pods

    def observe(self, t: float, sidecar_ready: list[bool]) -> None:
        """Prometheus scrapes the sidecars that are due at t, then due sidecars query it."""
        spec = self.spec
        scraped = self._scraped
        for i, due in enumerate(self._next_scrape):
            if t + 1e-9 >= due:
                scraped[i] = sidecar_ready[i]
                self._next_scrape[i] = due + spec.scrape_interval
        unready = None
        for i, due in enumerate(self._next_query):
            if t + 1e-9 >= due:
                if unready is None:
                    unready = scraped.count(False)
                self._views[i] = FleetView(len(scraped), unready)
                self._next_query[i] = due + spec.query_interval

    def view(self, pod: int) -> FleetView:
        return self._views[pod]
