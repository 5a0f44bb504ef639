"""Telling "the condition is false" from "there is no data" for condition-form rules.

A condition rule (`sum(q) > 10`, `a > 0 and b == 0`) returns nothing both when its comparison
filters every series out and when the metric is absent or misspelt. The first is a healthy,
ordinary `ok` with a value worth showing; the second is "no data", which is exported
(`rule_no_data`), logged and alerted on. The difference is whether the operand the filter
looked at had series: for a top-level comparison that is its vector side, for `and`/`unless`
the left-hand side, for `or` either side.
"""

from exporter.promql import PromQLError
from exporter.promql.binary import COMPARISON
from exporter.promql.nodes import VectorBinary, VectorScalarBinary
from exporter.promql.selectors import Ctx


def probes(root) -> tuple:
    """The operand nodes whose series say "there is data" when `root` returns nothing.

    Empty when the expression is not a filter (an empty result then is no data)."""
    if isinstance(root, VectorScalarBinary) and root.op in COMPARISON and not root.return_bool:
        return (root.vector,)
    if isinstance(root, VectorBinary):
        if root.op in COMPARISON and not root.return_bool:
            return (root.lhs,)
        if root.op in ("and", "unless"):
            return probes(root.lhs) or (root.lhs,)
        if root.op == "or":
            return (probes(root.lhs) or (root.lhs,)) + (probes(root.rhs) or (root.rhs,))
    return ()


def filtered_value(rule, history, now: float, lookback: float) -> float | None:
    """For a condition rule whose result is empty: the value its filter saw (the largest, when
    several series), or None when the operands are empty too (really no data)."""
    if rule.is_threshold:
        return None
    nodes = _probes_of(rule.expr)
    if not nodes:
        return None
    ctx = Ctx(history, float(now), float(lookback))
    values: list[float] = []
    for node in nodes:
        try:
            result = node.eval(ctx)
        except PromQLError:
            continue
        values.extend(value for _, value in result)
    return max(values, default=None, key=lambda v: (v == v, v))  # any number wins over NaN


_PROBES: dict = {}


def _probes_of(expr) -> tuple:
    found = _PROBES.get(expr.text)
    if found is None:
        if len(_PROBES) > 256:
            _PROBES.clear()
        found = _PROBES[expr.text] = probes(expr.root)
    return found
