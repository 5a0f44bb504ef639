"""One line per rule for /health?verbose and `eval`, saying what a user needs at a glance:

    [-] queue_high: firing for 42s: sum(tgi_queue_size) = 37 > 15 (recovers below 6)
    [+] queue_warn: ok: sum(tgi_queue_size) = 3 <= 5
    [+] kv_full: ok: no data (max(vllm:kv_cache_usage_perc) returned no series)

`[-]` marks what holds the pod out (an unready-severity rule firing or recovering), `[+]`
everything else; the state, how long it has lasted, the expression with its value and the
thresholds it is compared with follow.
"""

import math

from exporter.core.engine import FIRING, PENDING, RECOVERING, format_value


def rule_line(status, now: float) -> str:
    rule = status.rule
    mark = "-" if status.blocking else "+"
    state = status.state
    lasted = _duration(now - status.since)
    if state == PENDING:
        head = f"{state} for {lasted} of {_duration(rule.for_seconds)}"
    elif state in (FIRING, RECOVERING):
        head = f"{state} for {lasted}"
    else:
        head = state
    if rule.severity != "unready":
        head += f" (severity {rule.severity})"
    if status.error is not None:
        return f"[{mark}] {rule.name}: {head}: evaluation error, state held: {status.error}"
    body = _body(status)
    if state == RECOVERING:
        body += f"; {status.reason}"
    return f"[{mark}] {rule.name}: {head}: {body}"


def reload_line(decision) -> str | None:
    """Shown only after a failed reload: the pod keeps its previous rules, which is why it is
    marked [!] rather than [-] (readiness does not change)."""
    reload = decision.reload
    if reload.last_ok:
        return None
    first = reload.last_error.splitlines()[0] if reload.last_error else "unknown error"
    more = reload.last_error.count("\n")
    extra = f" (+{more} more problem{'s' if more > 1 else ''}; see the log)" if more else ""
    return f"[!] reload: the last reload of the rule files failed, the previous rules stay in force: {first}{extra}"


def _body(status) -> str:
    rule = status.rule
    expr = " ".join(rule.expr_text.split())
    value = status.value
    on = status.state in (PENDING, FIRING)
    if value is None and not status.no_data:
        return status.reason  # not evaluated yet, or held while scrapes fail
    if value is None:
        why = f"{expr} returned no series"
        if on:
            why += f"; on_missing {rule.on_missing}"
        return f"no data ({why})"
    shown = format_value(value) + _labels(status)
    if not rule.is_threshold:
        if on or status.state == RECOVERING:
            return f"{expr} returned series (value {shown})"
        return f"condition false ({expr}; filtered value {shown})"
    if rule.above is not None:
        trip, band, over, under, past = rule.above, rule.recover_below, ">", "<=", "below"
        tripped = not math.isnan(value) and value > trip
    else:
        trip, band, over, under, past = rule.below, rule.recover_above, "<", ">=", "above"
        tripped = not math.isnan(value) and value < trip
    recovers = f" (recovers {past} {format_value(band)})" if band is not None else ""
    if on and tripped:
        return f"{expr} = {shown} {over} {format_value(trip)}{recovers}"
    if on:  # inside the recover band: still on until it crosses the recover threshold
        direction = ">=" if rule.above is not None else "<="
        side = "above" if rule.above is not None else "below"
        return (
            f"{expr} = {shown} {direction} {format_value(band)} (tripped {side} {format_value(trip)}, "
            f"recovers {past} {format_value(band)})"
        )
    if status.state == RECOVERING:
        return f"{expr} = {shown} {under} {format_value(trip)}{recovers}"
    return f"{expr} = {shown} {under} {format_value(trip)}"


def _labels(status) -> str:
    if len(status.series) <= 1:
        return ""
    for s in status.series:
        if s.state == status.state and s.value is status.value:
            text = ", ".join(f'{k}="{v}"' for k, v in s.labels)
            return f" at {{{text}}}, {len(status.series)} series"
    return f", {len(status.series)} series"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m{secs}s" if secs else f"{minutes}m"
