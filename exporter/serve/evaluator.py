"""The loop: scrape -> history -> engine -> publish, plus rule reloads.

Runs in one background thread inside the gunicorn worker. Request threads only read
`decision` (an immutable snapshot swapped by reference). Time comes from an injected clock so
the loop, hysteresis and reloads are tested without sleeping.

Reloads happen only on this thread (a poll every reload_interval by content hash, SIGHUP and
POST /-/reload merely ask for one), so a rule set is never swapped in the middle of a cycle.
"""

import logging
import threading
import time as _time
from collections import Counter
from dataclasses import replace

from exporter.config.errors import ConfigError, unexpected
from exporter.config.settings import Settings, check_scrape, effective_scrape, redact_url
from exporter.core import engine, load_score, policy
from exporter.core.decision import STARTING, TERMINATING, Decision, ReloadStatus, ScrapeStatus, frozen
from exporter.core.fleet_link import FleetLink
from exporter.core.fleet_view import guard_inputs
from exporter.core.history import History
from exporter.core.memory_bounds import HISTORY_MAX_LABEL_BYTES, series_cap
from exporter.core.scrape import Scraper
from exporter.rules import ruleset_diff
from exporter.rules.model import RuleSet
from exporter.serve.fleet_poller import FleetPoller
from exporter.serve.rule_logs import RuleLogs
from exporter.serve.rules_source import RulesSource

log = logging.getLogger("llm_healthcheck")

HISTORY_MARGIN_SECONDS = 60.0  # kept beyond the longest range selector


class SystemClock:
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


class Evaluator:
    def __init__(
        self,
        settings: Settings,
        source: RulesSource | None = None,
        *,
        clock=SystemClock,
        scraper_factory=Scraper,
        fleet: FleetLink | None = None,
    ):
        """Loads the rules at once; a ConfigError here is a startup error for the caller."""
        self.settings = settings
        self.source = source or RulesSource(settings)
        self.clock = clock
        self._scraper_factory = scraper_factory
        self._fleet = fleet or FleetLink(clock, FleetPoller)  # the fleet: block's queries, on a thread of their own
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._reload_requested = threading.Event()
        self._reload_done = threading.Condition()
        self._reload_generation = 0
        self._reload_finished = False
        self._terminating = False
        self.listeners: list = []  # called with each published decision, after it is swapped in (the status page)

        ruleset, self._fingerprint = self.source.load()
        config = self._check_config(ruleset)
        self._failed_fingerprint = None
        self._install(ruleset, config)
        self._state = engine.initial_state()
        self._history = History(self._retention(ruleset), settings.history_max_series, HISTORY_MAX_LABEL_BYTES)
        self._bound_history()
        self._series_dropped = 0
        self._scrape = ScrapeStatus()
        self._rule_transitions = Counter()
        self._readiness_transitions = Counter()
        self._scrape_failures = Counter()
        self._reloads = Counter()
        self._reload = ReloadStatus(True, self.clock.time(), "", frozen(self._reloads))
        self._next_reload_check = self.clock.monotonic() + settings.reload_interval
        self._last_cycle_end = self.clock.monotonic()
        self._cycle = 0
        self._rule_logs = RuleLogs(self._rule_transitions)
        # Every loaded rule is listed (at ok, not evaluated) from the start, so /rules and the
        # metrics' label children exist before the first scrape completes.
        _, unevaluated = engine.hold(ruleset, self._state, self.clock.time(), "not evaluated yet")
        self._publish(
            Decision(
                False,
                "starting: no scrape has completed yet",
                STARTING,
                self.clock.time(),
                ruleset,
                config,
                unevaluated,
                reload=self._reload,
                fleet=self._fleet.for_cycle(self._history, self.clock.time())[1],
            )
        )
        log.info(
            "rules loaded: %d rule(s), sha256 %s, from %s",
            len(ruleset.rules),
            ruleset.sha256[:12],
            self.source.path or "the seed env vars",
        )

    # ---- the loop -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="evaluator", daemon=True)
        self._thread.start()
        self._fleet.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._scraper.close()
        self._fleet.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock.monotonic()
            try:
                self.maybe_reload()
                self.cycle()
            except Exception:  # never let the loop die; /livez reports a stuck loop
                log.exception("evaluation cycle failed")
            self._notify_reload_waiters()
            delay = self.config.interval - (self.clock.monotonic() - started)
            self._stop.wait(max(0.0, delay))

    def cycle(self) -> Decision:
        """One scrape and evaluation; publishes and returns the new decision."""
        now = self.clock.time()
        ruleset, config = self.ruleset, self.config
        result = self._scraper.scrape(ruleset.metric_names)
        history, fleet = self._fleet.for_cycle(self._history, now)  # fleet:<name> beside the scrape
        eval_started = self.clock.monotonic()
        if result.ok and not result.empty:
            self._series_dropped += self._history.record(now, result.samples)
            self._state, statuses = engine.evaluate(ruleset, history, self._state, now)
        else:
            why = "no fresh data: " + (result.error or "empty body")
            self._state, statuses = engine.hold(ruleset, self._state, now, why)
        evaluation_duration = self.clock.monotonic() - eval_started

        self._scrape = self._next_scrape_status(result, now)
        self._rule_logs.record(statuses, result.samples if result.ok and not result.empty else None)
        verdict = policy.decide(
            statuses,
            self._scrape,
            config,
            previous_ready=self.decision.ready,
            terminating=self._terminating,
            **guard_inputs(fleet),
        )
        load = load_score.next_score(ruleset.score, self.decision, self._history, now, result, self._scrape, config)
        self._cycle += 1
        decision = Decision(
            verdict.ready,
            verdict.reason,
            verdict.phase,
            now,
            ruleset,
            config,
            statuses,
            self._scrape,
            self._reload,
            frozen(self._rule_transitions),
            None,
            frozen(self._scrape_failures),
            evaluation_duration,
            self._cycle,
            self._history.series_count,
            self._series_dropped,
            verdict.fail_open,
            fleet,
            self._history.evicted,
            load,
        )
        self._publish(decision)
        self._last_cycle_end = self.clock.monotonic()
        return self.decision

    def _next_scrape_status(self, result, now: float) -> ScrapeStatus:
        previous = self._scrape
        if result.ok:
            status = ScrapeStatus(True, result.empty, None, "", 0, now, now, result.duration, len(result.samples))
        else:
            self._scrape_failures[result.reason] += 1
            status = ScrapeStatus(
                False,
                False,
                result.reason,
                result.error,
                previous.consecutive_failures + 1,
                now,
                previous.last_success,
                result.duration,
                previous.series,
            )
        if previous.ok is not status.ok or previous.reason != status.reason or previous.empty != status.empty:
            if status.ok:
                log.info(
                    "scrape ok%s from %s", " (empty body)" if status.empty else "", redact_url(self.config.endpoint)
                )
            else:
                log.warning("scrape failing (%s): %s", status.reason, status.error)
        return status

    def _publish(self, decision: Decision) -> None:
        with self._lock:
            if self._terminating and decision.phase != TERMINATING:
                # a cycle that began before SIGTERM must not publish "ready" after it
                decision = replace(decision, ready=False, phase=TERMINATING, reason=policy.TERMINATING_REASON)
            previous = getattr(self, "decision", None)
            if previous is not None and previous.ready != decision.ready:
                self._readiness_transitions["ready" if decision.ready else "unready"] += 1
                log.info("readiness -> %s: %s", "ready" if decision.ready else "unready", decision.reason)
            self.decision = replace(decision, readiness_transitions=frozen(self._readiness_transitions))
        for listener in self.listeners:  # outside the lock: rendering must not delay terminate()
            listener(self.decision)

    # ---- liveness and shutdown ------------------------------------------------------------

    def alive(self) -> bool:
        """The loop thread runs and finished a cycle within 3 intervals plus the timeout."""
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            return False  # the loop thread is gone: nothing will ever publish again
        limit = 3 * self.config.interval + self.config.timeout
        return self.clock.monotonic() - self._last_cycle_end <= limit

    def terminate(self) -> None:
        """SIGTERM: unready from this moment; the loop keeps running until the process exits."""
        with self._lock:
            self._terminating = True
            current = self.decision
        if current.ready or current.phase != TERMINATING:
            self._publish(replace(current, ready=False, phase=TERMINATING, reason=policy.TERMINATING_REASON))

    # ---- reloads --------------------------------------------------------------------------

    def request_reload(self, wait: float | None = None) -> bool | None:
        """Ask the loop for a reload (SIGHUP, POST /-/reload); optionally wait for the result."""
        if wait is None:  # from a signal handler: set a flag, take no other lock
            self._reload_requested.set()
            return None
        with self._reload_done:
            generation = self._reload_generation
            self._reload_requested.set()
            self._reload_done.wait_for(lambda: self._reload_generation != generation, wait)
            return self._reload.last_ok if self._reload_generation != generation else None

    @property
    def last_reload(self) -> ReloadStatus:
        """The latest reload outcome, before the next cycle publishes it in the decision."""
        return self._reload

    def maybe_reload(self) -> None:
        """Reload when asked, or when the poll finds the rule files' content changed."""
        forced = self._reload_requested.is_set()
        now = self.clock.monotonic()
        if not forced and now < self._next_reload_check:
            return
        self._next_reload_check = now + self.settings.reload_interval
        self._reload_requested.clear()
        fingerprint = self.source.fingerprint()
        if not forced and fingerprint in (self._fingerprint, self._failed_fingerprint):
            return
        self.reload()

    def reload(self) -> bool:
        fingerprint = None
        try:
            ruleset, fingerprint = self.source.load()
            config = self._check_config(ruleset)
        except Exception as error:  # a loader bug must count as a failed reload too
            err = error if isinstance(error, ConfigError) else unexpected(self.source.path or "rules", error)
            self._reloads["failure"] += 1
            self._failed_fingerprint = getattr(err, "fingerprint", fingerprint)
            self._reload = ReloadStatus(False, self._reload.last_success, str(err), frozen(self._reloads))
            for problem in err.problems:
                log.error("%s", problem)
            log.error("rules reload failed; keeping the %d rule(s) loaded before", len(self.ruleset.rules))
            ok = False
        else:
            self._reloads["success"] += 1
            self._fingerprint, self._failed_fingerprint = fingerprint, None
            changes = ruleset_diff.describe(self.ruleset, ruleset)
            self._install(ruleset, config)
            self._history.retention_seconds = self._retention(ruleset)
            self._bound_history()
            self._reload = ReloadStatus(True, self.clock.time(), "", frozen(self._reloads))
            log.info("rules reloaded: %d rule(s), sha256 %s: %s", len(ruleset.rules), ruleset.sha256[:12], changes)
            ok = True
        self._forget_removed_rules()
        self._reload_finished = True
        return ok

    def _notify_reload_waiters(self) -> None:
        """After the cycle that follows a reload, so a waiter then reads the new rules' decision."""
        if self._reload_finished:
            self._reload_finished = False
            with self._reload_done:
                self._reload_generation += 1
                self._reload_done.notify_all()

    def _install(self, ruleset: RuleSet, config) -> None:
        old = getattr(self, "config", None)
        self.ruleset, self.config = ruleset, config
        if old is None or (old.endpoint, old.timeout) != (config.endpoint, config.timeout):
            if old is not None:
                self._scraper.close()
            self._scraper = self._scraper_factory(config.endpoint, config.timeout, self.settings.max_body_bytes)
        self._fleet.install(ruleset.fleet, self._retention(ruleset), self.settings.history_max_series)

    def _check_config(self, ruleset: RuleSet):
        config = effective_scrape(self.settings, ruleset.scrape)
        origin = ruleset.files[0] if ruleset.files else "settings"
        problems = check_scrape(config, origin)
        if problems:
            raise ConfigError(problems)
        return config

    def _forget_removed_rules(self) -> None:
        names = {rule.name for rule in self.ruleset.rules}
        for key in [k for k in self._rule_transitions if k[0] not in names]:
            del self._rule_transitions[key]

    def _bound_history(self) -> None:
        # The sample budget caps the series at this interval and range; the scrape refuses a
        # page with more selected samples than the history could hold.
        cap = series_cap(self.settings.history_max_series, self._history.retention_seconds, self.config.interval)
        self._history.max_series = cap
        self._scraper.max_samples = cap

    @staticmethod
    def _retention(ruleset: RuleSet) -> float:
        return ruleset.max_range_seconds + HISTORY_MARGIN_SECONDS
