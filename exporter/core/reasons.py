"""The reason texts of rule states ("value 17 > threshold 15 for 3s of 10s"), kept apart from
the state machine in engine.py so that one reads as transitions only."""

import math

# The engine's state names, as literals here so this module needs nothing from engine.py.
_PENDING, _RECOVERING = "pending", "recovering"
_CONDITION_ON = ("pending", "firing")


def series_reason(rule, state: str, value, now: float, active_since, cleared_at) -> str:
    if value is None and state == "ok":
        return "no data"
    if state == _RECOVERING:
        return f"cleared {_duration(now - cleared_at)} ago, keeps firing for {_duration(rule.keep_firing_for_seconds)}"
    text = _compare_text(rule, value, state in _CONDITION_ON)
    if state == _PENDING:
        text += f" for {_duration(now - active_since)} of {_duration(rule.for_seconds)}"
    return text


def _compare_text(rule, value, on: bool) -> str:
    if value is None:
        return "no data; on_missing unready" if on else "no data"
    shown = format_value(value)
    if not rule.is_threshold:
        return f"expression returned a value ({shown})" if on else "expression returned nothing"
    if rule.above is not None:
        if on:
            if value > rule.above:
                return f"value {shown} > threshold {format_value(rule.above)}"
            return f"value {shown} not yet < recover threshold {format_value(rule.recover_below)}"
        if rule.recover_below is not None and value < rule.recover_below:
            # what let a firing rule go: "11 <= 15" would hide that 14 would not have
            return f"value {shown} < recover threshold {format_value(rule.recover_below)}"
        return f"value {shown} <= threshold {format_value(rule.above)}"
    if on:
        if value < rule.below:
            return f"value {shown} < threshold {format_value(rule.below)}"
        return f"value {shown} not yet > recover threshold {format_value(rule.recover_above)}"
    if rule.recover_above is not None and value > rule.recover_above:
        return f"value {shown} > recover threshold {format_value(rule.recover_above)}"
    return f"value {shown} >= threshold {format_value(rule.below)}"


def format_value(value: float | None) -> str:
    if value is None:
        return "none"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:g}s" if seconds == int(seconds) else f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs}s" if secs else f"{minutes}m"


def label_text(labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
