"""A PromQL subset evaluated over the sidecar's own sample history.

Parsing is done by the `promql_parser` package; this package checks the subset and
evaluates with Prometheus' semantics (lookback and staleness for instant selectors,
extrapolated rate/increase/delta, vector matching, comparison filters, name dropping).
See docs/promql-subset.md for what is supported and what is rejected.
"""

from dataclasses import dataclass, field
from typing import Any

from .compiler import SUPPORTED_FUNCTIONS, compile_tree
from .errors import PromQLError
from .selectors import Ctx

__all__ = ["PromQLError", "CompiledExpr", "compile_expr", "evaluate", "selects_any", "SUPPORTED_FUNCTIONS"]


@dataclass(frozen=True)
class CompiledExpr:
    text: str
    metric_names: frozenset[str] | None  # exact sample names read; None if some selector has no exact __name__
    max_range_seconds: float  # how far back any selector reads (range + offset); 0 if none
    value_type: str  # "vector" or "scalar"
    root: Any = field(default=None, repr=False, compare=False)  # a nodes.* tree
    selectors: tuple = field(default=(), repr=False, compare=False)


def compile_expr(text: str) -> CompiledExpr:
    """Parse and check `text`; raise PromQLError naming the problem if it is outside the subset."""
    if not isinstance(text, str) or not text.strip():
        raise PromQLError("empty expression")
    root, info = compile_tree(text)
    names = frozenset(info.names) if info.names is not None else None
    return CompiledExpr(
        text=text,
        metric_names=names,
        max_range_seconds=float(info.max_range),
        value_type=root.kind,
        root=root,
        selectors=tuple(info.selectors),
    )


def evaluate(expr: CompiledExpr, history, at: float, lookback: float = 300.0):
    """Instant evaluation at time `at`. Vector -> list of (labels, value); scalar -> float.

    Raises PromQLError for the run-time errors Prometheus reports (label-set collisions,
    many-to-one matches without group_left/group_right)."""
    return expr.root.eval(Ctx(history, float(at), float(lookback)))


def selects_any(expr: CompiledExpr, label_sets) -> bool:
    """Whether any selector of `expr` would select one of the given label sets."""
    maps = [dict(labels) for labels in label_sets]
    for selector in expr.selectors:
        for m in maps:
            if (selector.name is None or m.get("__name__") == selector.name) and selector.matches(m):
                return True
    return False
