"""histogram_quantile over classic histograms: one series per bucket, bound in `le`."""

import math
from bisect import bisect_left
from operator import eq, itemgetter

from . import labels as L
from .numeric import div, parse_go_float

_LE = "le"
_DROP = frozenset((L.NAME, _LE))
_BOUND = itemgetter(0)
_LABELS = itemgetter(0)
_VALUE = itemgetter(1)

# What each label set means to histogram_quantile: (group key, output labels, bucket bound),
# or None for a series without a valid `le`. The same buckets come every evaluation, so
# their `le` strings are parsed once; the cap keeps label churn from growing it forever.
_PARSED: dict = {}
_PARSED_LIMIT = 16384


class Plan:
    """How the label sets of histogram_quantile's input fall into histograms and buckets.

    A rule sees the same buckets in the same order every cycle, so the grouping and the
    order of the bounds are worked out once and kept while the input labels repeat."""

    __slots__ = ("_kept",)

    def __init__(self):
        self._kept: tuple | None = None

    def groups(self, labels: list) -> list:
        """[(output labels, sorted bounds, input index of each bound, any bound repeated)]"""
        kept = self._kept
        if kept is not None and kept[0] == labels:
            return kept[1]
        groups: dict[tuple, tuple[tuple, list]] = {}
        parsed = _PARSED
        for i, labels_ in enumerate(labels):
            found = parsed.get(labels_, False)
            if found is False:
                found = _parse(labels_)
            if found is None:
                continue  # no bucket label or a malformed one: Prometheus skips the series
            key, out_labels, bound = found
            group = groups.get(key)
            if group is None:
                groups[key] = group = (out_labels, [])
            group[1].append((bound, i))
        plan = []
        for out_labels, members in groups.values():
            members.sort(key=_BOUND)  # stable, as the sort of (bound, count) pairs it replaces
            bounds = [b for b, _ in members]
            plan.append((out_labels, bounds, [i for _, i in members], any(map(eq, bounds[1:], bounds[:-1]))))
        self._kept = (labels, plan)  # one assignment: a concurrent reader sees old or new
        return plan


def histogram_quantile(q: float, vector: list, plan: Plan | None = None) -> list:
    groups = (plan or Plan()).groups(list(map(_LABELS, vector)))
    counts = list(map(_VALUE, vector))
    out = []
    for out_labels, bounds, members, repeated in groups:
        mine = [counts[i] for i in members]
        if repeated:
            value = bucket_quantile(q, list(zip(bounds, mine)))
        else:
            value = _sorted_quantile(q, bounds, mine)
        out.append((out_labels, value))
    return out


def _parse(labels: tuple):
    try:
        bound = parse_go_float(L.get(labels, _LE))
    except ValueError:
        found = None
    else:
        # Buckets group by every label but `le`, including the name, so two histograms
        # with different names stay apart (and then collide, as in Prometheus).
        key = tuple(p for p in labels if p[0] != _LE)
        found = (key, tuple(p for p in labels if p[0] not in _DROP), bound)
    if len(_PARSED) >= _PARSED_LIMIT:
        _PARSED.clear()
    _PARSED[labels] = found
    return found


def bucket_quantile(q: float, buckets: list) -> float:
    """Prometheus' bucketQuantile: linear interpolation inside the bucket holding the rank."""
    buckets = sorted(buckets, key=_BOUND)
    bounds = [b for b, _ in buckets]
    if any(map(eq, bounds[1:], bounds[:-1])):
        buckets = _coalesce(buckets)
        bounds = [b for b, _ in buckets]
    return _sorted_quantile(q, bounds, [c for _, c in buckets])


def _sorted_quantile(q: float, bounds: list, counts: list) -> float:
    """bucketQuantile over bounds sorted and distinct."""
    if q != q:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return math.nan
    counts, has_nan = _fix_counts(counts, 1e-12)
    if len(bounds) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0:  # a NaN total goes on: its rank is NaN and lands in the top bucket
        return math.nan
    rank = q * observations
    last = len(counts) - 1
    if has_nan or rank != rank:  # (rank is NaN for q = 0 with infinite observations)
        b = _go_search(counts, rank, last)
    else:
        b = bisect_left(counts, rank, 0, last)  # counts are non-decreasing by now
    if b == last:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0
    end = bounds[b]
    count = counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    # Go's division: an empty bucket holding rank 0 (q = 0) gives NaN, not an exception.
    return start + (end - start) * div(rank, count)


def _go_search(counts: list, rank: float, n: int) -> int:
    """Go's sort.Search(n, counts[i] >= rank), step for step.

    With a NaN count the predicate is not monotonic, so the bucket Prometheus picks is the one
    its binary search lands on, not the first bucket at or past the rank."""
    low, high = 0, n
    while low < high:
        middle = (low + high) >> 1
        if not counts[middle] >= rank:
            low = middle + 1
        else:
            high = middle
    return low


def _coalesce(buckets: list) -> list:
    out = [list(buckets[0])]
    for bound, count in buckets[1:]:
        if bound == out[-1][0]:
            out[-1][1] += count
        else:
            out.append([bound, count])
    return [(b, c) for b, c in out]


def _fix_counts(counts: list, tolerance: float) -> tuple[list, bool]:
    """Prometheus' two clean-ups of cumulative counts, in one pass: (fixed counts, whether a
    NaN is left).

    First, float noise from rate() can make neighbours differ by a hair: treat that as
    equal. Then buckets are cumulative, so a decrease means inconsistent data: take the
    envelope. The first step compares with the previous count as the first step left it,
    never as the second did, exactly as two separate passes would."""
    prev = top = counts[0]
    fixed = [prev]
    has_nan = prev != prev
    for curr in counts[1:]:
        delta = curr - prev
        if delta:  # not zero (NaN included)
            if delta < 0:
                delta = -delta
            if curr != 0 and delta / curr <= tolerance:
                curr = prev
            else:
                prev = curr
        if curr > top:
            top = curr
        elif curr < top:
            curr = top
        elif curr != curr:
            has_nan = True
        fixed.append(curr)
    return fixed, has_nan
