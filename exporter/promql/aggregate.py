"""Aggregation operators over one instant vector, with by/without grouping."""

import math
from math import isinf
from operator import itemgetter

from . import labels as L
from .errors import PromQLError
from .numeric import format_value, kahan_inc, quantile

SUPPORTED = (
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
)


# Label sets seen by one grouping, remembered with their group key. Rules see the same
# series every second, so the key is computed once per label set, not per evaluation;
# the cap keeps label churn from growing it without bound.
_KEY_CACHE_LIMIT = 4096


class Grouping:
    __slots__ = ("names", "without", "_drop", "_keep", "keys", "_plan")

    def __init__(self, names: list[str], without: bool):
        self.names = tuple(sorted(set(names)))
        self.without = without
        self._drop = frozenset(self.names) | {L.NAME}
        self._keep = frozenset(self.names)
        self.keys: dict = {}  # labels -> key
        self._plan: tuple | None = None

    def key(self, labels: tuple) -> tuple:
        """The output label set of a group, which doubles as its identity."""
        found = self.keys.get(labels)
        if found is None:
            found = self._key(labels)
            if len(self.keys) >= _KEY_CACHE_LIMIT:
                self.keys.clear()
            self.keys[labels] = found
        return found

    def plan(self, labels: list) -> tuple:
        """(group keys in order of first appearance, group index of each input, whether
        every group has one member) for the input label sets `labels`.

        A rule sees the same series in the same order every cycle, so the last plan is
        kept and reused while the input labels are the same."""
        plan = self._plan
        if plan is not None and plan[0] == labels:
            return plan[1]
        index: dict = {}
        slots = []
        for labels_ in labels:
            k = self.key(labels_)
            slot = index.get(k)
            if slot is None:
                slot = index[k] = len(index)
            slots.append(slot)
        found = (list(index), slots, len(index) == len(slots))
        self._plan = (labels, found)  # one assignment: a concurrent reader sees old or new
        return found

    def _key(self, labels: tuple) -> tuple:
        if self.without:
            return tuple(p for p in labels if p[0] not in self._drop)
        return tuple(p for p in labels if p[0] in self._keep)


_LABELS = itemgetter(0)
_VALUE = itemgetter(1)


def aggregate(op: str, vector: list, grouping: Grouping, param) -> list:
    if op in ("topk", "bottomk"):
        return _top(op, vector, grouping, param)
    if op == "count_values":
        return _count_values(vector, grouping, param)
    if op == "sum" and len(vector) == 1:
        labels, v = vector[0]
        return [(grouping.key(labels), v + 0.0)]  # as _sum computes a group of one
    keys, slots, single = grouping.plan(list(map(_LABELS, vector)))
    if op == "sum":
        return _sum(keys, slots, single, list(map(_VALUE, vector)))
    groups: list = [None] * len(keys)
    for slot, (_, v) in zip(slots, vector):
        g = groups[slot]
        if g is None:
            groups[slot] = _Group(op, v)
        else:
            g.add(op, v)
    q = param if op == "quantile" else None
    return [(k, g.result(op, q)) for k, g in zip(keys, groups)]


def _sum(keys: list, slots: list, single: bool, values: list) -> list:
    """sum, the most common aggregation, with its Kahan-Babuska steps written out."""
    if single:
        # One member per group: its value plus a compensation of 0.0, as below.
        return [(k, v + 0.0) for k, v in zip(keys, values)]
    totals: list = [None] * len(keys)
    compensations = [0.0] * len(keys)
    for slot, v in zip(slots, values):
        total = totals[slot]
        if total is None:
            totals[slot] = v
            continue
        c = compensations[slot]
        t = total + v
        if isinf(t):  # the compensation means nothing next to an infinite sum
            c = 0.0
        elif abs(total) >= abs(v):
            c += (total - t) + v
        else:
            c += (v - t) + total
        totals[slot] = t
        compensations[slot] = c
    return [(k, t + c) for k, t, c in zip(keys, totals, compensations)]


class _Group:
    __slots__ = ("value", "c", "mean", "count", "incremental", "values")

    def __init__(self, op: str, v: float):
        self.value = v
        self.c = 0.0
        self.mean = v
        self.count = 1.0
        self.incremental = False
        self.values: list[float] = []  # quantile only
        if op in ("stddev", "stdvar"):
            self.value = math.nan if (v != v or math.isinf(v)) else 0.0
        elif op == "quantile":
            self.values = [v]
        elif op == "group":
            self.value = 1.0

    def add(self, op: str, f: float) -> None:
        if op == "sum":
            self.value, self.c = kahan_inc(f, self.value, self.c)
        elif op == "avg":
            self.count += 1
            if not self.incremental:
                new_v, new_c = kahan_inc(f, self.value, self.c)
                if not math.isinf(new_v):
                    self.value, self.c = new_v, new_c
                    return
                # The running sum would overflow: continue with an incremental mean.
                self.incremental = True
                self.mean = self.value / (self.count - 1)
                self.c /= self.count - 1
            q = (self.count - 1) / self.count
            self.mean, self.c = kahan_inc(f / self.count, q * self.mean, q * self.c)
        elif op == "max":
            if self.value < f or self.value != self.value:
                self.value = f
        elif op == "min":
            if self.value > f or self.value != self.value:
                self.value = f
        elif op == "count":
            self.count += 1
        elif op in ("stddev", "stdvar"):
            self.count += 1
            delta = f - self.mean
            self.mean += delta / self.count
            self.value += delta * (f - self.mean)
        elif op == "quantile":
            self.values.append(f)

    def result(self, op: str, q) -> float:
        if op == "sum":
            return self.value + self.c
        if op == "avg":
            if self.incremental:
                return self.mean + self.c
            return self.value / self.count + self.c / self.count
        if op == "count":
            return self.count
        if op == "stdvar":
            return self.value / self.count
        if op == "stddev":
            return math.sqrt(self.value / self.count)
        if op == "quantile":
            return quantile(q, self.values)
        return self.value


def _top(op: str, vector: list, grouping: Grouping, k_param: float) -> list:
    if k_param != k_param:
        raise PromQLError("parameter value is nan")
    if k_param < 1:
        return []
    if k_param >= 2**63:
        raise PromQLError(f"scalar value {k_param} overflows int64")
    k = min(int(k_param), len(vector))
    groups: dict = {}
    for sample in vector:
        groups.setdefault(grouping.key(sample[0]), []).append(sample)
    out = []
    for members in groups.values():
        out.extend(top_k(members, k, op == "topk"))
    return out


def top_k(members: list, k: int, largest: bool) -> list:
    """The k samples Prometheus keeps, chosen the way it chooses them among ties.

    Prometheus feeds the group's samples, in input order (for a selector: the order in which
    the series first appeared, as the history keeps them), through a heap of k elements with the
    weakest at the root (NaN is weakest, as its Less says); a sample replaces the root only
    when strictly stronger, and then the heap is repaired with container/heap's Fix. Which of
    several equal values survive depends on that exact sequence, so it is replayed here."""
    if largest:

        def weaker(a: float, b: float) -> bool:
            return a != a or a < b
    else:

        def weaker(a: float, b: float) -> bool:
            return a != a or a > b

    heap: list = []
    for sample in members:
        if len(heap) < k:
            heap.append(sample)
            _heap_up(heap, len(heap) - 1, weaker)
        else:
            root = heap[0][1]
            v = sample[1]
            if (root < v if largest else root > v) or (root != root and v == v):
                heap[0] = sample
                if k > 1:
                    _heap_down(heap, 0, weaker)
    # Strongest first, as Prometheus sorts the heap for output. Equal values keep heap order
    # here, where Go's unstable sort may swap them: the set kept is the same, which is what a
    # rule (and an unordered comparison) sees.
    sign = -1.0 if largest else 1.0
    return sorted(heap, key=lambda s: (True, 0.0) if s[1] != s[1] else (False, sign * s[1]))


def _heap_up(heap: list, j: int, weaker) -> None:
    """container/heap's up()."""
    while True:
        i = (j - 1) // 2
        if i == j or j <= 0 or not weaker(heap[j][1], heap[i][1]):
            break
        heap[i], heap[j] = heap[j], heap[i]
        j = i


def _heap_down(heap: list, i0: int, weaker) -> None:
    """container/heap's down(), as heap.Fix calls it for the root."""
    n = len(heap)
    i = i0
    while True:
        j1 = 2 * i + 1
        if j1 >= n or j1 < 0:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and weaker(heap[j2][1], heap[j1][1]):
            j = j2
        if not weaker(heap[j][1], heap[i][1]):
            break
        heap[i], heap[j] = heap[j], heap[i]
        i = j


def _count_values(vector: list, grouping: Grouping, label: str) -> list:
    counts: dict = {}
    for labels, v in vector:
        with_value = L.with_label(labels, label, format_value(v))
        key = grouping.key(with_value)
        counts[key] = counts.get(key, 0) + 1
    return [(key, float(n)) for key, n in counts.items()]
