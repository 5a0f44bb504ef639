"""Structured fields for the log lines about rules, so JSON logs can be filtered and graphed
(`rule`, `state`, `value`, `threshold`, `reason`) instead of parsed out of the message."""

from exporter.serve.explain import BOUNDS

# Every field a log record may carry besides the message; JsonFormatter copies those present.
FIELDS = ("rule", "severity", "state", "previous_state", "value", "threshold", "thresholds", "reason", "absent")


def transition_fields(status) -> dict:
    rule = status.rule
    trip = rule.above if rule.above is not None else rule.below
    return {
        "rule": rule.name,
        "severity": rule.severity,
        "state": status.state,
        "previous_state": status.previous_state,
        "value": status.value,
        "threshold": trip,
        "thresholds": {bound: getattr(rule, bound) for bound in BOUNDS if getattr(rule, bound) is not None},
        "reason": status.reason,
    }
