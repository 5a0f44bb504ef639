"""histogram_quantile over classic histograms: one series per bucket, bound in `le`."""

import math

from . import labels as L
from .numeric import parse_go_float

_LE = "le"
_DROP = frozenset((L.NAME, _LE))


def histogram_quantile(q: float, vector: list) -> list:
    groups: dict = {}
    for labels, count in vector:
        le = L.get(labels, _LE)
        try:
            bound = parse_go_float(le)
        except ValueError:
            continue  # no bucket label or a malformed one: Prometheus skips the series
        # Buckets group by every label but `le`, including the name, so two histograms
        # with different names stay apart (and then collide, as in Prometheus).
        key = tuple(p for p in labels if p[0] != _LE)
        group = groups.get(key)
        if group is None:
            groups[key] = group = (tuple(p for p in labels if p[0] not in _DROP), [])
        group[1].append((bound, count))
    return [(out_labels, bucket_quantile(q, buckets)) for out_labels, buckets in groups.values()]


def bucket_quantile(q: float, buckets: list) -> float:
    """Prometheus' bucketQuantile: linear interpolation inside the bucket holding the rank."""
    if q != q:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    buckets = _coalesce(buckets)
    counts = [c for _, c in buckets]
    _fix_precision(counts, 1e-12)
    _make_monotonic(counts)
    if len(buckets) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0 or observations != observations:
        return math.nan
    rank = q * observations
    b = len(counts) - 1
    for i in range(len(counts) - 1):
        if counts[i] >= rank:
            b = i
            break
    if b == len(counts) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start = 0.0
    end = buckets[b][0]
    count = counts[b]
    if b > 0:
        start = buckets[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def _coalesce(buckets: list) -> list:
    out = [list(buckets[0])]
    for bound, count in buckets[1:]:
        if bound == out[-1][0]:
            out[-1][1] += count
        else:
            out.append([bound, count])
    return [(b, c) for b, c in out]


def _fix_precision(counts: list, tolerance: float) -> None:
    # Float noise from rate() can make neighbours differ by a hair; treat that as equal.
    prev = counts[0]
    for i in range(1, len(counts)):
        curr = counts[i]
        delta = abs(curr - prev)
        if delta == 0:
            continue
        if curr != 0 and delta / curr <= tolerance:
            counts[i] = prev
        else:
            prev = curr


def _make_monotonic(counts: list) -> None:
    # Buckets are cumulative; a decrease means inconsistent data, so take the envelope.
    top = counts[0]
    for i in range(1, len(counts)):
        if counts[i] > top:
            top = counts[i]
        elif counts[i] < top:
            counts[i] = top
