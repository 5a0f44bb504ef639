"""Rule evaluation and the per-series hysteresis state machine.

Pure: evaluate(ruleset, history, state, now) -> (state, statuses). No I/O, no clock;
the caller passes `now`. States per output series of a rule:

    ok -> pending -> firing -> recovering -> ok

- pending: the condition holds but not yet for `for`; one false evaluation resets it to ok
  (as a Prometheus alerting rule does).
- firing: the condition has held for `for`.
- recovering: the condition cleared while firing; it stays here for `keep_firing_for`, and goes
  straight back to firing if the condition returns.
A rule's own state is the most severe of its series' states. A rule blocks readiness while it
is firing or recovering and its severity is `unready`.

Threshold rules have a band: with `above: 10, recover_below: 6` the condition turns on when the
value exceeds 10 and, once on, stays on until the value drops below 6.
"""

import math
from dataclasses import dataclass, field, replace

from exporter.core import presence
from exporter.core.reasons import format_value, label_text, series_reason
from exporter.promql import PromQLError
from exporter.promql import evaluate as evaluate_expr
from exporter.rules.model import Rule, RuleSet

OK, PENDING, FIRING, RECOVERING = "ok", "pending", "firing", "recovering"
STATES = (OK, PENDING, FIRING, RECOVERING)
_SEVERITY_ORDER = {OK: 0, PENDING: 1, RECOVERING: 2, FIRING: 3}
_CONDITION_ON = (PENDING, FIRING)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SeriesStatus:
    labels: Labels  # output labels of the expression (without __name__)
    state: str
    value: float | None
    since: float  # when this series entered `state`
    active_since: float | None = None  # pending/firing: when the condition turned on
    cleared_at: float | None = None  # recovering: when the condition turned off
    reason: str = ""


@dataclass(frozen=True)
class RuleStatus:
    rule: Rule
    state: str
    value: float | None
    since: float
    reason: str
    series: tuple[SeriesStatus, ...] = ()
    previous_state: str | None = None  # set only on the evaluation where `state` changed
    error: str | None = None  # evaluation error; series states are held while it lasts
    no_data: bool = False  # the expression (for a condition: what it filters) returned no series

    @property
    def blocking(self) -> bool:
        return self.rule.severity == "unready" and self.state in (FIRING, RECOVERING)

    @property
    def changed(self) -> bool:
        return self.previous_state is not None


@dataclass(frozen=True)
class EngineState:
    """Opaque to callers. Keyed by Rule.definition() so an unchanged rule keeps its timers
    across a reload, and a changed or new rule starts at ok."""

    rules: dict = field(default_factory=dict)  # definition -> RuleStatus


def initial_state() -> EngineState:
    return EngineState()


def evaluate(ruleset: RuleSet, history, state: EngineState, now: float, lookback: float = 300.0):
    """Evaluate every rule at `now`; returns the new state and one RuleStatus per rule."""
    statuses = []
    previous_by_rule = state.rules
    new_rules = {}
    # Rules often share an expression (a hard limit and a warning on the same queue):
    # each expression is evaluated once per cycle.
    results: dict = {}
    for rule, definition in _definitions(ruleset):
        previous = previous_by_rule.get(definition)
        result, err = _evaluate_expr(rule, history, now, lookback, results)
        if err is not None or isinstance(result, float) or result:
            status = _evaluate_rule(rule, previous, history, now, lookback, results)
        else:
            status = _empty_result(rule, previous, history, now, lookback, results)
        statuses.append(status)
        new_rules[definition] = status
    return EngineState(new_rules), tuple(statuses)


def hold(ruleset: RuleSet, state: EngineState, now: float, reason: str):
    """Statuses without evaluating (no fresh data): every rule keeps its state and timers."""
    statuses = []
    for rule in ruleset.rules:
        previous = state.rules.get(rule.definition())
        if previous is None:
            statuses.append(RuleStatus(rule, OK, None, now, reason))
        else:
            statuses.append(
                RuleStatus(
                    rule,
                    previous.state,
                    previous.value,
                    previous.since,
                    previous.reason,
                    previous.series,
                    None,
                    previous.error,
                    previous.no_data,
                )
            )
    return EngineState({s.rule.definition(): s for s in statuses}), tuple(statuses)


# (rule, rule.definition()) per rule of a rule set: the definition keys the state and
# would otherwise be built and hashed twice per rule per cycle. An entry keeps its rule
# set alive, so its id is never reused while it is cached.
_DEFINITIONS: dict = {}
_DEFINITIONS_LIMIT = 64


def _definitions(ruleset: RuleSet) -> tuple:
    found = _DEFINITIONS.get(id(ruleset))
    if found is None or found[0] is not ruleset:
        if len(_DEFINITIONS) >= _DEFINITIONS_LIMIT:
            _DEFINITIONS.clear()
        found = _DEFINITIONS[id(ruleset)] = (ruleset, tuple((rule, rule.definition()) for rule in ruleset.rules))
    return found[1]


def _evaluate_expr(rule: Rule, history, now: float, lookback: float, results: dict):
    found = results.get(rule.expr_text)
    if found is None:
        try:
            found = (evaluate_expr(rule.expr, history, now, lookback), None)
        except PromQLError as err:
            found = (None, err)
        results[rule.expr_text] = found
    return found


def _evaluate_rule(
    rule: Rule, previous: RuleStatus | None, history, now: float, lookback: float, results: dict
) -> RuleStatus:
    old = previous.series if previous else ()
    result, err = _evaluate_expr(rule, history, now, lookback, results)
    if err is not None:
        # Hold every series as it was: a transient evaluation error must not flip readiness.
        return _aggregate(rule, previous, tuple({s.labels: s for s in old}.values()), now, error=str(err))
    if isinstance(result, float):
        result = (((), result),)
    if len(result) == 1 and len(old) == 1 and previous is not None and _unchanged(rule, previous, result[0]):
        return previous
    if len(result) == 1 and len(old) <= 1:
        # The usual shape, one series now and at most one before, without the dicts below.
        labels, value = result[0]
        labels = _drop_name(labels)
        before = old[0] if old and old[0].labels == labels else None
        step = _step_series(rule, before, labels, value, now)
        if old and before is None:
            went = _step_series(rule, old[0], old[0].labels, None, now)
            return _aggregate(rule, previous, (step, went) if went.state != OK else (step,), now)
        return _aggregate(rule, previous, (step,), now)
    if not result and not old:
        return _aggregate(rule, previous, (), now)

    old_series = {s.labels: s for s in old}
    values = {_drop_name(labels): value for labels, value in result}
    series = []
    for labels, value in values.items():
        series.append(_step_series(rule, old_series.get(labels), labels, value, now))
    for labels, was in old_series.items():
        if labels not in values:
            step = _step_series(rule, was, labels, None, now)
            if step.state != OK:
                series.append(step)
    return _aggregate(rule, previous, tuple(series), now)


def _empty_result(rule: Rule, previous, history, now: float, lookback: float, results: dict) -> RuleStatus:
    """An empty result: a condition that is merely false reads ok with the value it filtered;
    otherwise the rule has no data, and its on_missing policy says what that means."""
    seen = presence.filtered_value(rule, history, now, lookback)
    if seen is None and rule.on_missing != "ok":
        return _missing(rule, previous, now)
    reason = "" if seen is None else f"condition false (value {format_value(seen)})"
    if (
        seen is not None
        and previous is not None
        and previous.rule is rule
        and not previous.series
        and previous.error is None
        and previous.previous_state is None
        and previous.reason == reason
        and _same_value(previous.value, seen)
    ):
        return previous  # false again with the same value: nothing to build (the common case)
    status = _evaluate_rule(rule, previous, history, now, lookback, results)
    if seen is None:
        return status if status.no_data else replace(status, no_data=True)
    if status.series:  # still recovering from an earlier firing: that reason stands
        return replace(status, no_data=False) if status.no_data else status
    return replace(status, value=seen, reason=reason, no_data=False)


def _missing(rule: Rule, previous: RuleStatus | None, now: float) -> RuleStatus:
    """on_missing: unready counts no data as the condition holding (so `for` applies); keep
    holds every series as it was, timers included."""
    if rule.on_missing == "keep":
        if previous is None:
            return RuleStatus(rule, OK, None, now, "no data; on_missing keep: nothing to keep", (), None, None, True)
        if previous.no_data:  # already held: the same status, no longer a change
            return replace(previous, previous_state=None) if previous.changed else previous
        held = f"no data; on_missing keep holds {previous.state}"
        return RuleStatus(rule, previous.state, previous.value, previous.since, held, previous.series, None, None, True)
    old = {s.labels: s for s in previous.series} if previous else {}
    step = _step_series(rule, old.get(()), (), None, now, missing=True)
    series = [step] + [_step_series(rule, s, s.labels, None, now) for labels, s in old.items() if labels != ()]
    status = _aggregate(rule, previous, tuple(s for s in series if s is step or s.state != OK), now)
    return status if status.no_data else replace(status, no_data=True)


def _unchanged(rule: Rule, previous: RuleStatus, sample) -> bool:
    """Whether one series, ok or firing before, stays so with the very same value: then
    _step_series would keep its status and _aggregate the rule's (the common case, checked
    without building anything)."""
    if previous.previous_state is not None or previous.error is not None or previous.rule is not rule:
        return False
    old = previous.series[0]
    labels, value = sample
    if old.state not in _STEADY or not _same_value(value, old.value):
        return False
    if labels is not old.labels and _drop_name(labels) != old.labels:
        return False
    firing = old.state == FIRING
    return _condition(rule, value, firing) == firing


def _drop_name(labels: Labels) -> Labels:
    for name, _ in labels:
        if name == "__name__":
            return tuple(pair for pair in labels if pair[0] != "__name__")
    return labels


def _condition(rule: Rule, value: float | None, was_on: bool) -> bool:
    if value is None:
        return False  # no data never keeps a pod out, unless on_missing says so (_missing)
    if not rule.is_threshold:
        return True  # condition form: any returned series is active
    if rule.above is not None:
        if was_on and rule.recover_below is not None:
            return value >= rule.recover_below
        return value > rule.above
    if was_on and rule.recover_above is not None:
        return value <= rule.recover_above
    return rule.below is not None and value < rule.below


def _step_series(
    rule: Rule, old: SeriesStatus | None, labels: Labels, value, now: float, missing: bool = False
) -> SeriesStatus:
    state = old.state if old else OK
    on = missing or _condition(rule, value, state in _CONDITION_ON)
    active_since = old.active_since if old else None
    cleared_at = old.cleared_at if old else None

    if on:
        if state in (OK,):
            active_since = now
            new = FIRING if rule.for_seconds <= 0 else PENDING
        elif state == PENDING:
            new = FIRING if active_since is not None and now - active_since >= rule.for_seconds else PENDING
        elif state == RECOVERING:
            new, active_since, cleared_at = FIRING, now, None
        else:
            new = FIRING
    else:
        if state == FIRING and rule.keep_firing_for_seconds > 0:
            new, cleared_at = RECOVERING, now
        elif state == RECOVERING and cleared_at is not None and now - cleared_at < rule.keep_firing_for_seconds:
            new = RECOVERING
        else:
            new, active_since, cleared_at = OK, None, None

    if old is not None and new == state and new in _STEADY and _same_value(value, old.value):
        # ok or firing, timers untouched and the same value: every field, the reason
        # included, would come out as it was, so the status stays the same object.
        return old
    since = old.since if old and old.state == new else now
    return SeriesStatus(
        labels,
        new,
        value,
        since,
        active_since,
        cleared_at,
        series_reason(rule, new, value, now, active_since, cleared_at),
    )


# States whose reason and timers do not move with the clock while the value stands still.
_STEADY = (OK, FIRING)


def _same_value(a, b) -> bool:
    if a is b:
        return True
    # 0.0 and -0.0 are equal but print differently; NaN never equals itself.
    return a is not None and b is not None and a == b and (a != 0 or math.copysign(1, a) == math.copysign(1, b))


def _aggregate(rule: Rule, previous: RuleStatus | None, series: tuple, now: float, error=None) -> RuleStatus:
    if len(series) == 1:
        worst = series[0]
    else:
        worst = max(series, key=lambda s: (_SEVERITY_ORDER[s.state], _magnitude(rule, s.value)), default=None)
    state = worst.state if worst else OK
    # A rule's first evaluation starts from ok, so a rule that is pending or firing at once is
    # logged and counted as a transition like any other.
    was = previous.state if previous is not None else OK
    changed = was != state
    if (
        error is None
        and previous is not None
        and not changed
        and previous.error is None
        and previous.previous_state is None
        and previous.rule is rule
        and _same_series(series, previous.series)
        and (series or previous.reason == "no data")
    ):
        # The same series objects, so the same worst one: every field would come out as it
        # was. (With no series, only if the reason is too: a held status may carry another.)
        return previous
    if error is not None:
        reason = f"evaluation error: {error}"
    elif worst is None:
        reason = "no data"
    else:
        reason = worst.reason
        if len(series) > 1:
            reason += f" ({label_text(worst.labels)}; {len(series)} series)"
    value = worst.value if worst else None
    since = previous.since if previous is not None and not changed else now
    return RuleStatus(rule, state, value, since, reason, series, was if changed else None, error)


def _same_series(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):  # noqa: SIM110 (a plain loop: this runs every cycle, all() is slower)
        if x is not y:
            return False
    return True


def _magnitude(rule: Rule, value) -> float:
    """Orders series of equal state so the one furthest past the threshold is reported."""
    if value is None or math.isnan(value):
        return -math.inf
    return -value if rule.below is not None else value
