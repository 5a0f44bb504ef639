"""Bounded store of recent samples per series, fed one scrape at a time.

The PromQL evaluator reads it: instant selectors take the newest sample within the
lookback window, range selectors take every sample inside the range. Staleness follows
Prometheus: a series missing from a scrape gets a marker at that scrape's time and drops
out of instant selectors at once instead of lingering for the lookback delta.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]  # sorted by name, INCLUDING ("__name__", metric_name)


class _Stale:
    """The staleness marker; one instance, compared by identity."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STALE"

    def __reduce__(self):
        return "STALE"


STALE = _Stale()

_NAME = "__name__"

# Window edges are compared with this slack (1 µs) so that a sample exactly on an edge
# lands on the same side as in Prometheus' integer milliseconds, whatever float rounding
# the subtraction `at - range` brings.
EPS = 1e-6


class Series:
    """Samples of one series in time order; a value of None is a staleness marker."""

    __slots__ = ("labels", "label_map", "name", "times", "values", "_no_name", "_stale")

    def __init__(self, labels: Labels):
        self.labels = labels
        self.label_map = dict(labels)
        self.name = self.label_map.get(_NAME, "")
        self.times: list[float] = []
        self.values: list[float | None] = []
        self._no_name: Labels | None = None
        self._stale = 0  # staleness markers held; range reads skip filtering when zero

    @property
    def labels_without_name(self) -> Labels:
        # Functions and arithmetic drop the name; computing it once per series keeps
        # evaluation cheap for rules that do this every second.
        if self._no_name is None:
            self._no_name = tuple(p for p in self.labels if p[0] != _NAME)
        return self._no_name

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

    def window(self, start: float, end: float) -> tuple[list[float], list[float]]:
        """Times and values of the samples in (start, end], staleness markers left out."""
        times = self.times
        lo = bisect_right(times, start + EPS)
        hi = len(times) if times and times[-1] <= end + EPS else bisect_right(times, end + EPS)
        ts = times[lo:hi]
        vs = self.values[lo:hi]
        if self._stale and None in vs:
            pairs = [(t, v) for t, v in zip(ts, vs) if v is not None]
            ts = [t for t, _ in pairs]
            vs = [v for _, v in pairs]
        return ts, vs

    def _append(self, t: float, value: float | None) -> None:
        if self.times and self.times[-1] == t:
            # Two samples at one instant: the later one wins, as a re-scrape would.
            self._stale += (value is None) - (self.values[-1] is None)
            self.values[-1] = value
            return
        self.times.append(t)
        self.values.append(value)
        if value is None:
            self._stale += 1

    def _drop_before(self, cutoff: float, keep_last: bool) -> int:
        k = bisect_left(self.times, cutoff)
        if keep_last:
            k = min(k, len(self.times) - 1)
        if k > 0:
            if self._stale:
                self._stale -= self.values[:k].count(None)
            del self.times[:k]
            del self.values[:k]
        return k


class History:
    """Bounded store of recent samples per series, fed one scrape at a time."""

    def __init__(self, retention_seconds: float, max_series: int = 20_000):
        if not retention_seconds > 0:
            raise ValueError(f"retention must be positive, got {retention_seconds!r}")
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series!r}")
        self.retention_seconds = float(retention_seconds)
        self.max_series = int(max_series)
        self._series: dict[Labels, Series] = {}
        self._by_name: dict[str, dict[Labels, Series]] = {}
        self._live: set[Labels] = set()
        self._gone: set[Labels] = set()  # recorded series missing from the latest scrape
        self._sample_count = 0
        self._last_timestamp: float | None = None
        # Bumped whenever a series appears or disappears, so evaluators can cache
        # which series a selector matches until the set changes.
        self.generation = 0
        self.selector_cache: dict = {}

    @property
    def series_count(self) -> int:
        return len(self._series)

    @property
    def sample_count(self) -> int:
        return self._sample_count

    @property
    def last_timestamp(self) -> float | None:
        return self._last_timestamp

    def record(self, timestamp: float, samples: Iterable[tuple[Labels, float]]) -> int:
        """Store one scrape taken at `timestamp` (seconds, float, monotonically non-decreasing).
        A series present in the previous recorded scrape but absent from this one gets a staleness
        marker at `timestamp` (Prometheus semantics: it vanishes from instant selectors at once).
        Samples older than retention are dropped, but the newest sample of each live series is always
        kept. New series beyond max_series are dropped; returns how many were dropped this call.
        A timestamp older than the previous one (the clock stepped back) clears the history first."""
        timestamp = float(timestamp)
        if self._last_timestamp is not None and timestamp < self._last_timestamp:
            # The wall clock stepped back (NTP, VM resume). Samples "from the future"
            # would hide every new one from instant selectors, so start afresh instead.
            self.clear()
        self._last_timestamp = timestamp
        cutoff = timestamp - self.retention_seconds
        dropped = 0
        seen: set[Labels] = set()
        for labels, value in samples:
            labels = _normalise(labels)
            series = self._series.get(labels)
            if series is None:
                if len(self._series) >= self.max_series:
                    dropped += 1
                    continue
                series = self._add(labels)
            before = len(series.times)
            series._append(timestamp, float(value))
            self._sample_count += len(series.times) - before
            if series.times[0] < cutoff:
                self._sample_count -= series._drop_before(cutoff, keep_last=True)
            seen.add(labels)
        for labels in self._live - seen:
            series = self._series[labels]
            if series.values[-1] is not None:
                before = len(series.times)
                series._append(timestamp, None)
                self._sample_count += len(series.times) - before
            self._gone.add(labels)
        self._gone -= seen
        self._live = seen
        self._expire(cutoff)
        return dropped

    def load_series(self, labels: Labels, samples: Iterable[tuple[float, object]]) -> None:
        """Add samples of one series directly, for tests and rule unit tests.

        Each sample is (timestamp, value) where value is a float, None (no sample at that
        time) or STALE. Samples must come in time order after anything already stored for
        the series. Retention and the series limit are not applied.
        """
        labels = _normalise(tuple(sorted(labels)))
        series = self._series.get(labels) or self._add(labels)
        for t, value in samples:
            if value is None:
                continue
            t = float(t)
            if series.times and t < series.times[-1]:
                raise ValueError(f"sample at {t} is older than the newest one of {_show(labels)}")
            before = len(series.times)
            series._append(t, None if value is STALE else float(value))
            self._sample_count += len(series.times) - before

    def clear(self) -> None:
        self._series.clear()
        self._by_name.clear()
        self._live.clear()
        self._gone.clear()
        self._sample_count = 0
        self._last_timestamp = None
        self._bump()

    def series(self) -> Iterable[Series]:
        return self._series.values()

    def series_named(self, name: str) -> Iterable[Series]:
        found = self._by_name.get(name)
        return found.values() if found else ()

    def _add(self, labels: Labels) -> Series:
        series = Series(labels)
        self._series[labels] = series
        self._by_name.setdefault(series.name, {})[labels] = series
        self._bump()
        return series

    def _expire(self, cutoff: float) -> None:
        # Series that are no longer scraped are kept while range selectors may still see
        # them, then forgotten so that churn in label values cannot grow memory forever.
        gone = []
        for labels in self._gone:
            series = self._series[labels]
            if series.times[0] >= cutoff:
                continue
            self._sample_count -= series._drop_before(cutoff, keep_last=False)
            if not series.times:
                gone.append(labels)
        for labels in gone:
            self._gone.discard(labels)
            series = self._series.pop(labels)
            named = self._by_name[series.name]
            del named[labels]
            if not named:
                del self._by_name[series.name]
        if gone:
            self._bump()

    def _bump(self) -> None:
        self.generation += 1
        self.selector_cache.clear()


def _normalise(labels: Labels) -> Labels:
    # Prometheus treats an empty label value as no label at all.
    for _, value in labels:
        if not value:
            return tuple(p for p in labels if p[1])
    return labels


def _show(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
