"""Prometheus durations (`1m30s`, `800ms`, `0`), parsed and printed in one place.

Rule files take Prometheus' own form (whole numbers with units, as promtool does); environment
variables and flags also accept plain seconds and fractions (`1.5`, `0.2s`), see settings.py.
"""

import re

_UNITS = ("y", "w", "d", "h", "m", "s", "ms")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def _pattern(number: str) -> re.Pattern:
    return re.compile("^" + "".join(f"(?:({number}){unit})?" for unit in _UNITS) + "$")


_DURATION = _pattern(r"\d+")
_DURATION_FRACTIONS = _pattern(r"\d+(?:\.\d+)?")


def parse_duration(text: str, fractions: bool = False) -> float:
    """Seconds in a Prometheus duration (`1m30s`, `800ms`, `0`); ValueError with a hint otherwise.

    With fractions, each number may have a decimal part (`0.5s`)."""
    match = (_DURATION_FRACTIONS if fractions else _DURATION).match(text) if text else None
    if text == "0":
        return 0.0
    if not match or not any(match.groups()):
        raise ValueError(f'"{text}" is not a duration; write a whole number and unit like 10s, 800ms or 1m30s')
    return float(sum(float(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS) if n))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of a duration: 90 -> 1m30s, 0.8 -> 800ms, 0 -> 0s."""
    millis = round(seconds * 1000)
    if millis <= 0:
        return "0s"
    parts = []
    for unit, name in zip(_UNIT_SECONDS, _UNITS):
        step = round(unit * 1000)
        if millis >= step:
            parts.append(f"{millis // step}{name}")
            millis %= step
    return "".join(parts)
