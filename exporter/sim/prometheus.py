"""Prometheus as the fleet's sidecars would query it, in virtual time.

Prometheus scrapes every pod every `scrape_interval`: the inference server's page (the metric
names the fleet queries read) and the sidecar's `llm_healthcheck_ready`. Each sidecar asks it
its fleet block's queries every `interval`, at its own phase, through the sidecar's own round
logic (exporter.core.fleet_query.run_round: the pods/unready counts and their checks), and
exporter.core.fleet_link.FleetLink turns good answers into `fleet:<name>` series and the
guard's view, exactly as in the sidecar. So what a sidecar knows of its peers at t is what
they were up to scrape_interval + interval ago.

Queries are evaluated by the sidecar's PromQL engine over what was scraped, so a fleet query
the simulator runs must stay inside the sidecar's subset (docs/promql-subset.md); one outside
it is a clear error before the run. Every scraped series carries the labels a Prometheus
scraping the shipped manifests adds: `pod` (e.g. us-east-2), `region` and `app` (the engine's
name: tgi, vllm, sglang). One simplification: all pods are scraped at the same instants (one
phase), where Prometheus spreads its targets; each pod's lag is still uniform over the
interval. A crashed server's page is missing from the scrape (its series go stale), as in
Prometheus.
"""

import random

from exporter.config.fleet_config import FleetConfig
from exporter.core.fleet_link import Snapshot
from exporter.core.fleet_query import QUERY_ERROR, FleetQueryFailure, run_round
from exporter.core.history import History
from exporter.promql import CompiledExpr, PromQLError, compile_expr, evaluate

READY = "llm_healthcheck_ready"
LOOKBACK = 300.0  # Prometheus' default lookback delta


def _next_due(due: float, t: float, interval: float) -> float:
    """The next tick after the one due at `due` and taken at t (never in the past)."""
    due += interval
    return due if due > t else t + interval


class SimClock:
    """The virtual clock the fleet code reads: unix and monotonic time are the same here."""

    def __init__(self):
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def compile_queries(config: FleetConfig) -> dict[str, CompiledExpr]:
    """The block's queries compiled with the sidecar's PromQL; ValueError names one that is not."""
    compiled = {}
    for name, text in config.queries:
        try:
            compiled[text] = compile_expr(text)
        except PromQLError as err:
            raise ValueError(
                f'fleet query "{name}": the simulator evaluates fleet queries with the sidecar\'s PromQL subset: {err}'
            ) from None
    return compiled


class SimPrometheus:
    """The scraped series of every pod, and the instant-query API over them."""

    def __init__(self, config: FleetConfig, scrape_interval: float, pods: list[tuple[str, str]], app: str, rng):
        self.compiled = compile_queries(config)
        names: set[str] | None = set()
        longest = 0.0
        for expr in self.compiled.values():
            if expr.metric_names is None or names is None:
                names = None
            else:
                names |= expr.metric_names
            longest = max(longest, expr.max_range_seconds)
        # The server metric names the queries read (None: any name, so every family).
        self.names = None if names is None else frozenset(names - {READY})
        self.interval = scrape_interval
        self.history = History(longest + LOOKBACK + scrape_interval)
        self._targets = [(("app", app), ("pod", pod), ("region", region)) for pod, region in pods]
        self._ready_keys = [tuple(sorted((("__name__", READY),) + target)) for target in self._targets]
        self._next = rng.uniform(0, scrape_interval)
        self._answers: dict[str, dict] = {}
        self._at = 0.0

    def due(self, t: float) -> bool:
        return t + 1e-9 >= self._next

    def scrape(self, t: float, pages: list, ready: list[bool]) -> None:
        """One scrape of every pod at t: `pages[i]` is pod i's samples (None: its server is down)."""
        samples = []
        for target, key, page, is_ready in zip(self._targets, self._ready_keys, pages, ready):
            samples.append((key, 1.0 if is_ready else 0.0))
            if page:
                samples.extend((tuple(sorted(labels + target)), value) for labels, value in page)
        self.history.record(t, samples)
        self._next = _next_due(self._next, t, self.interval)
        self._answers = {}

    def query(self, text: str, deadline: float) -> dict:
        """/api/v1/query's `data` for `text` now (the client interface run_round uses)."""
        found = self._answers.get(text)
        if found is None:
            found = self._answers[text] = self._evaluate(text)
        return found

    def at(self, t: float) -> None:
        if t != self._at:
            self._at = t
            self._answers = {}

    def _evaluate(self, text: str) -> dict:
        t = self._at
        try:
            result = evaluate(self.compiled[text], self.history, t, LOOKBACK)
        except PromQLError as err:  # Prometheus answers {"status": "error"}: a failed round
            raise FleetQueryFailure(QUERY_ERROR, f"execution: {err}") from None
        if isinstance(result, float):
            return {"resultType": "scalar", "result": [t, repr(result)]}
        return {
            "resultType": "vector",
            "result": [{"metric": dict(labels), "value": [t, repr(float(value))]} for labels, value in result],
        }


class SimPoller:
    """One sidecar's fleet poller: a round every `config.interval`, at its own phase."""

    def __init__(self, config: FleetConfig, clock: SimClock, prometheus: SimPrometheus, rng: random.Random):
        self.config = config
        self.clock = clock
        self.prometheus = prometheus
        self.snapshot = Snapshot()
        self._next = rng.uniform(0, config.interval)
        self._number = 0

    def start(self) -> None:  # rounds are driven by the simulation's clock, not a thread
        pass

    def stop(self) -> None:
        pass

    def poll_if_due(self, t: float) -> None:
        if t + 1e-9 < self._next:
            return
        self._next = _next_due(self._next, t, self.config.interval)
        self._number += 1
        self.prometheus.at(t)
        self.snapshot = self.snapshot.after(run_round(self.config, self.prometheus, self._number, self.clock))
