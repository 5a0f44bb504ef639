"""The fleet view's own thread, and what the evaluator takes from it each cycle.

FleetPoller runs a round of fleet queries every `fleet.interval` on a thread of its own, so a
slow or hung Prometheus never delays a scrape, an evaluation or a probe. It publishes one
immutable snapshot (newest round, newest good round, failure counts) by a single reference
swap. FleetLink lives on the evaluator's thread: it copies good rounds into a History of the
fleet's series (only that thread touches it) and judges, at the cycle's own time, whether the
view is in use. The clock is injected, so tests step rounds and ages without sleeping.
"""

import logging
import threading
import time as _time
from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.config.fleet_config import FleetConfig
from exporter.config.settings import redact_url
from exporter.core.fleet_query import FleetClient, FleetRound, run_round
from exporter.core.fleet_view import FleetStatus, LayeredHistory, judge
from exporter.core.history import History

log = logging.getLogger("llm_healthcheck")


class _Clock:
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


@dataclass(frozen=True)
class Snapshot:
    last: FleetRound | None = None
    last_good: FleetRound | None = None
    failures: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


class FleetPoller:
    def __init__(self, config: FleetConfig, clock=_Clock, client_factory=FleetClient):
        self.config = config
        self.clock = clock
        self._client = client_factory(config.url, config.timeout, clock.monotonic)
        self.snapshot = Snapshot()
        self._failures: Counter = Counter()
        self._number = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> FleetRound:
        """One round now; publishes and returns it."""
        self._number += 1
        previous = self.snapshot
        result = run_round(self.config, self._client, self._number, self.clock)
        if not result.ok:
            self._failures[result.reason] += 1
        self.snapshot = Snapshot(
            result, result if result.ok else previous.last_good, MappingProxyType(dict(self._failures))
        )
        self._log_change(previous.last, result)
        return result

    def _log_change(self, before: FleetRound | None, now: FleetRound) -> None:
        url = redact_url(self.config.url)
        if now.ok and (before is None or not before.ok):
            counts = f": {now.pods} pods, {now.unready} unready" if now.pods is not None else ""
            log.info("fleet query ok from %s%s", url, counts)
        elif not now.ok and (before is None or before.ok or before.reason != now.reason):
            log.warning("fleet query failing (%s) from %s: %s; deciding standalone", now.reason, url, now.error)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end after its round; never waits for it. A reload calls this on the
        evaluator's thread, which must not sit out a slow round; the old poller's last answer is
        read by no one."""
        self._stop.set()
        if self._thread is None:
            self._client.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = self.clock.monotonic()
                try:
                    self.poll()
                except Exception:  # never let the thread die: a dead poller reads as a stale view
                    log.exception("fleet query round failed")
                self._stop.wait(max(0.0, self.config.interval - (self.clock.monotonic() - started)))
        finally:
            self._client.close()  # on this thread: the connection is never closed under a request


class FleetLink:
    """The evaluator's side: one poller per fleet block, the fleet history, the per-cycle view."""

    def __init__(self, clock, poller_factory=FleetPoller):
        self.clock = clock
        self._poller_factory = poller_factory
        self.poller: FleetPoller | None = None
        self._history: History | None = None
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
            self.poller, self._history, self._layered = None, None, None
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
