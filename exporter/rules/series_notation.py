"""promtool's expanding series notation: "1+1x3 _ stale 5x2" -> [1, 2, 3, 4, None, STALE, 5, 5, 5].

Used by Prometheus' PromQL test files, promtool rule tests (`input_series`) and so by
`llm-healthcheck test`. Items are separated by whitespace:

  v          one sample              _      one missing sample (None)
  vxN        N+1 samples equal to v  _xN    N missing samples
  v+dxN      N+1 samples v, v+d, ... (v-dxN counts down)
  stale      a staleness marker      NaN, Inf, -Inf  literal values
"""

import re

from exporter.promql.numeric import STALE

__all__ = ["STALE", "SeriesNotationError", "expand_values"]


class SeriesNotationError(ValueError):
    """A malformed item; str() names the item and what was expected."""


# No hex literals: "0x10" reads as zero repeated ten more times, as in Prometheus.
_NUMBER = r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF]|[nN][aA][nN])"
_ITEM = re.compile(rf"(?P<base>stale|[+-]?{_NUMBER})(?:(?P<delta>[+-]{_NUMBER})?x(?P<count>\d+))?")
_BLANK = re.compile(r"_(?:x(?P<count>\d+))?")
_LIMIT = 1_000_000  # a typo like 1x99999999 must not eat the machine


def expand_values(text: str) -> list:
    """Expand the notation into a list of float | None (missing) | STALE."""
    out: list = []
    for item in text.split():
        if item.startswith("{{"):
            raise SeriesNotationError(f"native histogram samples are not supported: {item!r}")
        blank = _BLANK.fullmatch(item)
        if blank:
            count = int(blank["count"]) if blank["count"] is not None else 1
            _check_size(out, count, item)
            out.extend([None] * count)
            continue
        match = _ITEM.fullmatch(item)
        if not match:
            raise SeriesNotationError(
                f"invalid series value {item!r}: expected a number, _, stale, or a form like 1+2x5"
            )
        base = STALE if match["base"] == "stale" else _number(match["base"])
        if match["count"] is None:
            out.append(base)
            continue
        count = int(match["count"])
        _check_size(out, count + 1, item)
        if match["delta"] is None:
            out.extend([base] * (count + 1))
            continue
        if base is STALE:
            raise SeriesNotationError(f"invalid series value {item!r}: stale cannot be incremented")
        delta = _number(match["delta"])
        value = base
        for _ in range(count + 1):
            # Repeated addition, as Prometheus' parser does, so float steps round alike.
            out.append(value)
            value += delta  # type: ignore[operator]  # base is a number here: stale was refused above
    return out


def _number(text: str) -> float:
    return float(text)


def _check_size(out: list, adding: int, item: str) -> None:
    if len(out) + adding > _LIMIT:
        raise SeriesNotationError(f"series {item!r} expands to more than {_LIMIT} samples")
