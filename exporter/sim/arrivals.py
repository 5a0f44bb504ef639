"""Poisson arrivals whose rate follows a profile.

The rate is held constant over fixed cells of virtual time (`cell` seconds, rate
taken at the cell's midpoint), which makes the process exact for that piecewise
rate and makes the arrival times independent of how callers slice time: asking
for (0, 10] at once or in a hundred pieces gives the same arrivals. The fake
server relies on that to be deterministic whatever the scrape timing.
"""

import random

from exporter.sim.profiles import RateFn


class Arrivals:
    def __init__(self, rate: RateFn, rng: random.Random, cell: float = 1.0, start: float = 0.0):
        if not cell > 0:
            raise ValueError(f"cell must be positive, got {cell!r}")
        self._rate_fn = rate
        self._rng = rng
        self._cell_len = float(cell)
        self._start = float(start)
        self._cell = 0
        self._rate = self._cell_rate(0)
        self.now = self._start
        # Unit-rate exponential "distance" to the next arrival, spent at the cell's rate.
        self._budget = rng.expovariate(1.0)

    def _cell_rate(self, index: int) -> float:
        return max(0.0, float(self._rate_fn(self._start + (index + 0.5) * self._cell_len)))

    def rate_now(self) -> float:
        return self._rate

    def take_until(self, t: float) -> list[float]:
        """Arrival times in (now, t], in order; afterwards now == t."""
        out: list[float] = []
        if t <= self.now:
            return out
        rng = self._rng
        cell_len, start = self._cell_len, self._start
        while True:
            cell_end = start + (self._cell + 1) * cell_len
            seg_end = t if t < cell_end else cell_end
            rate = self._rate
            if rate > 0.0:
                at = self.now + self._budget / rate
                if at <= seg_end:
                    self.now = at
                    out.append(at)
                    self._budget = rng.expovariate(1.0)
                    continue
                self._budget -= rate * (seg_end - self.now)
            self.now = seg_end
            if seg_end == cell_end:
                self._cell += 1
                self._rate = self._cell_rate(self._cell)
            if seg_end == t:
                return out
