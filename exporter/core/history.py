"""Bounded store of recent samples per series, fed one scrape at a time.

The PromQL evaluator reads it: instant selectors take the newest sample within the
lookback window, range selectors take every sample inside the range. Staleness follows
Prometheus: a series missing from a scrape gets a marker at that scrape's time and drops
out of instant selectors at once instead of lingering for the lookback delta.

Recording is the per-second hot path of the sidecar and of the capacity simulation, so
the common case (the same series as last time, one new sample each, one old sample
falling out of retention) costs a few list operations per series and no set arithmetic.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from operator import itemgetter

from exporter.promql.numeric import EPS, STALE

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


class History:
    """Bounded store of recent samples per series, fed one scrape at a time.

    Series scraped in every recorded scrape have the same sample times, so they share one
    list of them (`_times`, the times of the scrapes within retention): recording appends
    the timestamp once, and range functions find a window once for all of them. A series
    that misses a scrape gets its own copy, and shares again once its times match."""

    def __init__(self, retention_seconds: float, max_series: int = 20_000):
        if not retention_seconds > 0:
            raise ValueError(f"retention must be positive, got {retention_seconds!r}")
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series!r}")
        self.retention_seconds = float(retention_seconds)
        self.max_series = int(max_series)
        self._series: dict[Labels, Series] = {}
        self._by_name: dict[str, dict[Labels, Series]] = {}
        self._last_timestamp: float | None = None
        self._times: list[float] = []  # the recorded scrapes' times, shared by most series
        self._live: list[Series] = []  # the series of the latest scrape, in its order
        self._loners: list[Series] = []  # live series with times of their own
        self._gone: dict[Labels, Series] = {}  # recorded series missing from the latest scrape
        self._scrape = 1  # numbers the recorded scrapes; Series._seen holds the last one seen
        # The labels of the latest scrape, as given: a scrape with the same labels in the
        # same order (the usual case) maps sample i to self._live[i] without a lookup.
        self._raw: list[Labels] = []
        self._clean = False  # the latest scrape had no duplicate and no refused series
        # Bumped whenever a series appears or disappears, so evaluators can cache
        # which series a selector matches until the set changes.
        self.generation = 0
        self.selector_cache: dict = {}

    @property
    def series_count(self) -> int:
        return len(self._series)

    @property
    def sample_count(self) -> int:
        return sum(len(series.values) for series in self._series.values())

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
        if not isinstance(samples, list):
            samples = list(samples)
        raw = list(map(_LABELS, samples))
        self._scrape += 1
        if self._clean and raw == self._raw:
            # The same series as last time, in the same order: nothing to look up.
            live, values, duplicates, missing, dropped = self._live, map(_VALUE, samples), (), (), 0
        else:
            live, values, duplicates, missing, dropped = self._resolve(raw, samples)
        times = self._times
        same_instant = bool(times) and times[-1] == timestamp
        k = 0
        if not same_instant:
            times.append(timestamp)
            if times[0] < cutoff:
                k = min(bisect_left(times, cutoff), len(times) - 1)
                del times[:k]
        for series, value in zip(live, values):
            value = float(value)
            if series.times is not times:
                self._record_alone(series, timestamp, value, cutoff)
                continue
            if same_instant:
                series._replace_last(value)  # recorded at this instant before: a re-scrape
                continue
            stored = series.values
            stored.append(value)
            if value < series._last_real:
                series.resets.append(series.dropped + len(stored) - 1)
            series._last_real = value
            if k:
                if series.stale or series.resets:
                    series._forget(k)
                else:
                    del stored[:k]
                    series.dropped += k
        for series, value in duplicates:
            series._replace_last(float(value))  # the same series twice in one scrape: the later wins
        if missing:
            self._mark_missing(timestamp, missing)
        if self._loners:
            self._share_times()
        if self._gone:
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
        if series.times is self._times:
            series.times = list(series.times)
            self._loners.append(series)
        for t, value in samples:
            if value is None:
                continue
            t = float(t)
            if series.times and t < series.times[-1]:
                raise ValueError(f"sample at {t} is older than the newest one of {_show(labels)}")
            series._append(t, None if value is STALE else float(value))  # type: ignore[arg-type]

    def clear(self) -> None:
        self._series.clear()
        self._by_name.clear()
        self._times = []
        self._live = []
        self._loners = []
        self._gone.clear()
        self._raw = []
        self._clean = False
        self._last_timestamp = None
        self._bump()

    def series(self) -> Iterable[Series]:
        return self._series.values()

    def series_named(self, name: str) -> Iterable[Series]:
        found = self._by_name.get(name)
        return found.values() if found else ()

    def _resolve(self, raw: list, samples: list):
        """Map a scrape whose series differ from the previous one's: look each up, and
        find the duplicates, the refused (over max_series) and the missing series."""
        scrape = self._scrape
        previous = scrape - 1
        before = self._live
        for old in before:
            old._seen = previous
        live, values, duplicates = [], [], []
        dropped = 0
        returned = False
        for labels, (_, value) in zip(raw, samples):
            series = self._lookup(labels)
            if series is None:
                dropped += 1
            elif series._seen == scrape:
                duplicates.append((series, value))
            else:
                returned = returned or series._seen != previous
                series._seen = scrape
                live.append(series)
                values.append(value)
        missing = []
        if returned or len(live) != len(before):
            missing = [series for series in before if series._seen != scrape]
            for series in missing:
                if series.times is self._times:
                    series.times = list(series.times)  # before this scrape's time is appended
            if self._gone:
                for series in live:
                    self._gone.pop(series.labels, None)
        self._live = live
        self._loners = [series for series in live if series.times is not self._times]
        self._raw = raw
        self._clean = not duplicates and not dropped
        return live, values, duplicates, missing, dropped

    def _record_alone(self, series: Series, timestamp: float, value: float, cutoff: float) -> None:
        times = series.times
        if times and times[-1] == timestamp:
            series._replace_last(value)
        else:
            series._append(timestamp, value)
        if times[0] < cutoff:
            k = min(bisect_left(times, cutoff), len(times) - 1)
            if k > 0:
                series._drop(k)

    def _share_times(self) -> None:
        # A series scraped every time for a whole retention period has exactly the scrape
        # times: from then on it shares them.
        times = self._times
        alone = []
        for series in self._loners:
            own = series.times
            if len(own) == len(times) and own[-1] == times[-1] and own[0] == times[0] and own == times:
                series.times = times
            else:
                alone.append(series)
        self._loners = alone

    def _lookup(self, labels: Labels) -> Series | None:
        """The series for these labels, created if new; None when over max_series."""
        labels = _normalise(labels)
        series = self._series.get(labels)
        if series is None:
            if len(self._series) >= self.max_series:
                return None
            series = self._add(labels)
        return series

    def _mark_missing(self, timestamp: float, missing: list[Series]) -> None:
        for series in missing:
            if series.values[-1] is not None:
                series._append(timestamp, None)
            self._gone[series.labels] = series

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
        for labels, series in self._gone.items():
            if series.times[0] >= cutoff:
                continue
            series._drop_before(cutoff, keep_last=False)
            if not series.times:
                gone.append(labels)
        for labels in gone:
            series = self._gone.pop(labels)
            del self._series[labels]
            named = self._by_name[series.name]
            del named[labels]
            if not named:
                del self._by_name[series.name]
        if gone:
            self._bump()

    def _bump(self) -> None:
        self.generation += 1
        self.selector_cache.clear()


_LABELS = itemgetter(0)
_VALUE = itemgetter(1)


def _normalise(labels: Labels) -> Labels:
    # Prometheus treats an empty label value as no label at all.
    for _, value in labels:
        if not value:
            return tuple(p for p in labels if p[1])
    return labels


def _show(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
