"""The evaluator's side of the fleet view: the fleet history and the per-cycle view.

FleetLink lives on the evaluator's thread: it copies a poller's good rounds into a History of
the fleet's series (only that thread touches it) and judges, at the cycle's own time, whether
the view is in use. The poller is whatever the caller gives: the sidecar's thread of real HTTP
queries (exporter.serve.fleet_poller) or the simulator's Prometheus (exporter.sim.prometheus),
so both decide through this same code. A poller has `config`, `snapshot` (last, last_good,
failures), `start()` and `stop()`.
"""

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from exporter.config.fleet_config import FleetConfig
from exporter.config.settings import redact_url
from exporter.core.fleet_query import FleetRound
from exporter.core.fleet_view import FleetStatus, LayeredHistory, judge
from exporter.core.history import History

log = logging.getLogger("llm_healthcheck")


@dataclass(frozen=True)
class Snapshot:
    """What a poller publishes, by one reference swap: newest round, newest good one, failures."""

    last: FleetRound | None = None
    last_good: FleetRound | None = None
    failures: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def after(self, result: FleetRound) -> "Snapshot":
        """The snapshot once `result` is the newest round: failures counted by reason."""
        failures = dict(self.failures)
        if not result.ok:
            failures[result.reason] = failures.get(result.reason, 0) + 1
        return Snapshot(result, result if result.ok else self.last_good, MappingProxyType(failures))


class Poller(Protocol):
    config: FleetConfig
    snapshot: Snapshot

    def start(self) -> None: ...

    def stop(self) -> None: ...


class FleetLink:
    """The evaluator's side: one poller per fleet block, the fleet history, the per-cycle view."""

    def __init__(self, clock, poller_factory):
        self.clock = clock
        self._poller_factory = poller_factory
        self.poller: Poller | None = None
        self._history = History(1.0)  # replaced with the right retention by install()
        self._layered: LayeredHistory | None = None
        self._recorded = 0  # number of the newest round copied into the history
        self._running = False
        self._stale = False  # logged once when it starts; failures are logged by the poller

    def install(self, config: FleetConfig | None, retention: float, max_series: int) -> None:
        """A new or changed fleet block starts over (new poller, empty history); the same keeps going."""
        if self.poller is not None and self.poller.config == config:
            self._history.retention_seconds = retention
            return
        if self.poller is not None:
            self.poller.stop()
            self.poller, self._layered = None, None
        if config is None:
            return
        self.poller = self._poller_factory(config, self.clock)
        self._stale = False
        self._history = History(retention, max_series)
        self._recorded = 0
        if self._running:
            self.poller.start()

    def start(self) -> None:
        self._running = True
        if self.poller is not None:
            self.poller.start()

    def stop(self) -> None:
        self._running = False
        if self.poller is not None:
            self.poller.stop()

    def for_cycle(self, base: History, now: float) -> tuple:
        """(history the rules read, FleetStatus or None without a fleet block) for the cycle at unix `now`."""
        if self.poller is None:
            return base, None
        config, snap = self.poller.config, self.poller.snapshot
        good = snap.last_good
        if good is not None and good.number > self._recorded:
            # At most the cycle's own time: a round that finished after `now` was taken must still
            # be visible to this cycle's instant selectors.
            self._history.record(min(good.time, now), good.samples)
            self._recorded = good.number
        why_not = judge(config, snap.last, good, self.clock.monotonic())
        self._log_staleness(why_not)
        age = None if good is None else max(0.0, self.clock.monotonic() - good.finished)
        status = FleetStatus(
            redact_url(config.url),
            config,
            not why_not,
            why_not,
            snap.last,
            None if good is None else good.time,
            age,
            good.pods if good and not why_not else None,
            good.unready if good and not why_not else None,
            len(good.samples) if good and not why_not else 0,
            snap.failures,
        )
        if why_not:
            return base, status
        if self._layered is None or self._layered.base is not base:
            self._layered = LayeredHistory(base, self._history)
        return self._layered, status

    def _log_staleness(self, why_not: str) -> None:
        stale = why_not.startswith("stale")
        if stale and not self._stale:
            log.warning("fleet view %s; deciding standalone", why_not)
        elif self._stale and not stale and not why_not:
            log.info("fleet view fresh again")
        self._stale = stale
