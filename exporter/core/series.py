"""One series' samples in time order, as the History keeps them (a value of None is a
staleness marker), with the reads the PromQL evaluator makes of them."""

from bisect import bisect_left, bisect_right

from exporter.promql.numeric import EPS

Labels = tuple[tuple[str, str], ...]  # sorted by name, INCLUDING ("__name__", metric_name)


_NAME = "__name__"
_NEG_INF = float("-inf")


class Series:
    """Samples of one series in time order; a value of None is a staleness marker.

    `times` may be the list its History shares between the series scraped every time:
    read it, never change it from outside."""

    __slots__ = (
        "labels",
        "label_map",
        "name",
        "labels_without_name",
        "times",
        "values",
        "stale",
        "resets",
        "dropped",
        "_last_real",
        "_seen",
    )

    def __init__(self, labels: Labels):
        self.labels = labels
        self.label_map = dict(labels)
        self.name = self.label_map.get(_NAME, "")
        self.times: list[float] = []
        self.values: list[float | None] = []
        # Functions and arithmetic drop the name; computing it once per series keeps
        # evaluation cheap for rules that do this every second.
        self.labels_without_name: Labels = tuple(p for p in labels if p[0] != _NAME)
        self.stale = 0  # staleness markers held; range reads skip filtering when zero
        # Counter resets, as absolute positions (dropped + index) of a sample lower than the
        # sample before it (staleness markers skipped). rate() reads this to know in O(1)
        # that a window has no reset, which is nearly always the case.
        self.resets: list[int] = []
        self.dropped = 0  # samples ever dropped from the front: turns indexes into positions
        self._last_real = _NEG_INF  # the newest value that is not a staleness marker
        # The History's scrape number when a changed scrape last looked this series up
        # (an unchanged scrape skips the lookups and leaves it).
        self._seen = 0

    def value_at(self, at: float, lookback: float) -> float | None:
        """The newest value in (at - lookback, at], or None if absent or stale."""
        times = self.times
        if not times:
            return None
        if times[-1] <= at + EPS:
            i = len(times) - 1
        else:
            i = bisect_right(times, at + EPS) - 1
            if i < 0:
                return None
        if times[i] <= at - lookback + EPS:
            return None
        return self.values[i]

    def sample_at(self, at: float, lookback: float) -> tuple[float, float] | None:
        """(timestamp, value) of the newest sample in (at - lookback, at], or None."""
        times = self.times
        i = bisect_right(times, at + EPS) - 1
        if i < 0 or times[i] <= at - lookback + EPS:
            return None
        value = self.values[i]
        return None if value is None else (times[i], value)

    def bounds(self, start: float, end: float) -> tuple[int, int]:
        """Indexes [lo, hi) of the samples in (start, end], staleness markers included."""
        times = self.times
        lo = bisect_right(times, start + EPS)
        hi = len(times) if times and times[-1] <= end + EPS else bisect_right(times, end + EPS)
        return lo, hi

    def has_reset(self, lo: int, hi: int) -> bool:
        """Whether a sample in [lo, hi) is lower than the one before it inside that range."""
        resets = self.resets
        if not resets:
            return False
        first, last = self.dropped + lo, self.dropped + hi
        if resets[-1] <= first:
            return False
        k = bisect_right(resets, first)
        return k < len(resets) and resets[k] < last

    def window(self, start: float, end: float) -> tuple[list[float], list]:
        """Times and values of the samples in (start, end], staleness markers left out."""
        lo, hi = self.bounds(start, end)
        ts = self.times[lo:hi]
        vs = self.values[lo:hi]
        if self.stale and None in vs:
            pairs = [(t, v) for t, v in zip(ts, vs) if v is not None]
            ts = [t for t, _ in pairs]
            vs = [v for _, v in pairs]
        return ts, vs

    def _append(self, t: float, value: float | None) -> None:
        if self.times and self.times[-1] == t:
            self._replace_last(value)
            return
        self.times.append(t)
        self.values.append(value)
        if value is None:
            self.stale += 1
            return
        if value < self._last_real:
            self.resets.append(self.dropped + len(self.times) - 1)
        self._last_real = value

    def _replace_last(self, value: float | None) -> None:
        # Two samples at one instant: the later one wins, as a re-scrape would.
        values = self.values
        last = len(values) - 1
        self.stale += (value is None) - (values[last] is None)
        values[last] = value
        position = self.dropped + last
        if self.resets and self.resets[-1] == position:
            self.resets.pop()
        before = next((v for v in reversed(values[:last]) if v is not None), _NEG_INF)
        if value is None:
            self._last_real = before
            return
        if value < before:
            self.resets.append(position)
        self._last_real = value

    def _drop_before(self, cutoff: float, keep_last: bool) -> int:
        k = bisect_left(self.times, cutoff)
        if keep_last:
            k = min(k, len(self.times) - 1)
        if k > 0:
            self._drop(k)
        return k

    def _drop(self, k: int) -> None:
        del self.times[:k]
        self._forget(k)

    def _forget(self, k: int) -> None:
        """Drop the k oldest values (the times are dropped by whoever owns them)."""
        if self.stale:
            self.stale -= self.values[:k].count(None)
        del self.values[:k]
        self.dropped += k
        resets = self.resets
        if resets and resets[0] <= self.dropped:
            # A reset at the new first sample compares with a dropped one: no window sees it.
            del resets[: bisect_right(resets, self.dropped)]
