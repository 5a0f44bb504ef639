"""Bounded store of recent samples per series, fed one scrape at a time.

The PromQL evaluator reads it: instant selectors take the newest sample within the
lookback window, range selectors take every sample inside the range. Staleness follows
Prometheus: a series missing from a scrape gets a marker at that scrape's time and drops
out of instant selectors at once instead of lingering for the lookback delta.

Recording is the per-second hot path of the sidecar and of the capacity simulation, so
the common case (the same series as last time, one new sample each, one old sample
falling out of retention) costs a few list operations per series and no set arithmetic.
"""

from bisect import bisect_left
from collections.abc import Iterable
from operator import itemgetter

from exporter.core.series import Labels, Series
from exporter.promql.numeric import STALE

__all__ = ["STALE", "History", "Labels", "Series"]


class History:
    """Bounded store of recent samples per series, fed one scrape at a time.

    Series scraped in every recorded scrape have the same sample times, so they share one
    list of them (`_times`, the times of the scrapes within retention): recording appends
    the timestamp once, and range functions find a window once for all of them. A series
    that misses a scrape gets its own copy, and shares again once its times match."""

    def __init__(self, retention_seconds: float, max_series: int = 20_000, max_label_bytes: int = 16 << 20):
        if not retention_seconds > 0:
            raise ValueError(f"retention must be positive, got {retention_seconds!r}")
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series!r}")
        self.retention_seconds = float(retention_seconds)
        self.max_series = int(max_series)
        # Label text of the series held, bounded too: a few series with huge labels cost as
        # much memory as many small ones.
        self.max_label_bytes = int(max_label_bytes)
        self.label_bytes = 0
        self.evicted = 0  # series forgotten early, stalest first, to make room for new ones
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
        self.label_bytes = 0
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
        find the duplicates, the refused (over the caps) and the missing series.

        Known series are looked up first and new ones created after, so that a new series
        can take the place of one that went missing in this very scrape: a page within the
        caps is always stored whole, however much its label values churn."""
        scrape = self._scrape
        previous = scrape - 1
        before = self._live
        for series in before:
            series._seen = previous
        slots: list = []  # per sample: its Series, or the normalised labels of a new one
        returned = False
        for labels in raw:
            labels = _normalise(labels)
            known = self._series.get(labels)
            if known is None:
                slots.append(labels)
            elif known._seen == scrape:
                slots.append(None)  # a duplicate, sorted out below
            else:
                returned = returned or known._seen != previous
                known._seen = scrape
                slots.append(known)
        missing = [series for series in before if series._seen != scrape]
        for series in missing:
            if series.times is self._times:
                series.times = list(series.times)  # before this scrape's time is appended
        live, values, duplicates = [], [], []
        dropped = 0
        for slot, labels, (_, value) in zip(slots, raw, samples):
            if slot is None or type(slot) is tuple:
                found = self._series.get(_normalise(labels))
                if found is not None and found._seen == scrape:
                    duplicates.append((found, value))
                    continue
                created = self._create(slot, missing) if slot is not None else None
                if created is None:
                    dropped += 1
                    continue
                created._seen = scrape
                slot = created
            live.append(slot)
            values.append(value)
        if returned and self._gone:
            for series in live:
                self._gone.pop(series.labels, None)
        self._live = live
        self._loners = [series for series in live if series.times is not self._times]
        self._raw = raw
        self._clean = not duplicates and not dropped
        return live, values, duplicates, missing, dropped

    def _create(self, labels: Labels, missing: list) -> Series | None:
        """A new series, after evicting what must go to make room; None if it cannot fit."""
        cost = _label_cost(labels)
        if not self._fits(cost) and not self._evict_for(cost, missing):
            return None
        return self._add(labels)

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

    def _fits(self, cost: int) -> bool:
        return len(self._series) < self.max_series and self.label_bytes + cost <= self.max_label_bytes

    def _evict_for(self, cost: int, missing: list) -> bool:
        # Series churn (label values that change every scrape) would otherwise fill the cap
        # with series nobody scrapes any more and refuse the one a rule needs: forget the
        # series that went missing longest ago first (_gone is in the order they went
        # missing), then those missing from this very scrape. Scraped ones are never evicted.
        for labels in list(self._gone):
            if self._fits(cost):
                return True
            if self._gone[labels]._seen != self._scrape:
                del self._gone[labels]
                self._forget(labels)
                self.evicted += 1
        while missing and not self._fits(cost):
            self._forget(missing.pop(0).labels)
            self.evicted += 1
        return self._fits(cost)

    def _mark_missing(self, timestamp: float, missing: list[Series]) -> None:
        for series in missing:
            if series.values[-1] is not None:
                series._append(timestamp, None)
            self._gone[series.labels] = series

    def _add(self, labels: Labels) -> Series:
        series = Series(labels)
        self.label_bytes += _label_cost(labels)
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
            del self._gone[labels]
            self._forget(labels)

    def _forget(self, labels: Labels) -> None:
        series = self._series.pop(labels)
        self.label_bytes -= _label_cost(labels)
        named = self._by_name[series.name]
        del named[labels]
        if not named:
            del self._by_name[series.name]
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


_SERIES_OVERHEAD_BYTES = 400  # the Series object, its label dict and tuples, beside the text


def _label_cost(labels: Labels) -> int:
    return _SERIES_OVERHEAD_BYTES + sum(len(k) + len(v) for k, v in labels)


def _show(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
