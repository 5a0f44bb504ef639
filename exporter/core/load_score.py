"""The load score: how full a pod is, in [0, 1], for utilization-based load balancers.

Pure: the sidecar's evaluator and the simulator's pods both call next_score() once per cycle
with the same history the rules read. No I/O, no clock.

- ok: the score is the largest term value (a roofline), clamped to [0, 1]. A term returning
  several series counts its largest; a term returning nothing, or NaN, is left out (TGI creates
  its series on first use).
- missing: a fresh scrape, but no term returned data (or the body was empty): `on_missing`.
- stale: no fresh data (before the first scrape, after failure_threshold failed scrapes,
  terminating): `on_stale`. Fewer failures than the threshold hold the last score, as
  readiness holds its rule states.
- error: every term failed to evaluate: `on_stale` (the sidecar cannot see into the pod).
- readiness: no `score:` section; 0 while ready, 1 while not, so a balancer that reads the
  score behaves as under readiness alone.
Both defaults are 1.0, "full": a balancer moves traffic away from a pod it cannot see into.
"""

import math
from dataclasses import dataclass

from exporter.promql import PromQLError
from exporter.promql import evaluate as evaluate_expr

OK, MISSING, STALE, ERROR, READINESS = "ok", "missing", "stale", "error", "readiness"


@dataclass(frozen=True)
class LoadScore:
    value: float  # what /load and llm_healthcheck_load publish, in [0, 1]
    state: str
    reason: str
    raw: float | None = None  # the largest term before clamping; None without data
    inputs: tuple[tuple[str, float | None], ...] = ()  # (term name, its value or None)
    errors: tuple[tuple[str, str], ...] = ()  # (term name, evaluation error)


def clamp(value: float) -> float:
    return 0.0 if value < 0 else 1.0 if value > 1 else float(value)


def evaluate_score(spec, history, now: float, lookback: float = 300.0) -> LoadScore:
    """The score from a fresh scrape's history at `now`."""
    inputs: list[tuple[str, float | None]] = []
    errors: list[tuple[str, str]] = []
    for term in spec.terms:
        try:
            result = evaluate_expr(term.expr, history, now, lookback)
        except PromQLError as err:
            errors.append((term.name, str(err)))
            inputs.append((term.name, None))
            continue
        inputs.append((term.name, _largest(result)))
    present: list[float] = [value for _, value in inputs if value is not None]
    if not present:
        if errors and len(errors) == len(spec.terms):
            name, message = errors[0]
            return LoadScore(
                spec.on_stale, ERROR, f"term {name}: evaluation error: {message}", None, tuple(inputs), tuple(errors)
            )
        return LoadScore(
            spec.on_missing, MISSING, "no term returned data; on_missing", None, tuple(inputs), tuple(errors)
        )
    raw = max(present)
    top = next(name for name, value in inputs if value == raw)
    return LoadScore(clamp(raw), OK, f"largest term: {top}", raw, tuple(inputs), tuple(errors))


def stale_score(spec, reason: str) -> LoadScore:
    return LoadScore(spec.on_stale, STALE, f"{reason}; on_stale")


def next_score(spec, last, history, now: float, result, scrape, config) -> LoadScore | None:
    """The sidecar's score for one cycle: `last` is the previous decision (.load), `result` the
    scrape result (.ok, .empty), `scrape` the status after it (.consecutive_failures), `config`
    the scrape config (.failure_threshold)."""
    failing = not result.ok and scrape.consecutive_failures >= config.failure_threshold
    fresh, empty = result.ok and not result.empty, result.ok and result.empty
    return score_for(spec, last.load, history, now, fresh, empty, failing)


def score_for(
    spec, previous: LoadScore | None, history, now: float, fresh: bool, empty: bool, failing: bool, lookback=300.0
) -> LoadScore | None:
    """The score for one cycle, or None when the rule set has no `score:` section.

    fresh: the scrape succeeded with a body; empty: it succeeded with an empty body;
    failing: failure_threshold consecutive scrapes failed."""
    if spec is None:
        return None
    if fresh:
        return evaluate_score(spec, history, now, lookback)
    if empty:
        return LoadScore(spec.on_missing, MISSING, "upstream returned an empty body; on_missing")
    if failing or previous is None:
        return stale_score(spec, "no fresh data from the upstream")
    return previous  # a failed scrape below failure_threshold: hold, as the rules do


def published(load: LoadScore | None, spec, ready: bool, phase: str) -> LoadScore:
    """What a decision publishes: terminating and starting are stale whatever the last score."""
    if spec is None:
        return LoadScore(0.0 if ready else 1.0, READINESS, "no score section: 0 while ready, 1 while not")
    if phase == "terminating":
        return stale_score(spec, "terminating")
    if load is None:
        return stale_score(spec, "starting: no scrape has completed yet")
    return load


def _largest(result) -> float | None:
    if isinstance(result, float):
        return None if math.isnan(result) else result
    values = [value for _, value in result if not math.isnan(value)]
    return max(values) if values else None
