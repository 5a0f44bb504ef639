"""Request-rate profiles: how many requests per second arrive at a given time.

A profile is a plain function of time (seconds since the start of the run) built
from a small mapping, so scenario files and the fake server's `--profile` share one
format:

    {shape: constant, rate: 2}
    {shape: ramp, from: 0.5, to: 4, start: 60, duration: 600}
    {shape: spike, base: 1, peak: 6, start: 300, duration: 120, rise: 30}
    {shape: sine, mean: 2, amplitude: 1, period: 600, phase: 0}
    {shape: steps, steps: [[0, 1], [30, 4], [90, 1]]}      # [time, rate], held until the next
    {shape: trace, file: load.csv}                         # CSV rows time,rate, linear between rows

Every shape also takes `scale` (a multiplier, default 1). Rates are never negative.
"""

import csv
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping
from pathlib import Path

RateFn = Callable[[float], float]

SHAPES = ("constant", "ramp", "spike", "sine", "steps", "trace")

# Named profiles for `fake-server --profile`, tuned to the default model (about 2.6
# requests per second of capacity: 16 slots, ~120 output tokens at ~45 ms per step).
# Each comes with the seed it runs with unless --seed is given.
NAMED = {
    # Quick-start demo against the default rule `sum(tgi_queue_size) > 15`: light load,
    # then ~1.7x capacity, then a lull. With its seed the queue passes 15 at 15 s, peaks
    # at 33 and falls back below 15 at 37 s, once each way.
    "demo": ({"shape": "steps", "steps": [[0, 1.5], [5, 4.4], [27, 0.6]]}, 8),
    "steady": ({"shape": "constant", "rate": 1.8}, 1),
    "idle": ({"shape": "constant", "rate": 0.0}, 1),
    "ramp": ({"shape": "ramp", "from": 0.5, "to": 4.0, "start": 0, "duration": 300}, 1),
    "spike": ({"shape": "spike", "base": 1.2, "peak": 5.0, "start": 30, "duration": 60, "rise": 5}, 1),
    "sine": ({"shape": "sine", "mean": 2.2, "amplitude": 1.2, "period": 120}, 1),
}


class ProfileError(ValueError):
    """A profile mapping that cannot be used; the message names the key and the value."""


def build_profile(spec: Mapping, base_dir: Path | None = None) -> RateFn:
    """Turn a profile mapping into rate(t); raises ProfileError with a clear message."""
    if not isinstance(spec, Mapping):
        raise ProfileError(f"profile must be a mapping with a 'shape' key, got {spec!r}")
    shape = spec.get("shape")
    if shape not in SHAPES:
        raise ProfileError(f"shape {shape!r} is not one of {', '.join(SHAPES)}")
    unknown = sorted(set(spec) - _KEYS[shape] - {"shape", "scale"}, key=str)
    if unknown:
        allowed = ", ".join(sorted(_KEYS[shape] | {"scale"}))
        raise ProfileError(f"{shape} profile has unknown key {unknown[0]!r}; allowed: {allowed}")
    scale = _number(spec, "scale", 1.0, minimum=0.0)
    fn = _BUILDERS[shape](spec, base_dir)
    if scale == 1.0:
        return fn
    return lambda t: scale * fn(t)


def named_profile(name: str) -> tuple[RateFn, int]:
    """The rate function of a named profile and the seed it is tuned for."""
    if name not in NAMED:
        raise ProfileError(f"profile {name!r} is not one of {', '.join(NAMED)}")
    spec, seed = NAMED[name]
    return build_profile(spec), seed


def read_trace(path: Path) -> list[tuple[float, float]]:
    """Rows of (time, rate) from a CSV file; a header row is allowed."""
    points: list[tuple[float, float]] = []
    try:
        with open(path, newline="") as handle:
            for lineno, row in enumerate(csv.reader(handle), start=1):
                if not row or row[0].strip().startswith("#"):
                    continue
                if len(row) < 2:
                    raise ProfileError(f"{path}:{lineno}: expected two columns time,rate, got {','.join(row)!r}")
                try:
                    t, rate = float(row[0]), float(row[1])
                except ValueError:
                    if not points and lineno == 1:
                        continue  # header
                    raise ProfileError(
                        f"{path}:{lineno}: time and rate must be numbers, got {','.join(row)!r}"
                    ) from None
                if not (math.isfinite(t) and math.isfinite(rate)) or rate < 0:
                    raise ProfileError(f"{path}:{lineno}: rate must be a finite number >= 0, got {row[1].strip()!r}")
                if points and t <= points[-1][0]:
                    raise ProfileError(
                        f"{path}:{lineno}: times must increase, got {row[0].strip()!r} after {points[-1][0]:g}"
                    )
                points.append((t, rate))
    except OSError as err:
        raise ProfileError(f"{path}: cannot read rate trace: {err.strerror or err}") from None
    if not points:
        raise ProfileError(f"{path}: rate trace has no rows")
    return points


def _number(spec: Mapping, key: str, default: float | None = None, minimum: float | None = None) -> float:
    value = spec.get(key, default)
    if value is None:
        raise ProfileError(f"{spec.get('shape')} profile needs {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(f"{key} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ProfileError(f"{key} must be >= {minimum:g}, got {value!r}")
    return float(value)


def _constant(spec, _base_dir) -> RateFn:
    rate = _number(spec, "rate", minimum=0.0)
    return lambda t: rate


def _ramp(spec, _base_dir) -> RateFn:
    lo = _number(spec, "from", minimum=0.0)
    hi = _number(spec, "to", minimum=0.0)
    start = _number(spec, "start", 0.0)
    duration = _number(spec, "duration", minimum=0.0)

    def rate(t: float) -> float:
        if t <= start:
            return lo
        if duration == 0 or t >= start + duration:
            return hi
        return lo + (hi - lo) * (t - start) / duration

    return rate


def _spike(spec, _base_dir) -> RateFn:
    base = _number(spec, "base", minimum=0.0)
    peak = _number(spec, "peak", minimum=0.0)
    start = _number(spec, "start", 0.0)
    duration = _number(spec, "duration", minimum=0.0)
    rise = _number(spec, "rise", 0.0, minimum=0.0)
    # The rise and the fall each take `rise` seconds, inside the duration.
    rise = min(rise, duration / 2)

    def rate(t: float) -> float:
        if t < start or t > start + duration:
            return base
        into, left = t - start, start + duration - t
        edge = min(into, left)
        if rise > 0 and edge < rise:
            return base + (peak - base) * edge / rise
        return peak

    return rate


def _sine(spec, _base_dir) -> RateFn:
    mean = _number(spec, "mean", minimum=0.0)
    amplitude = _number(spec, "amplitude", minimum=0.0)
    period = _number(spec, "period")
    if period <= 0:
        raise ProfileError(f"period must be > 0, got {spec.get('period')!r}")
    phase = _number(spec, "phase", 0.0)
    omega = 2 * math.pi / period
    return lambda t: max(0.0, mean + amplitude * math.sin(omega * t + phase))


def _steps(spec, _base_dir) -> RateFn:
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ProfileError(f"steps must be a non-empty list of [time, rate] pairs, got {steps!r}")
    points = []
    for item in steps:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in item)
        ):
            raise ProfileError(f"each step must be [time, rate], got {item!r}")
        t, r = float(item[0]), float(item[1])
        if r < 0:
            raise ProfileError(f"step rate must be >= 0, got {item[1]!r}")
        if points and t <= points[-1][0]:
            raise ProfileError(f"step times must increase, got {item[0]!r} after {points[-1][0]:g}")
        points.append((t, r))
    times = [t for t, _ in points]

    def rate(t: float) -> float:
        i = bisect_right(times, t) - 1
        return points[max(i, 0)][1]

    return rate


def _trace(spec, base_dir) -> RateFn:
    name = spec.get("file")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"trace profile needs 'file' (a CSV of time,rate), got {name!r}")
    path = Path(name)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return trace_rate(read_trace(path))


def trace_rate(points: list[tuple[float, float]]) -> RateFn:
    """Linear interpolation between trace rows; the first and last rates hold outside."""
    times = [t for t, _ in points]
    rates = [r for _, r in points]

    def rate(t: float) -> float:
        i = bisect_right(times, t)
        if i == 0:
            return rates[0]
        if i == len(times):
            return rates[-1]
        t0, t1 = times[i - 1], times[i]
        return rates[i - 1] + (rates[i] - rates[i - 1]) * (t - t0) / (t1 - t0)

    return rate


_BUILDERS = {
    "constant": _constant,
    "ramp": _ramp,
    "spike": _spike,
    "sine": _sine,
    "steps": _steps,
    "trace": _trace,
}

_KEYS = {
    "constant": {"rate"},
    "ramp": {"from", "to", "start", "duration"},
    "spike": {"base", "peak", "start", "duration", "rise"},
    "sine": {"mean", "amplitude", "period", "phase"},
    "steps": {"steps"},
    "trace": {"file"},
}
