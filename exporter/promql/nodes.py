"""Evaluation nodes: the compiled form of an expression, evaluated at one instant.

Scalars are floats; instant vectors are lists of (labels, value) with labels as in
exporter.core.history.Labels. Each node knows its `kind` so the compiler can check types once.
"""

from . import binary, functions, range_functions
from . import labels as L
from .aggregate import Grouping, aggregate
from .errors import PromQLError
from .selectors import Ctx, MatrixSelector, VectorSelector


def _unique(vector: list) -> list:
    if L.has_duplicates(vector):
        raise PromQLError(binary.COLLISION)
    return vector


class Number:
    kind = "scalar"

    def __init__(self, value: float):
        self.value = value

    def eval(self, ctx: Ctx) -> float:
        return self.value


class String:
    kind = "string"

    def __init__(self, value: str):
        self.value = value

    def eval(self, ctx: Ctx) -> str:
        return self.value


class Negate:
    def __init__(self, operand):
        self.operand = operand
        self.kind = operand.kind

    def eval(self, ctx: Ctx):
        value = self.operand.eval(ctx)
        if self.kind == "scalar":
            return -value
        return _unique([(L.drop_name(labels), -v) for labels, v in value])


class ScalarBinary:
    kind = "scalar"

    def __init__(self, op: str, lhs, rhs):
        self.op, self.lhs, self.rhs = op, lhs, rhs

    def eval(self, ctx: Ctx) -> float:
        return binary.scalar_scalar(self.op, self.lhs.eval(ctx), self.rhs.eval(ctx))


class VectorScalarBinary:
    kind = "vector"

    def __init__(self, op: str, vector, scalar, scalar_left: bool, return_bool: bool):
        self.op, self.vector, self.scalar = op, vector, scalar
        self.scalar_left, self.return_bool = scalar_left, return_bool

    def eval(self, ctx: Ctx) -> list:
        # Evaluate in source order so errors surface as Prometheus reports them.
        if self.scalar_left:
            s = self.scalar.eval(ctx)
            v = self.vector.eval(ctx)
        else:
            v = self.vector.eval(ctx)
            s = self.scalar.eval(ctx)
        return _unique(binary.vector_scalar(self.op, v, s, self.scalar_left, self.return_bool))


class VectorBinary:
    kind = "vector"

    def __init__(self, op: str, lhs, rhs, matching: binary.Matching, return_bool: bool):
        self.op, self.lhs, self.rhs = op, lhs, rhs
        self.matching, self.return_bool = matching, return_bool

    def eval(self, ctx: Ctx) -> list:
        lhs = self.lhs.eval(ctx)
        rhs = self.rhs.eval(ctx)
        if self.op in binary.SET_OPERATORS:
            return _unique(binary.set_operation(self.op, lhs, rhs, self.matching))
        return _unique(binary.vector_vector(self.op, lhs, rhs, self.matching, self.return_bool))


class Aggregate:
    kind = "vector"

    def __init__(self, op: str, expr, grouping: Grouping, param):
        self.op, self.expr, self.grouping, self.param = op, expr, grouping, param

    def eval(self, ctx: Ctx) -> list:
        param = self.param.eval(ctx) if self.param is not None else None
        return aggregate(self.op, self.expr.eval(ctx), self.grouping, param)


class RangeFunction:
    """A function over a range selector: one output sample per series with data."""

    kind = "vector"

    def __init__(self, name: str, matrix: MatrixSelector, params: list):
        self.name = name
        self.impl, self.keep_name, _ = range_functions.RANGE_FUNCTIONS[name]
        self.extrapolated = range_functions.EXTRAPOLATED.get(name)
        self.matrix = matrix
        self.params = params
        # Series of one exact name differ in their other labels, so dropping the name
        # cannot make two of them collide: the check is only needed without one.
        self.check_unique = not self.keep_name and matrix.selector.name is None

    def eval(self, ctx: Ctx) -> list:
        params = [p.eval(ctx) for p in self.params]
        end = ctx.at - self.matrix.selector.offset
        start = end - self.matrix.range
        rng = self.matrix.range
        if self.extrapolated is not None:
            is_counter, is_rate = self.extrapolated
            out = range_functions.extrapolated_vector(
                self.matrix.selector.series(ctx.history), start, end, rng, is_counter, is_rate
            )
            return _unique(out) if self.check_unique else out
        impl = self.impl
        if self.name in range_functions.ANCHORED_AT_EVALUATION:
            end = ctx.at
        out = []
        for series, times, values in self.matrix.windows(ctx):
            value = impl(times, values, start, end, rng, params)
            if value is not None:
                out.append((series.labels if self.keep_name else series.labels_without_name, value))
        return _unique(out) if self.check_unique else out


class AbsentOverTime:
    kind = "vector"

    def __init__(self, matrix: MatrixSelector):
        self.matrix = matrix
        self.labels = functions.absent_labels(matrix.selector.matchers)

    def eval(self, ctx: Ctx) -> list:
        return [] if self.matrix.windows(ctx) else [(self.labels, 1.0)]


class Absent:
    kind = "vector"

    def __init__(self, expr):
        self.expr = expr
        matchers = expr.matchers if isinstance(expr, VectorSelector) else ()
        self.labels = functions.absent_labels(matchers)

    def eval(self, ctx: Ctx) -> list:
        return [] if self.expr.eval(ctx) else [(self.labels, 1.0)]


class Elementwise:
    kind = "vector"

    def __init__(self, fn, expr):
        self.fn, self.expr = fn, expr

    def eval(self, ctx: Ctx) -> list:
        return _unique(functions.apply_elementwise(self.fn, self.expr.eval(ctx)))


class Round:
    kind = "vector"

    def __init__(self, expr, to_nearest):
        self.expr, self.to_nearest = expr, to_nearest

    def eval(self, ctx: Ctx) -> list:
        vector = self.expr.eval(ctx)
        step = self.to_nearest.eval(ctx) if self.to_nearest is not None else 1.0
        return _unique(functions.round_vector(vector, step))


class Clamp:
    kind = "vector"

    def __init__(self, expr, low, high):
        self.expr, self.low, self.high = expr, low, high

    def eval(self, ctx: Ctx) -> list:
        vector = self.expr.eval(ctx)
        low = self.low.eval(ctx) if self.low is not None else -functions.INF
        high = self.high.eval(ctx) if self.high is not None else functions.INF
        return _unique(functions.clamp(vector, low, high))


class Timestamp:
    kind = "vector"

    def __init__(self, expr):
        self.expr = expr

    def eval(self, ctx: Ctx) -> list:
        if isinstance(self.expr, VectorSelector):
            # For a plain selector, the time of the sample itself, not of the evaluation.
            pairs = self.expr.eval_timestamps(ctx)
            return _unique([(s.labels_without_name, t) for s, t in pairs])
        return _unique([(L.drop_name(labels), ctx.at) for labels, _ in self.expr.eval(ctx)])


class ScalarOf:
    kind = "scalar"

    def __init__(self, expr):
        self.expr = expr

    def eval(self, ctx: Ctx) -> float:
        vector = self.expr.eval(ctx)
        return vector[0][1] if len(vector) == 1 else functions.NAN


class VectorOf:
    kind = "vector"

    def __init__(self, expr):
        self.expr = expr

    def eval(self, ctx: Ctx) -> list:
        return [((), self.expr.eval(ctx))]


class Time:
    kind = "scalar"

    def eval(self, ctx: Ctx) -> float:
        return ctx.at


class Sort:
    kind = "vector"

    def __init__(self, expr, descending: bool):
        self.expr, self.descending = expr, descending

    def eval(self, ctx: Ctx) -> list:
        return functions.sort_vector(self.expr.eval(ctx), self.descending)


class DateFunction:
    def __init__(self, fn, expr):
        self.fn, self.expr = fn, expr
        self.kind = "vector"

    def eval(self, ctx: Ctx) -> list:
        if self.expr is None:
            return [((), functions.date_value(self.fn, ctx.at))]
        vector = self.expr.eval(ctx)
        return _unique([(L.drop_name(labels), functions.date_value(self.fn, v)) for labels, v in vector])


class HistogramQuantile:
    kind = "vector"

    def __init__(self, q, expr):
        self.q, self.expr = q, expr
        self.plan = functions.HistogramPlan()

    def eval(self, ctx: Ctx) -> list:
        q = self.q.eval(ctx)
        return _unique(functions.histogram_quantile(q, self.expr.eval(ctx), self.plan))
