"""What one simulated inference server is: its token-length distributions, its limits and
speeds (ModelConfig), and the latency histograms it keeps. The queueing model that runs on
them is exporter.sim.model."""

import math
import random
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate


@dataclass(frozen=True)
class Lengths:
    """A token-length distribution, clamped to [low, high]."""

    kind: str = "lognormal"  # fixed | uniform | exponential | lognormal
    mean: float = 128.0
    sigma: float = 0.6  # lognormal shape
    low: int = 1
    high: int = 512

    def __post_init__(self):
        if self.kind not in ("fixed", "uniform", "exponential", "lognormal"):
            raise ValueError(f"kind must be fixed, uniform, exponential or lognormal, got {self.kind!r}")
        if not (1 <= self.low <= self.high):
            raise ValueError(f"need 1 <= low <= high, got low={self.low!r} high={self.high!r}")
        if not (self.mean > 0 and math.isfinite(self.mean)):
            raise ValueError(f"mean must be a positive number, got {self.mean!r}")
        if self.sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {self.sigma!r}")

    def draw(self, rng: random.Random) -> int:
        kind = self.kind
        if kind == "fixed":
            value = self.mean
        elif kind == "uniform":
            return rng.randint(self.low, self.high)
        elif kind == "exponential":
            value = rng.expovariate(1.0 / self.mean)
        else:
            # Parametrised by the mean so that changing sigma keeps the load the same.
            value = rng.lognormvariate(math.log(self.mean) - self.sigma**2 / 2, self.sigma)
        n = int(round(value))
        return self.low if n < self.low else self.high if n > self.high else n


@dataclass(frozen=True)
class ModelConfig:
    max_batch_size: int = 16
    kv_cache_tokens: int = 16384
    prefill_seconds: float = 0.015
    prefill_seconds_per_token: float = 0.0001
    decode_seconds: float = 0.03
    decode_seconds_per_request: float = 0.001
    prompt_tokens: Lengths = field(default_factory=lambda: Lengths("lognormal", 220.0, 0.5, 8, 1024))
    output_tokens: Lengths = field(default_factory=lambda: Lengths("lognormal", 120.0, 0.6, 1, 512))
    model_name: str = "meta-llama/Llama-3.1-8B-Instruct"
    # Requests in the server (queued + running) beyond which new ones are refused at once,
    # as TGI's --max-concurrent-requests (default 128) answers 429; None: no limit (vLLM).
    max_concurrent_requests: int | None = None

    def __post_init__(self):
        if self.max_concurrent_requests is not None and self.max_concurrent_requests < 1:
            raise ValueError(f"max_concurrent_requests must be >= 1, got {self.max_concurrent_requests!r}")
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size!r}")
        for name in ("prefill_seconds", "prefill_seconds_per_token", "decode_seconds_per_request"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.decode_seconds > 0:
            raise ValueError(f"decode_seconds must be > 0, got {self.decode_seconds!r}")
        largest = self.prompt_tokens.high + self.output_tokens.high
        if self.kv_cache_tokens < largest:
            # Otherwise the largest request could never be admitted and would block the queue.
            raise ValueError(
                f"kv_cache_tokens must hold the largest request (prompt high + output high = {largest}), "
                f"got {self.kv_cache_tokens!r}"
            )

    @property
    def max_new_tokens(self) -> int:
        return self.output_tokens.high

    def capacity(self) -> float:
        """Rough sustainable request rate (req/s) with a full batch and average lengths."""
        batch = self.max_batch_size
        out = _mean_length(self.output_tokens)
        prompt = _mean_length(self.prompt_tokens)
        per_request = self.kv_cache_tokens / max(prompt + out, 1.0)
        batch = max(1.0, min(float(batch), per_request))
        step = self.decode_seconds + self.decode_seconds_per_request * batch
        decode_rate = batch / (max(out - 1.0, 1.0) * step)  # requests finished per decoding second
        prefill = self.prefill_seconds + self.prefill_seconds_per_token * prompt  # one prefill per request
        return 1.0 / (1.0 / decode_rate + prefill)


def _mean_length(lengths: Lengths) -> float:
    if lengths.kind == "uniform":
        return (lengths.low + lengths.high) / 2
    return min(max(lengths.mean, lengths.low), lengths.high)


class Histogram:
    """Counts per bucket (not cumulative); bounds are the finite `le` values."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds):
        self.bounds = [float(b) for b in bounds]
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times

    def cumulative(self) -> list[int]:
        return list(accumulate(self.counts))
