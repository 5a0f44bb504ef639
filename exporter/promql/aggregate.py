"""Aggregation operators over one instant vector, with by/without grouping."""

import math

from . import labels as L
from .errors import PromQLError
from .numeric import format_value, kahan_inc, quantile

SUPPORTED = (
    "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar",
    "topk", "bottomk", "quantile", "count_values",
)


class Grouping:
    __slots__ = ("names", "without", "_drop", "_keep")

    def __init__(self, names: list[str], without: bool):
        self.names = tuple(sorted(set(names)))
        self.without = without
        self._drop = frozenset(self.names) | {L.NAME}
        self._keep = frozenset(self.names)

    def key(self, labels: tuple) -> tuple:
        """The output label set of a group, which doubles as its identity."""
        if self.without:
            return tuple(p for p in labels if p[0] not in self._drop)
        return tuple(p for p in labels if p[0] in self._keep)


def aggregate(op: str, vector: list, grouping: Grouping, param) -> list:
    if op in ("topk", "bottomk"):
        return _top(op, vector, grouping, param)
    if op == "count_values":
        return _count_values(vector, grouping, param)
    groups: dict = {}
    for labels, v in vector:
        key = grouping.key(labels)
        g = groups.get(key)
        if g is None:
            groups[key] = g = _Group(op, v)
        else:
            g.add(op, v)
    q = param if op == "quantile" else None
    return [(key, g.result(op, q)) for key, g in groups.items()]


class _Group:
    __slots__ = ("value", "c", "mean", "count", "incremental", "values")

    def __init__(self, op: str, v: float):
        self.value = v
        self.c = 0.0
        self.mean = v
        self.count = 1.0
        self.incremental = False
        self.values = None
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
        # NaN sorts last for both, as Prometheus' heaps treat it as the weakest value.
        if op == "topk":
            ranked = sorted(members, key=lambda s: (s[1] != s[1], -s[1] if s[1] == s[1] else 0.0))
        else:
            ranked = sorted(members, key=lambda s: (s[1] != s[1], s[1] if s[1] == s[1] else 0.0))
        out.extend(ranked[:k])
    return out


def _count_values(vector: list, grouping: Grouping, label: str) -> list:
    counts: dict = {}
    for labels, v in vector:
        with_value = L.with_label(labels, label, format_value(v))
        key = grouping.key(with_value)
        counts[key] = counts.get(key, 0) + 1
    return [(key, float(n)) for key, n in counts.items()]
