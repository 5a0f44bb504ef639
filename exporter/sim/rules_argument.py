"""The `--rules` argument of `simulate` and `panel`: rule files, or the seed's single threshold."""

from exporter.config.errors import ConfigError, Problem
from exporter.sim.scenario import RulesSpec

_HINT = "write seed:METRIC:THRESHOLD, e.g. seed:tgi_queue_size:15 or seed:vllm:num_requests_waiting:5"


def parse_rules_argument(text: str) -> RulesSpec:
    """`rules/tgi.yaml`, `a.yaml,b.yaml`, or `seed:METRIC:THRESHOLD` (`seed` alone: tgi_queue_size > 15).

    Metric names may hold colons (vLLM's `vllm:num_requests_waiting`, recording rules), so
    the threshold is whatever follows the last colon; `seed:METRIC` alone keeps 15."""
    if text != "seed" and not text.startswith("seed:"):
        return RulesSpec(tuple(part for part in text.split(",") if part))
    rest = text[len("seed:") :] if text.startswith("seed:") else ""
    if not rest:
        return RulesSpec((), "tgi_queue_size", 15.0)
    metric, colon, last = rest.rpartition(":")
    if not colon:
        return RulesSpec((), rest, 15.0)
    if not last:
        raise ConfigError([Problem(text, message=f"the threshold after the last colon is missing; {_HINT}")])
    threshold = _number(last)
    if threshold is None:
        if _looks_numeric(last):
            raise ConfigError([Problem(text, message=f"threshold {last!r} is not a finite number; {_HINT}")])
        # No number after the last colon: the whole rest is a metric name such as vllm:num_requests_waiting.
        return RulesSpec((), rest, 15.0)
    if not metric:
        raise ConfigError([Problem(text, message=f"the metric name is missing; {_HINT}")])
    return RulesSpec((), metric, threshold)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _looks_numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text[0] in "+-.") or text.lower() in ("nan", "inf", "infinity")
