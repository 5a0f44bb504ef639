"""Instant-vector functions: element-wise math, rounding, clamping, absent(), sorting and the
date functions. Range-vector functions are in range_functions.py."""

import math

from . import dates
from . import labels as L
from .histogram import Plan as HistogramPlan
from .histogram import histogram_quantile
from .numeric import INF, NAN, safe

# --- instant-vector functions: element-wise math ---


def _sgn(v):
    if v < 0:
        return -1.0
    if v > 0:
        return 1.0
    return v


def _log_domain(x):
    return -INF if x == 0 else NAN


def _atanh_domain(x):
    if x == 1:
        return INF
    if x == -1:
        return -INF
    return NAN


def _keep_nonfinite(fn):
    return lambda v: v if not math.isfinite(v) else float(fn(v))


def _signed_overflow(fn):
    def call(v):
        try:
            return fn(v)
        except OverflowError:
            return math.copysign(INF, v)
        except ValueError:
            return NAN

    return call


ELEMENTWISE = {
    "abs": abs,
    "ceil": _keep_nonfinite(math.ceil),
    "floor": _keep_nonfinite(math.floor),
    "exp": safe(math.exp),
    "sqrt": safe(math.sqrt),
    "ln": safe(math.log, _log_domain),
    "log2": safe(math.log2, _log_domain),
    "log10": safe(math.log10, _log_domain),
    "sgn": _sgn,
    "sin": safe(math.sin),
    "cos": safe(math.cos),
    "tan": safe(math.tan),
    "asin": safe(math.asin),
    "acos": safe(math.acos),
    "atan": safe(math.atan),
    "sinh": _signed_overflow(math.sinh),
    "cosh": safe(math.cosh),
    "tanh": safe(math.tanh),
    "asinh": safe(math.asinh),
    "acosh": safe(math.acosh),
    "atanh": safe(math.atanh, _atanh_domain),
    "deg": lambda v: v * 180 / math.pi,
    "rad": lambda v: v * math.pi / 180,
}


def apply_elementwise(fn, vector: list) -> list:
    return [(L.drop_name(labels), fn(v)) for labels, v in vector]


def round_vector(vector: list, to_nearest: float) -> list:
    inverse = 1.0 / to_nearest if to_nearest != 0 else math.copysign(INF, to_nearest)

    def one(v):
        # Prometheus rounds half up, on the inverse to limit float error.
        x = v * inverse + 0.5
        if not math.isfinite(x):
            return x / inverse if x == x else NAN
        return math.floor(x) / inverse

    return [(L.drop_name(labels), one(v)) for labels, v in vector]


def clamp(vector: list, low: float, high: float) -> list:
    if high < low:
        return []
    return [(L.drop_name(labels), _go_max(low, _go_min(high, v))) for labels, v in vector]


def _go_min(a: float, b: float) -> float:
    # Go's math.Min: NaN wins, unlike Python's min() which depends on argument order.
    if a != a or b != b:
        return NAN
    return a if a < b else b


def _go_max(a: float, b: float) -> float:
    if a != a or b != b:
        return NAN
    return a if a > b else b


def absent_labels(matchers: tuple) -> tuple:
    """The labels absent() reports: the selector's unique equality matchers."""
    result: dict = {}
    seen: set = set()
    for op, name, value in matchers:
        if name == L.NAME:
            continue
        if op == "=" and name not in seen:
            result[name] = value
            seen.add(name)
        else:
            result.pop(name, None)
    return tuple(sorted((k, v) for k, v in result.items() if v))


def sort_vector(vector: list, descending: bool) -> list:
    # NaN goes last either way.
    if descending:
        return sorted(vector, key=lambda s: (s[1] != s[1], -s[1] if s[1] == s[1] else 0.0))
    return sorted(vector, key=lambda s: (s[1] != s[1], s[1] if s[1] == s[1] else 0.0))


# name -> the name: the fields are computed in dates.py, exactly as Prometheus' Go code does.
DATE_FUNCTIONS = {name: name for name in dates.NAMES}


def date_value(fn: str, seconds: float) -> float:
    return dates.date_field(fn, seconds)


__all__ = [
    "ELEMENTWISE",
    "DATE_FUNCTIONS",
    "apply_elementwise",
    "round_vector",
    "clamp",
    "absent_labels",
    "sort_vector",
    "date_value",
    "histogram_quantile",
    "HistogramPlan",
]
