"""From text to evaluation nodes: parse with promql_parser, then check the subset.

Everything outside the subset is rejected here with a message naming the construct, so
a rule either evaluates with Prometheus' semantics or fails `check` — never a silent
wrong answer at run time.
"""

import math

import promql_parser as pp

from . import binary, functions, nodes, range_functions
from .aggregate import SUPPORTED as AGGREGATIONS
from .aggregate import Grouping
from .errors import PromQLError
from .selectors import MatrixSelector, VectorSelector

# The extension's enums are not hashable, so these are looked up by equality.
_MATCH_OPS = (
    (pp.MatchOp.Equal, "="),
    (pp.MatchOp.NotEqual, "!="),
    (pp.MatchOp.Re, "=~"),
    (pp.MatchOp.NotRe, "!~"),
)
_CARDINALITY = (
    (pp.VectorMatchCardinality.OneToOne, "one-to-one"),
    (pp.VectorMatchCardinality.ManyToOne, "many-to-one"),
    (pp.VectorMatchCardinality.OneToMany, "one-to-many"),
    (pp.VectorMatchCardinality.ManyToMany, "many-to-many"),
)


def _lookup(table, key, default=None):
    for k, v in table:
        if k == key:
            return v
    return default


_SCALAR_FUNCTIONS = {"time", "pi", "scalar"}
INSTANT_FUNCTIONS = (
    set(functions.ELEMENTWISE)
    | set(functions.DATE_FUNCTIONS)
    | {
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "timestamp",
        "absent",
        "scalar",
        "vector",
        "time",
        "pi",
        "sort",
        "sort_desc",
        "histogram_quantile",
        "absent_over_time",
    }
)
SUPPORTED_FUNCTIONS = frozenset(INSTANT_FUNCTIONS | set(range_functions.RANGE_FUNCTIONS))


class Compiled:
    """What compile() learns besides the node tree."""

    def __init__(self):
        self.names: set[str] | None = set()
        self.max_range = 0.0
        self.selectors: list[VectorSelector] = []


def parse(text: str):
    try:
        return pp.parse(text)
    except (ValueError, TypeError) as err:
        message = str(err).strip() or "invalid expression"
        raise PromQLError(f"parse error: {message[0].lower()}{message[1:]}") from None
    except BaseException as err:  # the Rust extension can panic on odd input
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise PromQLError(f"parse error: {err}") from None


# The Rust parser overflows its stack (and takes the process down) on absurdly deep
# input such as 5,000 chained additions; real rules are a few hundred characters.
MAX_LENGTH = 4096


def compile_tree(text: str):
    """Return (root node, Compiled facts) or raise PromQLError."""
    if len(text) > MAX_LENGTH:
        raise PromQLError(f"expression is longer than {MAX_LENGTH} characters")
    info = Compiled()
    try:
        root = _build(parse(text), info)
    except RecursionError:
        raise PromQLError("expression is nested too deeply") from None
    if root.kind == "matrix":
        raise PromQLError(
            "range vector results are not supported; wrap the range selector in a function such as rate()"
        )
    if root.kind == "string":
        raise PromQLError("string results are not supported")
    return root, info


def _build(e, info: Compiled):
    if isinstance(e, pp.ParenExpr):
        return _build(e.expr, info)
    if isinstance(e, pp.NumberLiteral):
        return nodes.Number(float(e.val))
    if isinstance(e, pp.StringLiteral):
        return nodes.String(e.val)
    if isinstance(e, pp.VectorSelector):
        return _selector(e, info)
    if isinstance(e, pp.MatrixSelector):
        selector = _selector(e.vector_selector, info)
        rng = e.range.total_seconds()
        info.max_range = max(info.max_range, rng + max(selector.offset, 0.0))
        return MatrixSelector(selector, rng)
    if isinstance(e, pp.SubqueryExpr):
        raise PromQLError("subqueries are not supported")
    if isinstance(e, pp.UnaryExpr):
        operand = _build(e.expr, info)
        _require(operand, ("scalar", "vector"), "unary minus")
        return nodes.Negate(operand)
    if isinstance(e, pp.BinaryExpr):
        return _binary(e, info)
    if isinstance(e, pp.AggregateExpr):
        return _aggregate(e, info)
    if isinstance(e, pp.Call):
        return _call(e, info)
    raise PromQLError(f"{type(e).__name__} expressions are not supported")


def _selector(e, info: Compiled) -> VectorSelector:
    if e.at is not None:
        raise PromQLError('the "@" modifier is not supported')
    if e.matchers.or_matchers:
        raise PromQLError('"or" between label matchers is not supported')
    matchers = [(_lookup(_MATCH_OPS, m.op), m.name, m.value) for m in e.matchers.matchers]
    name = e.name
    if name is None:
        exact = [v for op, n, v in matchers if op == "=" and n == "__name__"]
        name = exact[0] if exact else None
    if name is None:
        info.names = None
    elif info.names is not None:
        info.names.add(name)
    offset = e.offset.total_seconds() if e.offset is not None else 0.0
    selector = VectorSelector(name, matchers, offset, str(e))
    info.max_range = max(info.max_range, offset)
    info.selectors.append(selector)
    return selector


def _require(node, kinds: tuple, what: str) -> None:
    if node.kind not in kinds:
        raise PromQLError(f"{what} expects {' or '.join(kinds)}, got {node.kind}")


def _binary(e, info: Compiled):
    op = str(e.op)
    if op not in binary.ARITHMETIC and op not in binary.COMPARISON and op not in binary.SET_OPERATORS:
        raise PromQLError(f'operator "{op}" is not supported')
    mod = e.modifier
    if mod is not None and _has_fill(mod):
        raise PromQLError("fill modifiers are not supported")
    lhs = _build(e.lhs, info)
    rhs = _build(e.rhs, info)
    _require(lhs, ("scalar", "vector"), f'operator "{op}"')
    _require(rhs, ("scalar", "vector"), f'operator "{op}"')
    return_bool = bool(mod is not None and mod.return_bool)
    if lhs.kind == "scalar" and rhs.kind == "scalar":
        return nodes.ScalarBinary(op, lhs, rhs)
    if lhs.kind == "vector" and rhs.kind == "vector":
        return nodes.VectorBinary(op, lhs, rhs, _matching(mod, op), return_bool)
    if op in binary.SET_OPERATORS:
        raise PromQLError(f'set operator "{op}" not allowed in binary scalar expression')
    if lhs.kind == "vector":
        return nodes.VectorScalarBinary(op, lhs, rhs, False, return_bool)
    return nodes.VectorScalarBinary(op, rhs, lhs, True, return_bool)


def _has_fill(mod) -> bool:
    fill = getattr(mod, "fill_values", None)
    return fill is not None and (fill.lhs is not None or fill.rhs is not None)


def _matching(mod, op: str) -> binary.Matching:
    default_card = "many-to-many" if op in binary.SET_OPERATORS else "one-to-one"
    if mod is None:
        return binary.Matching(default_card, False, [], [])
    card = _lookup(_CARDINALITY, mod.card, default_card) if mod.card is not None else default_card
    if op in binary.SET_OPERATORS:
        card = "many-to-many"
    on = False
    names: list[str] = []
    if mod.matching is not None:
        on = mod.matching.type == pp.LabelModifierType.Include
        names = list(mod.matching.labels)
    include = list(mod.group_labels or []) if card in ("many-to-one", "one-to-many") else []
    return binary.Matching(card, on, names, include)


def _aggregate(e, info: Compiled):
    op = str(e.op)
    if op not in AGGREGATIONS:
        raise PromQLError(f'aggregation "{op}" is not supported')
    expr = _build(e.expr, info)
    _require(expr, ("vector",), f'aggregation "{op}"')
    names: list[str] = []
    without = False
    if e.modifier is not None:
        without = e.modifier.type == pp.AggModifierType.Without
        names = list(e.modifier.labels)
    param = None
    if op == "count_values":
        label = _build(e.param, info)
        if not isinstance(label, nodes.String):
            raise PromQLError("count_values expects a string literal as its label name")
        if not without:
            names.append(label.value)
        return nodes.Aggregate(op, expr, Grouping(names, without), label)
    if op in ("topk", "bottomk", "quantile"):
        param = _build(e.param, info)
        _require(param, ("scalar",), f'aggregation "{op}" parameter')
    return nodes.Aggregate(op, expr, Grouping(names, without), param)


def _call(e, info: Compiled):
    name = e.func.name
    if name not in SUPPORTED_FUNCTIONS:
        raise PromQLError(f'function "{name}" is not supported')
    args = [_build(_unparen(a), info) for a in e.args]
    if name in range_functions.RANGE_FUNCTIONS:
        index = range_functions.RANGE_FUNCTIONS[name][2]
        matrix = args[index]
        if not isinstance(matrix, MatrixSelector):
            raise PromQLError(f'function "{name}" expects a range selector such as x[5m]')
        params = [a for i, a in enumerate(args) if i != index]
        for p in params:
            _require(p, ("scalar",), f'function "{name}" parameter')
        return nodes.RangeFunction(name, matrix, params)
    if name == "absent_over_time":
        if not isinstance(args[0], MatrixSelector):
            raise PromQLError('function "absent_over_time" expects a range selector such as x[5m]')
        return nodes.AbsentOverTime(args[0])
    for a in args:
        if a.kind == "matrix":
            raise PromQLError(f'function "{name}" expects an instant vector, got a range vector')
    if name in functions.ELEMENTWISE:
        return nodes.Elementwise(functions.ELEMENTWISE[name], args[0])
    if name in functions.DATE_FUNCTIONS:
        return nodes.DateFunction(functions.DATE_FUNCTIONS[name], args[0] if args else None)
    if name == "round":
        return nodes.Round(args[0], args[1] if len(args) > 1 else None)
    if name == "clamp":
        return nodes.Clamp(args[0], args[1], args[2])
    if name == "clamp_min":
        return nodes.Clamp(args[0], args[1], None)
    if name == "clamp_max":
        return nodes.Clamp(args[0], None, args[1])
    if name == "timestamp":
        return nodes.Timestamp(args[0])
    if name == "absent":
        return nodes.Absent(args[0])
    if name == "scalar":
        return nodes.ScalarOf(args[0])
    if name == "vector":
        return nodes.VectorOf(args[0])
    if name == "time":
        return nodes.Time()
    if name == "pi":
        return nodes.Number(math.pi)
    if name in ("sort", "sort_desc"):
        return nodes.Sort(args[0], name == "sort_desc")
    if name == "histogram_quantile":
        return nodes.HistogramQuantile(args[0], args[1])
    raise PromQLError(f'function "{name}" is not supported')  # pragma: no cover - table and code agree


def _unparen(e):
    while isinstance(e, pp.ParenExpr):
        e = e.expr
    return e
