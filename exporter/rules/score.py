"""The `score:` section of a rule file: a load score in [0, 1] for utilization-based balancers.

    score:
      description: roofline of queue and batch occupancy
      params:                     # named capacities, written $name in the terms
        - {name: queue_capacity, value: 16, description: waiting requests that count as full}
        - {name: max_batch, value: 128, description: --max-concurrent-requests}
      terms:                      # the score is the largest term (a roofline), clamped to [0, 1]
        - {name: queue, expr: sum(tgi_queue_size) / $queue_capacity}
        - {name: batch, expr: sum(tgi_batch_current_size) / $max_batch}
      on_missing: 1               # no term returned data (default 1: "full")
      on_stale: 1                 # no fresh scrape: upstream down, starting, terminating (default 1)

`expr:` instead of `terms:` gives the score as one PromQL expression. Several loaded files
with a score block make one roofline of all their terms (named file.term); a term whose
engine is not there returns nothing and is left out. This module holds the compiled shape
and reads the block; exporter.core.load_score evaluates it.
"""

import math
import re
from dataclasses import dataclass, field

from exporter.promql import CompiledExpr, PromQLError, compile_expr

# What a balancer should assume about a pod it cannot see into: full, so traffic moves away.
DEFAULT_ON_MISSING = 1.0
DEFAULT_ON_STALE = 1.0
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class ScoreTerm:
    name: str
    expr_text: str  # as written, with $params
    expr: CompiledExpr = field(compare=False)  # of the substituted text
    description: str = ""


@dataclass(frozen=True)
class ScoreParam:
    name: str
    value: float
    description: str = ""


@dataclass(frozen=True)
class ScoreSpec:
    terms: tuple[ScoreTerm, ...]
    params: tuple[ScoreParam, ...] = ()
    on_missing: float = DEFAULT_ON_MISSING
    on_stale: float = DEFAULT_ON_STALE
    description: str = ""
    source: str = ""  # "file:line"

    @property
    def metric_names(self) -> frozenset[str] | None:
        names: set[str] = set()
        for term in self.terms:
            if term.expr.metric_names is None:
                return None
            names |= term.expr.metric_names
        return frozenset(names)

    @property
    def max_range_seconds(self) -> float:
        return max((term.expr.max_range_seconds for term in self.terms), default=0.0)


def substitute(text: str, params: dict) -> tuple[str, list[str]]:
    """`text` with each $name replaced by its number; also the names that are not defined."""
    unknown: list[str] = []

    def number(match):
        name = match.group(1)
        if name not in params:
            unknown.append(name)
            return match.group(0)
        return repr(float(params[name]))

    return _PARAM.sub(number, text), unknown


def load_score_block(ctx, block: dict, max_range_seconds: float) -> ScoreSpec | None:
    """Check the `score:` mapping of one file (already through the JSON Schema); None on any problem.

    `ctx` is the loader's per-file context: ctx.add(path, message, key=...), ctx.where, ctx.shown."""
    failed = len(ctx.problems)
    base: tuple = ("score",)
    has_terms, has_expr = "terms" in block, "expr" in block
    if has_terms == has_expr:
        ctx.add(base, "score: give either terms (a roofline: the largest term wins) or expr, not both", key=True)
        return None
    entries = [(e, ("name", "value")) for e in block.get("params") or []]
    entries += [(e, ("name", "expr")) for e in block.get("terms") or []]
    if any(not isinstance(e, dict) or any(key not in e for key in keys) for e, keys in entries):
        return None  # a required key is missing: the schema check has said which, at its line
    params: dict[str, ScoreParam] = {}
    for index, entry in enumerate(block.get("params") or []):
        path: tuple = base + ("params", index)
        name, value = entry["name"], entry["value"]
        if name in params:
            ctx.add(path + ("name",), f'score.params: name "{name}" is given twice')
        elif not math.isfinite(value) or value <= 0:
            shown = ctx.shown(path + ("value",))
            ctx.add(path + ("value",), f'score.params "{name}": value {shown} must be a positive finite number')
        params[name] = ScoreParam(name, float(value), str(entry.get("description", "")).strip())
    for key in ("on_missing", "on_stale"):
        value = block.get(key)
        if value is not None and not 0 <= value <= 1:
            ctx.add(base + (key,), f"score.{key}: {ctx.shown(base + (key,))} must be a number from 0 to 1")
    written = block["terms"] if has_terms else [{"name": "expr", "expr": block["expr"]}]
    values = {name: param.value for name, param in params.items()}
    used: set[str] = set()
    terms, names = [], set()
    for index, entry in enumerate(written):
        path = base + ("terms", index, "expr") if has_terms else base + ("expr",)
        name, text = entry["name"], entry["expr"]
        label = f'score.terms "{name}"' if has_terms else "score.expr"
        if name in names:
            ctx.add(base + ("terms", index, "name"), f'score.terms: name "{name}" is given twice')
        names.add(name)
        used |= set(_PARAM.findall(text))
        substituted, unknown = substitute(text, values)
        if unknown:
            known = ", ".join(f"${p}" for p in params) or "none"
            ctx.add(path, f"{label}: unknown parameter ${unknown[0]}; defined in score.params: {known}")
            continue
        try:
            compiled = compile_expr(substituted)
        except PromQLError as err:
            ctx.add(path, f"{label}: {str(err)[:1].lower()}{str(err)[1:]}")
            continue
        if compiled.max_range_seconds > max_range_seconds:
            ctx.add(path, f"{label}: reads further back than the {max_range_seconds:g}s of history the sidecar keeps")
            continue
        terms.append(ScoreTerm(name, text, compiled, str(entry.get("description", "")).strip()))
    for index, name in enumerate(params):
        if name not in used:
            ctx.add(
                base + ("params", index, "name"),
                f'score.params "{name}": not used by any term; use ${name} or remove it',
            )
    if len(ctx.problems) > failed:
        return None
    return ScoreSpec(
        tuple(terms),
        tuple(params.values()),
        float(block.get("on_missing", DEFAULT_ON_MISSING)),
        float(block.get("on_stale", DEFAULT_ON_STALE)),
        str(block.get("description", "")).strip(),
        ctx.where(base, key=True, line_only=True),
    )


def merge_scores(scores: list) -> ScoreSpec | None:
    """One file's score as it is; several files' as one roofline of every term, named file.term,
    with the most cautious (largest) on_missing and on_stale."""
    if len(scores) <= 1:
        return scores[0][1] if scores else None
    terms, params = [], []
    for stem, spec in scores:
        terms += [ScoreTerm(f"{stem}.{t.name}", t.expr_text, t.expr, t.description) for t in spec.terms]
        params += [ScoreParam(f"{stem}.{p.name}", p.value, p.description) for p in spec.params]
    return ScoreSpec(
        tuple(terms),
        tuple(params),
        max(spec.on_missing for _, spec in scores),
        max(spec.on_stale for _, spec in scores),
        "; ".join(spec.description for _, spec in scores if spec.description),
        ", ".join(spec.source for _, spec in scores),
    )
