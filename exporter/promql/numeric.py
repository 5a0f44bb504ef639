"""Float arithmetic with Go's (and so Prometheus') results where Python would raise.

Python raises on 1/0, log(0), fmod(x, 0) and pow overflow; Go returns an IEEE value.
A rule must never crash the evaluator because a counter happened to be zero.
"""

import math
from decimal import Decimal

INF = math.inf
NAN = math.nan

# Window edges are compared with this slack (1 µs) so that a sample exactly on an edge
# lands on the same side as in Prometheus' integer milliseconds, whatever float rounding
# the subtraction `at - range` brings.
EPS = 1e-6


class _Stale:
    """The staleness marker; one instance, compared by identity."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STALE"

    def __reduce__(self):
        return "STALE"


STALE = _Stale()


def div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def mod(a: float, b: float) -> float:
    if b == 0 or a != a or b != b or math.isinf(a):
        return NAN
    if math.isinf(b):
        return a
    return math.fmod(a, b)


def power(a: float, b: float) -> float:
    if b == 0 or a == 1:
        return 1.0
    if a != a or b != b:
        return NAN
    if a == 0:
        if b < 0:
            odd = _is_odd_integer(b)
            return math.copysign(INF, a) if odd else INF
        return math.copysign(0.0, a) if _is_odd_integer(b) else 0.0
    try:
        return math.pow(a, b)
    except OverflowError:
        if a < 0 and _is_odd_integer(b):
            return -INF
        return INF
    except ValueError:
        return NAN


def _is_odd_integer(x: float) -> bool:
    return math.isfinite(x) and x == int(x) and int(x) % 2 == 1


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Kahan-Babuska (Neumaier) summation, as Prometheus sums."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def quantile(q: float, values: list[float]) -> float:
    """Prometheus' quantile over plain values: linear interpolation between ranks."""
    if not values or q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    ordered = sorted(values, key=_nan_first)
    n = len(ordered)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def _nan_first(v: float) -> tuple[int, float]:
    return (0, 0.0) if v != v else (1, v)


def format_value(v: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = format(Decimal(repr(v)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def parse_go_float(text: str) -> float:
    """strconv.ParseFloat: like float() but without Python's extras (spaces, underscores)."""
    if not text or text != text.strip() or "_" in text:
        raise ValueError(f"invalid float {text!r}")
    body = text.lstrip("+-")
    if body[:2].lower() == "0x":
        value = float.fromhex(body)
        return -value if text.startswith("-") else value
    return float(text)


def safe(fn, on_domain_error=NAN):
    """Wrap a math function so domain errors and overflows give Go's IEEE results."""

    def call(x: float) -> float:
        try:
            return fn(x)
        except OverflowError:
            return INF
        except ValueError:
            return on_domain_error(x) if callable(on_domain_error) else on_domain_error

    return call
