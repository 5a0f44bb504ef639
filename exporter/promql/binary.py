"""Binary operators: arithmetic, comparisons and set operators, with vector matching."""

import math
import operator
from typing import Any

from . import labels as L
from .errors import PromQLError
from .numeric import div, mod, power

ARITHMETIC = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": div,
    "%": mod,
    "^": power,
    "atan2": math.atan2,
}
COMPARISON = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
SET_OPERATORS = ("and", "or", "unless")

COLLISION = "vector cannot contain metrics with the same labelset"


# Label sets seen by one matching, remembered with their signature: the same series come
# every cycle. The cap keeps label churn from growing it without bound.
_SIGNATURE_CACHE_LIMIT = 4096


class Matching:
    """How two vectors are joined: on/ignoring labels, cardinality and group_x labels."""

    __slots__ = ("card", "on", "names", "include", "_name_set", "_ignored", "_signatures")

    def __init__(self, card: str, on: bool, names: list[str], include: list[str]):
        self.card = card  # "one-to-one", "many-to-one", "one-to-many", "many-to-many"
        self.on = on
        self.names = tuple(sorted(set(names)))
        self.include = tuple(include)
        self._name_set = frozenset(self.names)
        self._ignored = frozenset(self.names) | {L.NAME}
        self._signatures: dict = {}

    def signature(self, labels: tuple) -> tuple:
        found = self._signatures.get(labels)
        if found is None:
            if self.on:
                found = tuple(p for p in labels if p[0] in self._name_set)
            else:
                found = tuple(p for p in labels if p[0] not in self._ignored)
            if len(self._signatures) >= _SIGNATURE_CACHE_LIMIT:
                self._signatures.clear()
            self._signatures[labels] = found
        return found

    def match_labels(self, labels: tuple) -> tuple:
        return self.signature(labels)


def scalar_scalar(op: str, a: float, b: float) -> float:
    fn = ARITHMETIC.get(op)
    if fn is not None:
        return fn(a, b)
    return 1.0 if COMPARISON[op](a, b) else 0.0


def vector_scalar(op: str, vector: list, scalar: float, scalar_left: bool, return_bool: bool) -> list:
    out = []
    fn = ARITHMETIC.get(op)
    if fn is not None:
        for labels, v in vector:
            value = fn(scalar, v) if scalar_left else fn(v, scalar)
            out.append((L.drop_name(labels), value))
        return out
    test = COMPARISON[op]
    for labels, v in vector:
        keep = test(scalar, v) if scalar_left else test(v, scalar)
        if return_bool:
            out.append((L.drop_name(labels), 1.0 if keep else 0.0))
        elif keep:
            # A comparison filters: the vector element keeps its own value and name.
            out.append((labels, v))
    return out


def vector_vector(op: str, lhs: list, rhs: list, matching: Matching, return_bool: bool) -> list:
    if not lhs or not rhs:
        return []
    card = matching.card
    if card == "one-to-many":
        lhs, rhs = rhs, lhs
    sig = matching.signature
    right: dict = {}
    for labels, v in rhs:
        key = sig(labels)
        if key in right:
            side = "left" if card == "one-to-many" else "right"
            pair = sorted([L.show(labels), L.show(right[key][0])])
            raise PromQLError(
                f"found duplicate series for the match group {L.show(matching.match_labels(labels))} "
                f"on the {side} hand-side of the operation: [{pair[0]}, {pair[1]}]"
                ";many-to-many matching not allowed: matching labels must be unique on one side"
            )
        right[key] = (labels, v)

    arithmetic = ARITHMETIC.get(op)
    test: Any = COMPARISON.get(op)  # set whenever arithmetic is not
    swapped = card == "one-to-many"
    matched: dict = {}
    out = []
    for labels, v in lhs:
        key = sig(labels)
        found = right.get(key)
        if found is None:
            continue
        r_labels, r_value = found
        fl, fr = (r_value, v) if swapped else (v, r_value)
        if arithmetic is not None:
            value, keep = arithmetic(fl, fr), True
        else:
            value, keep = fl, test(fl, fr)
        if return_bool:
            value, keep_out = (1.0 if keep else 0.0), True
        else:
            keep_out = keep
        metric = _result_labels(labels, r_labels, arithmetic is not None, matching)
        if return_bool:
            metric = L.drop_name(metric)
        if card == "one-to-one":
            if key in matched:
                raise PromQLError(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                )
            matched[key] = None
        else:
            seen = matched.setdefault(key, set())
            if metric in seen:
                raise PromQLError("multiple matches for labels: grouping labels must ensure unique matches")
            seen.add(metric)
        if keep_out:
            out.append((metric, value))
    return out


def _result_labels(lhs: tuple, rhs: tuple, changes_meaning: bool, matching: Matching) -> tuple:
    result = L.drop_name(lhs) if changes_meaning else lhs
    if matching.card == "one-to-one":
        if matching.on:
            result = L.keep_only(result, matching._name_set)
        else:
            result = L.without(result, matching._name_set)
    for name in matching.include:
        # group_left/group_right copy these labels from the "one" side.
        result = L.with_label(result, name, L.get(rhs, name))
    return result


def set_operation(op: str, lhs: list, rhs: list, matching: Matching) -> list:
    sig = matching.signature
    if op == "and":
        if not lhs or not rhs:
            return []
        present = {sig(labels) for labels, _ in rhs}
        return [s for s in lhs if sig(s[0]) in present]
    if op == "or":
        if not lhs:
            return list(rhs)
        if not rhs:
            return list(lhs)
        present = {sig(labels) for labels, _ in lhs}
        return list(lhs) + [s for s in rhs if sig(s[0]) not in present]
    if not lhs or not rhs:
        return list(lhs)
    present = {sig(labels) for labels, _ in rhs}
    return [s for s in lhs if sig(s[0]) not in present]
