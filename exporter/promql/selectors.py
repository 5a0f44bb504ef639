"""Instant and range selectors over a History, with matchers compiled once."""

from bisect import bisect_right

from exporter.promql.numeric import EPS

from .errors import PromQLError
from .regex import RegexSyntaxError, compile_fullmatch

_NAME = "__name__"


def compile_matcher(op: str, name: str, value: str):
    """A predicate over a series' label map; a missing label reads as "" as in Prometheus."""
    if op == "=":
        return lambda m: m.get(name, "") == value
    if op == "!=":
        return lambda m: m.get(name, "") != value
    try:
        full = compile_fullmatch(value)  # RE2: anchored, "." matches newlines, linear time
    except RegexSyntaxError as err:
        raise PromQLError(f'invalid regular expression "{value}" for label "{name}": {err}') from None
    if op == "=~":
        return lambda m: full(m.get(name, ""))
    return lambda m: not full(m.get(name, ""))


class Ctx:
    """One evaluation: the data, the instant and the lookback delta."""

    __slots__ = ("history", "at", "lookback")

    def __init__(self, history, at: float, lookback: float):
        self.history = history
        self.at = at
        self.lookback = lookback


class VectorSelector:
    kind = "vector"

    def __init__(self, name: str | None, matchers: list[tuple[str, str, str]], offset: float, text: str):
        self.name = name  # exact metric name when known: the index narrows the scan
        self.matchers = tuple(matchers)
        self.offset = offset
        self.text = text
        self._tests = tuple(compile_matcher(op, n, v) for op, n, v in matchers)

    def matches(self, label_map: dict) -> bool:
        return all(test(label_map) for test in self._tests)

    def series(self, history) -> list:
        cache = history.selector_cache
        found = cache.get(self)
        if found is None:
            candidates = history.series_named(self.name) if self.name is not None else history.series()
            tests = self._tests
            found = [s for s in candidates if all(t(s.label_map) for t in tests)]
            cache[self] = found
        return found

    def eval(self, ctx: Ctx) -> list:
        at = ctx.at - self.offset
        newest = at + EPS
        oldest = at - ctx.lookback + EPS
        out = []
        for s in self.series(ctx.history):
            # Series.value_at written out: this runs for every selected series every cycle.
            times = s.times
            if not times:
                continue
            if times[-1] <= newest:
                i = len(times) - 1
            else:
                i = bisect_right(times, newest) - 1
                if i < 0:
                    continue
            if times[i] <= oldest:
                continue
            value = s.values[i]
            if value is not None:
                out.append((s.labels, value))
        return out

    def eval_timestamps(self, ctx: Ctx) -> list:
        """(series, sample timestamp) pairs, for timestamp() over a plain selector."""
        at = ctx.at - self.offset
        out = []
        for s in self.series(ctx.history):
            found = s.sample_at(at, ctx.lookback)
            if found is not None:
                out.append((s, found[0]))
        return out


class MatrixSelector:
    kind = "matrix"

    def __init__(self, selector: VectorSelector, range_seconds: float):
        self.selector = selector
        self.range = range_seconds

    def windows(self, ctx: Ctx) -> list:
        """(series, times, values) per matching series with samples in (t - range, t]."""
        end = ctx.at - self.selector.offset
        start = end - self.range
        out = []
        for s in self.selector.series(ctx.history):
            times, values = s.window(start, end)
            if times:
                out.append((s, times, values))
        return out

    def eval(self, ctx: Ctx):
        raise PromQLError("range vector results are not supported")
