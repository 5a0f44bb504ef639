"""The fleet view a simulated sidecar gets from Prometheus: which queries, and how late.

A scenario's `fleet:` block sets Prometheus' `scrape_interval` and, for rule files without a
`fleet:` block of their own, the query interval and the guard's max_unready_fraction: such a
rule file gets the two guard queries (`pods`, `unready`) over every pod of the scenario. A
rule file with its own `fleet:` block is simulated with that block: its queries (rules may
read them as `fleet:<name>`), interval and guard. What a sidecar knows of its peers at t is
what they were up to scrape_interval + interval ago: 15 s + 15 s by default, Prometheus'
default scrape interval and a query interval of the same length (exporter.sim.prometheus).

The fleet is every pod of the scenario (one model served from several regions): draining a
pod helps as long as some pod anywhere can take its traffic, which is what the gateway's
spill does.
"""

from dataclasses import dataclass

from exporter.config.fleet_config import FleetConfig, default_max_age, default_timeout

SIMULATED_URL = "http://prometheus.simulated/api/v1/query"
# For rule files without a fleet: block: only the two counts the guard reads.
GUARD_ONLY_QUERIES = (
    ("pods", "count(llm_healthcheck_ready)"),
    ("unready", "count(llm_healthcheck_ready == 0)"),
)


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


def fleet_config(spec: FleetSpec, ruleset) -> FleetConfig:
    """The fleet block the simulated sidecars run: the rule file's own, else the guard's two
    queries at the scenario's query interval and max_unready_fraction."""
    block = getattr(ruleset, "fleet", None)
    if block is not None:
        return block
    interval = spec.query_interval
    timeout = default_timeout(interval)
    return FleetConfig(
        SIMULATED_URL,
        interval,
        timeout,
        default_max_age(interval, timeout),
        spec.max_unready_fraction,
        GUARD_ONLY_QUERIES,
    )
