"""Properties that must hold for any data and any expression in the subset: evaluation
answers or raises PromQLError (never another exception), and a few algebraic laws."""

import math
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.core.history import STALE, History
from exporter.promql import PromQLError, compile_expr, evaluate

VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 5e-324]),
    st.integers(-1000, 1000).map(float),
)
NAMES = ["a", "b"]
PODS = ["x", "y", ""]

SCALARS = ["1", "0", "-2.5", "NaN", "Inf", "-Inf", "time()", "scalar(a)", "pi()"]
RANGE_FUNCS = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "absent_over_time",
]
ELEMENT_FUNCS = [
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "log2",
    "log10",
    "sgn",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "deg",
    "rad",
    "timestamp",
    "absent",
    "sort",
    "sort_desc",
    "hour",
    "year",
    "days_in_month",
]
AGGS = ["sum", "min", "max", "avg", "count", "group", "stddev", "stdvar"]
BINOPS = ["+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=", "> bool", "== bool"]


def vectors():
    leaf = st.sampled_from(["a", "b", 'a{pod="x"}', '{__name__=~"a|b"}', "vector(1)", 'a{pod!~"x|y"}'])
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(
                lambda f, s, r: f"{f}({s}[{r}])",
                st.sampled_from(RANGE_FUNCS),
                st.sampled_from(NAMES),
                st.sampled_from(["1m", "5m", "30s"]),
            ),
            st.builds(lambda f, v: f"{f}({v})", st.sampled_from(ELEMENT_FUNCS), inner),
            st.builds(
                lambda a, g, v: f"{a} by (pod) ({v})" if g else f"{a}({v})", st.sampled_from(AGGS), st.booleans(), inner
            ),
            st.builds(lambda k, v: f"topk({k}, {v})", st.sampled_from(SCALARS), inner),
            st.builds(lambda q, v: f"quantile({q}, {v})", st.sampled_from(SCALARS), inner),
            st.builds(lambda q, v: f"histogram_quantile({q}, {v})", st.sampled_from(SCALARS), inner),
            st.builds(
                lambda v, lo, hi: f"clamp({v}, {lo}, {hi})", inner, st.sampled_from(SCALARS), st.sampled_from(SCALARS)
            ),
            st.builds(lambda a, o, b: f"({a}) {o} ({b})", inner, st.sampled_from(BINOPS), inner),
            st.builds(
                lambda a, o, b: f"({a}) {o} on(pod) ({b})", inner, st.sampled_from(["+", "and", "or", "unless"]), inner
            ),
            st.builds(lambda a, o, s: f"({a}) {o} {s}", inner, st.sampled_from(BINOPS), st.sampled_from(SCALARS)),
            st.builds(lambda v: f"-({v})", inner),
        ),
        max_leaves=6,
    )


@st.composite
def histories(draw):
    h = History(retention_seconds=math.inf)
    for name in NAMES:
        for pod in draw(st.lists(st.sampled_from(PODS), unique=True, max_size=3)):
            labels = tuple(
                sorted({"__name__": name, "pod": pod, "le": draw(st.sampled_from(["0.5", "+Inf", "x"]))}.items())
            )
            times = sorted(draw(st.lists(st.integers(0, 600), unique=True, max_size=12)))
            samples = [(t, draw(st.one_of(VALUES, st.just(STALE)))) for t in times]
            h.load_series(labels, samples)
    return h


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=vectors(), history=histories(), at=st.integers(0, 700))
def test_evaluation_answers_or_raises_promql_error(expr, history, at):
    try:
        compiled = compile_expr(expr)
    except PromQLError:
        return
    try:
        result = evaluate(compiled, history, float(at))
    except PromQLError as err:
        assert str(err) and str(err)[0].islower()
        return
    if compiled.value_type == "scalar":
        assert isinstance(result, float)
    else:
        assert isinstance(result, list)
        assert len({labels for labels, _ in result}) == len(result)  # label sets are unique
        for labels, value in result:
            assert isinstance(value, float)
            assert list(labels) == sorted(labels)


@settings(max_examples=200, deadline=None)
@given(history=histories(), at=st.integers(0, 700))
def test_sum_equals_sum_of_group_sums_and_count_matches(history, at):
    def run(text):
        return evaluate(compile_expr(text), history, float(at))

    total = run("sum(a)")
    parts = run("sum by (pod) (a)")
    assert (total == []) == (parts == [])
    raw = [v for _, v in run("a")]
    # The law holds where floats can hold every partial sum: near the float maximum, summing in
    # another order can overflow to Inf (in Prometheus too), so such inputs are left out. Each
    # side may round by a few ulps of the inputs' magnitude (a group sum of 1e299 + 1.5 is
    # 1e299), so both are compared with the exact rational sum within that much.
    magnitude = sum(abs(v) for v in raw)
    if total and all(math.isfinite(v) for v in raw) and magnitude < 1e300:
        exact = sum(Fraction(v) for v in raw)
        slack = 1e-9 * magnitude + 1e-6
        assert abs(Fraction(total[0][1]) - exact) <= slack
        assert abs(sum(Fraction(v) for _, v in parts) - exact) <= slack
    assert sum(v for _, v in run("count by (pod) (a)")) == len(run("a"))
    # a filter never invents series
    assert {labels for labels, _ in run("a > 0")} <= {labels for labels, _ in run("a")}
