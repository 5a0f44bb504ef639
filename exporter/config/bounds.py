"""The sane range of every duration and count in the configuration, in one table.

A value outside these ranges is a typo or a unit slip (`10000000d` for an interval, `5h` for
a timeout), and some would break the sidecar later rather than at start: a wait beyond what the
OS timer holds kills the evaluator thread. So each is refused where it is read, with its range.
"""

from exporter.config.durations import format_duration

# name -> (lowest, highest) in seconds, both inclusive.
DURATIONS = {
    # Scraping faster than 10ms is a busy loop; slower than 10m leaves the kubelet a stale view.
    "interval": (0.01, 600.0),
    "timeout": (0.001, 600.0),
    "reload_interval": (0.1, 3600.0),
    "shutdown_drain": (0.0, 600.0),
    "graceful_timeout": (0.1, 3600.0),
}
# Whole numbers: at most this many (far above any real value, far below what breaks anything).
MAX_COUNT = 2**31 - 1


def duration_problem(name: str, seconds: float) -> str | None:
    """'must be between 10ms and 10m' when seconds is outside the range of `name`, else None."""
    low, high = DURATIONS[name]
    if low <= seconds <= high:
        return None
    return f"must be between {_shown(low)} and {_shown(high)}"


def _shown(seconds: float) -> str:
    return "0s" if seconds == 0 else format_duration(seconds)
