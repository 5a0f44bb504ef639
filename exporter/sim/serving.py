"""Real requests into a simulated server: the desk between HTTP handlers and the model.

A request handler enters its request into the same ServerModel whose state /metrics
prints, then waits until the model says the request has left (queue wait + prefill +
decode, in wall-clock time). The model never runs by itself, so a driver thread advances
it every few milliseconds while requests are waiting and wakes the handlers whose
requests finished: a held connection lasts the modelled time within that granularity.

The control knobs (arrival rate, KV-cache capacity, faults) change the model at one
instant under the server's lock, after advancing it to that instant, so nothing that
happened before the change is re-timed by it.
"""

import math
import random
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from exporter.sim.arrivals import Arrivals
from exporter.sim.model import Request

if TYPE_CHECKING:
    from exporter.sim.server import SimulatedServer

DRIVER_TICK_SECONDS = 0.005  # how late a held connection may be released, at most
FAULTS = ("none", "slow", "stall")
DEFAULT_SLOWDOWN = 4.0  # `slow` without a factor: every prefill and decode step takes 4x as long
# A stall is a slowdown so large that nothing finishes while it lasts (a decode step takes
# days); it keeps the model's own bookkeeping instead of a second code path that stops time.
STALL_SLOWDOWN = 1e7


class ControlError(ValueError):
    """A control request the desk refuses; the message is one line for the HTTP answer."""


class RequestDesk:
    def __init__(self, simulated: "SimulatedServer", tick: float = DRIVER_TICK_SECONDS):
        self.sim = simulated
        self._tick = tick
        self._waiting: dict[Request, threading.Event] = {}
        self._wake = threading.Event()
        self._closed = False
        model = simulated.model
        self._base = (model.config, model._step0, model._step1)
        self.fault = "none"
        self.slowdown = 1.0
        self.rate_override: float | None = None
        self._driver = threading.Thread(target=self._drive, name="request-desk", daemon=True)
        self._driver.start()

    # ---- requests --------------------------------------------------------------------

    def submit(self, prompt: int | None, output: int | None) -> Request | None:
        """Enter a request now; None when the server is full (the caller answers 429)."""
        sim = self.sim
        with sim._lock:
            sim._advance()
            req = sim.model.arrive(sim.model.now, prompt, output, "http")
            if req is not None and not req.finished:
                self._waiting[req] = threading.Event()
        if req is not None:
            self._wake.set()
        return req

    def wait(self, req: Request, timeout: float) -> bool:
        """Block until the model has finished `req`; False if `timeout` passed first."""
        with self.sim._lock:
            event = self._waiting.get(req)
        if event is None:
            return bool(req.finished)
        done = event.wait(timeout)
        if not done:
            with self.sim._lock:
                self._waiting.pop(req, None)
        return done

    def _drive(self) -> None:
        sim = self.sim
        while not self._closed:
            if not self._waiting:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            with sim._lock:
                sim._advance()
                done = [req for req in self._waiting if req.finished]
                events = [self._waiting.pop(req) for req in done]
            for event in events:
                event.set()
            time.sleep(self._tick)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._driver.join(timeout=2)

    # ---- control ---------------------------------------------------------------------

    def control(self, changes: dict) -> dict:
        """Apply {rate, kv_cache_tokens, fault, slowdown}; all are checked before any applies."""
        if not isinstance(changes, dict):
            raise ControlError('the body must be a JSON object such as {"rate": 3}')
        unknown = sorted(set(changes) - {"rate", "kv_cache_tokens", "fault", "slowdown"})
        if unknown:
            raise ControlError(f"unknown key {unknown[0]!r}; allowed: rate, kv_cache_tokens, fault, slowdown")
        rate = changes.get("rate", self.rate_override)
        if rate is not None and not _number(rate, minimum=0.0):
            raise ControlError(f"rate must be a number >= 0 (requests/s) or null for the profile, got {rate!r}")
        kv = changes.get("kv_cache_tokens")
        config = self.sim.model.config
        largest = config.prompt_tokens.high + config.output_tokens.high
        if kv is not None and not (isinstance(kv, int) and not isinstance(kv, bool) and kv >= largest):
            raise ControlError(f"kv_cache_tokens must be a whole number >= {largest} (the largest request), got {kv!r}")
        fault = changes.get("fault", self.fault)
        if fault not in FAULTS:
            raise ControlError(f"fault must be one of {', '.join(FAULTS)}, got {fault!r}")
        slowdown = changes.get("slowdown")
        if slowdown is not None and not _number(slowdown, minimum=1.0):
            raise ControlError(f"slowdown must be a number >= 1, got {slowdown!r}")
        if fault == "slow":
            factor = float(slowdown or (self.slowdown if self.fault == "slow" else DEFAULT_SLOWDOWN))
        elif fault == "stall":
            factor = STALL_SLOWDOWN
        else:
            factor = 1.0
        sim = self.sim
        with sim._lock:
            sim._advance()
            if "rate" in changes:
                self._set_rate(rate)
            if kv is not None:
                sim.model._budget = kv
            self._set_speed(factor)
            self.fault = fault
        self._wake.set()
        return self.state()

    def state(self) -> dict:
        state = self.sim.state()
        state.update(
            fault=self.fault,
            slowdown=self.slowdown,
            rate_override=self.rate_override,
            kv_cache_tokens=self.sim.model._budget,
            in_flight_http=len(self._waiting),
        )
        return state

    def _set_rate(self, rate: float | None) -> None:
        """From now on, internal arrivals at a constant `rate` (None: back to the profile)."""
        sim = self.sim
        now = sim.model.now
        if rate is None:
            base = sim.base_rate
        else:
            rate = float(rate)

            def base(_t: float, rate=rate) -> float:
                return rate

        sim._arrivals = Arrivals(base, random.Random(f"{sim.seed}:arrivals:{now!r}"), start=now)
        self.rate_override = None if rate is None else float(rate)

    def _set_speed(self, factor: float) -> None:
        """Every prefill and decode step takes `factor` times as long as configured."""
        model = self.sim.model
        config, step0, step1 = self._base
        old = self.slowdown
        if factor == old:
            return
        model._step0 = step0 * factor
        model._step1 = step1 * factor
        model.config = replace(
            config,
            prefill_seconds=config.prefill_seconds * factor,
            prefill_seconds_per_token=config.prefill_seconds_per_token * factor,
        )
        if model._prefill_end is not None:
            # The prefill under way finishes its remaining work at the new speed.
            model._prefill_end = model.now + (model._prefill_end - model.now) * factor / old
        self.slowdown = factor


def _number(value, minimum: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= minimum
