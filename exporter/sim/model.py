"""A queueing model of one continuous-batching inference server (TGI, vLLM, SGLang).

Requests wait in a FIFO queue until the scheduler admits them into the running
batch: there must be a free slot (`max_batch_size`) and room in the KV cache for
the request's prompt plus its output. Admitted requests are prefilled together
(`prefill_seconds + prefill_seconds_per_token * prompt tokens`), which pauses
decoding, as a server without chunked prefill does; the prefill yields each
request's first token. Then every decode step produces one token for every
running request and takes `decode_seconds + decode_seconds_per_request * batch`.
A request leaves when it has produced its output length.

The model is event driven in virtual time: `advance_to(t)` jumps from event to
event (prefill end, next completion) instead of ticking, so an hour of a busy
server costs a few thousand events. All quantities the servers export (queue
size, batch size, KV usage, counters, latency histograms) are read from this one
state, which is why they stay consistent with each other.
"""

import heapq
import random
from collections import deque

from exporter.sim.model_config import Histogram, Lengths, ModelConfig

__all__ = ["Histogram", "Lengths", "ModelConfig", "QUANTITIES", "Request", "ServerModel"]

_EPS = 1e-9


class Request:
    __slots__ = ("arrival", "prompt", "output", "admitted", "first_token", "g_start", "tag", "finished")

    def __init__(self, arrival: float, prompt: int, output: int, tag=None):
        self.arrival = arrival
        self.prompt = prompt
        self.output = output
        self.admitted = 0.0
        self.first_token = 0.0
        self.g_start = 0.0
        self.tag = tag  # the caller's (the simulation keeps the request's origin region here)
        self.finished = 0.0  # model time it left the server; 0 while queued or running


# Quantities the model can keep a histogram of (the engines pick their buckets):
QUANTITIES = (
    "queue_time",  # admitted - arrival
    "ttft",  # first token - arrival
    "e2e",  # finished - arrival
    "inference_time",  # finished - admitted
    "prefill_time",  # first token - admitted
    "decode_time",  # finished - first token
    "tpot",  # mean seconds per output token after the first
    "prompt_tokens",
    "output_tokens",
    "max_new_tokens",
    "batch_next_size",  # requests admitted per prefill
    "prefill_forward",  # seconds per prefill batch
    "decode_forward",  # seconds per decode step
)


class ServerModel:
    """One inference server; time is virtual and only moves through advance_to/arrive."""

    def __init__(self, config: ModelConfig, rng: random.Random, histograms: dict | None = None, keep_log: bool = False):
        unknown = set(histograms or ()) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"unknown histogram quantities: {', '.join(sorted(unknown))}")
        self.config = config
        self._rng = rng
        self._max_batch = config.max_batch_size
        self._budget = config.kv_cache_tokens
        self._step0 = config.decode_seconds
        self._step1 = config.decode_seconds_per_request
        # Faults (exporter.sim.faults sets these): speed scales every forward pass, a stalled
        # server accepts work but makes no progress, a down one refuses connections, and
        # leaked KV tokens are held without any request owning them.
        self.speed = 1.0
        self.stalled = False
        self.down = False
        self.kv_leaked = 0
        self.unreachable = 0  # requests refused while down, or dropped by the crash
        self.now = 0.0
        self.waiting: deque[Request] = deque()
        self._running: list = []  # heap of (finish step, seq, Request)
        self._prefilling: list[Request] = []
        self._prefill_end: float | None = None
        self._seq = 0
        self.g = 0.0  # decode steps taken since start (fractional inside a step)
        self._kv_reserved = 0
        self._sum_prompt = 0  # over running requests
        self._sum_g_start = 0.0
        # Counters.
        self.arrived = 0  # accepted into the queue (since the last restart, as the server counts)
        self.accepted_total = 0  # accepted into the queue over the whole run
        self.refused = 0  # turned away by max_concurrent_requests
        self.admitted = 0
        self.completed = 0
        self.finished_length = 0  # hit max_new_tokens
        self.prompt_tokens_total = 0
        self.output_tokens_done = 0  # tokens of finished requests
        self.prefill_batches = 0
        self.prefill_seconds_total = 0.0
        self.decode_seconds_total = 0.0
        # Time integrals, for Little's law checks and averages.
        self.area_queue = 0.0
        self.area_system = 0.0
        self.hist = {name: Histogram(bounds) for name, bounds in (histograms or {}).items()}
        self._h = {name: self.hist.get(name) for name in QUANTITIES}
        # (arrival, queue wait, ttft, e2e, tag) per finished request
        self.log: list | None = [] if keep_log else None

    # ---- reading -------------------------------------------------------------

    @property
    def queue_size(self) -> int:
        return len(self.waiting)

    @property
    def running(self) -> int:
        return len(self._running) + len(self._prefilling)

    @property
    def decoding(self) -> int:
        """Requests in the decode phase (the running batch minus any being prefilled)."""
        return len(self._running)

    @property
    def in_system(self) -> int:
        return len(self.waiting) + len(self._running) + len(self._prefilling)

    @property
    def kv_reserved_tokens(self) -> int:
        return self._kv_reserved

    @property
    def kv_used_tokens(self) -> float:
        # Prompt plus tokens generated so far, for every request holding cache.
        n = len(self._running)
        used = self._sum_prompt + n * (1.0 + self.g) - self._sum_g_start
        used += sum(r.prompt for r in self._prefilling)
        return min(max(used, 0.0), float(self._kv_reserved))

    @property
    def kv_usage(self) -> float:
        return min(1.0, (self.kv_used_tokens + self.kv_leaked) / self._budget)

    @property
    def generated_tokens_total(self) -> float:
        """Output tokens produced so far, finished requests and running ones alike."""
        n = len(self._running)
        return self.output_tokens_done + n * (1.0 + self.g) - self._sum_g_start

    @property
    def step_seconds(self) -> float:
        return self._step0 + self._step1 * len(self._running)

    # ---- moving time ---------------------------------------------------------

    def arrive(self, t: float, prompt: int | None = None, output: int | None = None, tag=None) -> Request | None:
        """A request arrives at time t (>= now): queued, admitted if there is room, or
        refused (None) when the server already holds max_concurrent_requests.

        Its lengths are drawn from the config unless given (the simulation draws them at
        the gateway, so two runs with different rules serve the very same requests)."""
        self.advance_to(t)
        cfg = self.config
        if self.down:
            self.unreachable += 1
            return None
        if prompt is None:
            prompt = cfg.prompt_tokens.draw(self._rng)
        if output is None:
            output = cfg.output_tokens.draw(self._rng)
        limit = cfg.max_concurrent_requests
        if limit is not None and len(self.waiting) + len(self._running) + len(self._prefilling) >= limit:
            self.refused += 1
            return None
        # Clamped to this server's limits, as a server rejects or truncates what it cannot hold.
        req = Request(t, min(prompt, cfg.prompt_tokens.high), min(output, cfg.output_tokens.high), tag)
        self.waiting.append(req)
        self.arrived += 1
        self.accepted_total += 1
        if self._prefill_end is None and not self.stalled:
            self._admit()
        return req

    def advance_to(self, t: float) -> None:
        if t <= self.now:
            return
        if self.stalled or self.down:
            self._tick(t)
            return
        running = self._running
        while True:
            end = self._prefill_end
            if end is not None:
                if end > t:
                    self._tick(t)
                    return
                self._tick(end)
                self._end_prefill()
                self._admit()
                continue
            if not running:
                self._tick(t)
                return
            step = self._step0 + self._step1 * len(running)
            target = running[0][0]
            done_at = self.now + (target - self.g) * step
            if done_at > t:
                self._decode(t, (t - self.now) / step, step)
                return
            self._decode(done_at, max(target - self.g, 0.0), step)
            self.g = max(self.g, target)
            self._complete_due()
            self._admit()

    def _tick(self, t: float) -> None:
        dt = t - self.now
        if dt > 0:
            q = len(self.waiting)
            self.area_queue += q * dt
            self.area_system += (q + len(self._running) + len(self._prefilling)) * dt
        self.now = t

    def _decode(self, t: float, steps: float, step: float) -> None:
        h = self._h["decode_forward"]
        if h is not None:
            whole = int(self.g + steps + _EPS) - int(self.g + _EPS)
            if whole > 0:
                h.observe(step, whole)
        self.decode_seconds_total += t - self.now
        self.g += steps
        self._tick(t)

    def _admit(self) -> None:
        if self._prefill_end is not None or not self.waiting:
            return
        slots = self._max_batch - len(self._running)
        budget = self._budget - self._kv_reserved - self.kv_leaked
        batch = []
        waiting = self.waiting
        while waiting and slots > 0:
            head = waiting[0]
            need = head.prompt + head.output
            if need > budget:
                break  # FIFO: the head waits for room, nobody overtakes it
            waiting.popleft()
            batch.append(head)
            slots -= 1
            budget -= need
        if not batch:
            return
        now = self.now
        hq = self._h["queue_time"]
        prompt = 0
        for r in batch:
            r.admitted = now
            prompt += r.prompt
            self._kv_reserved += r.prompt + r.output
            if hq is not None:
                hq.observe(now - r.arrival)
        self.admitted += len(batch)
        cfg = self.config
        duration = (cfg.prefill_seconds + cfg.prefill_seconds_per_token * prompt) / self.speed
        self._prefilling = batch
        self._prefill_end = now + duration
        self.prefill_batches += 1
        self.prefill_seconds_total += duration
        h = self._h["batch_next_size"]
        if h is not None:
            h.observe(len(batch))
        h = self._h["prefill_forward"]
        if h is not None:
            h.observe(duration)

    def _end_prefill(self) -> None:
        now, g = self.now, self.g
        batch, self._prefilling, self._prefill_end = self._prefilling, [], None
        h = self._h
        for r in batch:
            r.first_token = now
            r.g_start = g
            self.prompt_tokens_total += r.prompt
            if h["ttft"] is not None:
                h["ttft"].observe(now - r.arrival)
            if h["prefill_time"] is not None:
                h["prefill_time"].observe(now - r.admitted)
            if r.output <= 1:
                self._finish(r)
                continue
            self._seq += 1
            heapq.heappush(self._running, (g + (r.output - 1), self._seq, r))
            self._sum_prompt += r.prompt
            self._sum_g_start += g

    def _complete_due(self) -> None:
        running = self._running
        limit = self.g + _EPS
        while running and running[0][0] <= limit:
            r = heapq.heappop(running)[2]
            self._sum_prompt -= r.prompt
            self._sum_g_start -= r.g_start
            self._finish(r)
        if not running:
            # Keep the float sums from drifting over long runs.
            self._sum_g_start = 0.0

    def _finish(self, r: Request) -> None:
        now = self.now
        r.finished = now
        self._kv_reserved -= r.prompt + r.output
        self.completed += 1
        self.output_tokens_done += r.output
        if r.output >= self.config.max_new_tokens:
            self.finished_length += 1
        h = self._h
        e2e = now - r.arrival
        if h["e2e"] is not None:
            h["e2e"].observe(e2e)
        if h["inference_time"] is not None:
            h["inference_time"].observe(now - r.admitted)
        if h["decode_time"] is not None:
            h["decode_time"].observe(now - r.first_token)
        if h["tpot"] is not None and r.output > 1:
            h["tpot"].observe((now - r.first_token) / (r.output - 1))
        if h["prompt_tokens"] is not None:
            h["prompt_tokens"].observe(r.prompt)
        if h["output_tokens"] is not None:
            h["output_tokens"].observe(r.output)
        if h["max_new_tokens"] is not None:
            h["max_new_tokens"].observe(self.config.max_new_tokens)
        if self.log is not None:
            self.log.append((r.arrival, r.admitted - r.arrival, r.first_token - r.arrival, e2e, r.tag))

    def in_flight(self) -> list:
        """Requests accepted and not finished: queued, being prefilled, decoding."""
        return list(self.waiting) + list(self._prefilling) + [entry[2] for entry in self._running]

    def set_speed(self, factor: float) -> None:
        """Every forward pass from now on takes 1/factor as long (a throttled GPU)."""
        self.speed = factor
        self._step0 = self.config.decode_seconds / factor
        self._step1 = self.config.decode_seconds_per_request / factor

    def resume(self, paused_for: float = 0.0) -> None:
        """Work may be admitted again (after a stall or a freed KV leak); a prefill that the
        stall interrupted finishes `paused_for` later than planned."""
        if self._prefill_end is not None:
            self._prefill_end += paused_for
        if self._prefill_end is None and not self.stalled and not self.down:
            self._admit()

    def crash(self) -> int:
        """The process dies: every queued and running request is lost; returns how many."""
        lost = len(self.waiting) + len(self._running) + len(self._prefilling)
        self.waiting.clear()
        self._running.clear()
        self._prefilling = []
        self._prefill_end = None
        self._kv_reserved = 0
        self._sum_prompt = 0
        self._sum_g_start = 0.0
        self.kv_leaked = 0
        self.unreachable += lost
        self.down = True
        return lost

    def restart(self) -> None:
        """A fresh process: counters and histograms start from zero, as a restarted server's do."""
        self.down = False
        self.g = 0.0
        for name in ("arrived", "refused", "admitted", "completed", "finished_length", "prompt_tokens_total"):
            setattr(self, name, 0)
        self.output_tokens_done = 0
        self.prefill_batches = 0
        self.prefill_seconds_total = 0.0
        self.decode_seconds_total = 0.0
        self.hist = {name: Histogram(h.bounds) for name, h in self.hist.items()}
        self._h = {name: self.hist.get(name) for name in QUANTITIES}

    def state(self) -> dict:
        return {
            "time": round(self.now, 3),
            "queue": self.queue_size,
            "running": self.running,
            "kv_usage": round(self.kv_usage, 4),
            "arrived": self.arrived,
            "refused": self.refused,
            "completed": self.completed,
        }
