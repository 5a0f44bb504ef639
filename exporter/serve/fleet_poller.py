"""The fleet view's own thread, and what the evaluator takes from it each cycle.

FleetPoller runs a round of fleet queries every `fleet.interval` on a thread of its own, so a
slow or hung Prometheus never delays a scrape, an evaluation or a probe. It publishes one
immutable snapshot (newest round, newest good round, failure counts) by a single reference
swap. The evaluator's side, exporter.core.fleet_link.FleetLink, reads that snapshot each cycle.
The clock is injected, so tests step rounds and ages without sleeping.
"""

import logging
import threading
import time as _time

from exporter.config.fleet_config import FleetConfig
from exporter.config.settings import redact_url
from exporter.core.fleet_link import Snapshot
from exporter.core.fleet_query import FleetClient, FleetRound, run_round

log = logging.getLogger("llm_healthcheck")


class _Clock:
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


class FleetPoller:
    def __init__(self, config: FleetConfig, clock=_Clock, client_factory=FleetClient):
        self.config = config
        self.clock = clock
        self._client = client_factory(config.url, config.timeout, clock.monotonic)
        self.snapshot = Snapshot()
        self._number = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> FleetRound:
        """One round now; publishes and returns it."""
        self._number += 1
        previous = self.snapshot
        result = run_round(self.config, self._client, self._number, self.clock)
        self.snapshot = previous.after(result)
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
