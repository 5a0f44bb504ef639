"""Rule files -> RuleSet: strict YAML, then the JSON Schema, then what a schema cannot say.

Every problem in every file is collected before anything is raised, so an operator fixing a
ConfigMap sees the whole list at once, each line in promtool's shape
`file:line:col: rule "name": message`. `llm-healthcheck check` and a runtime reload call the
same load_rules, so they can never disagree.
"""

import hashlib
import math
import os
from collections.abc import Sequence

from exporter.config.bounds import duration_problem
from exporter.config.durations import format_duration, parse_duration
from exporter.config.errors import ConfigError, Problem
from exporter.config.numbers import is_finite_number, not_finite_reason
from exporter.config.scrape_config import ScrapeConfig, timeout_problem
from exporter.config.urls import check_url, redact_url
from exporter.config.yamldoc import parse_document
from exporter.promql import PromQLError, compile_expr
from exporter.rules import files as rule_files
from exporter.rules.content_hash import rules_sha256
from exporter.rules.file_context import FileContext
from exporter.rules.fleet_block import FleetBlock, fleet_reference_problems
from exporter.rules.model import Rule, RuleSet
from exporter.rules.schema_problems import DURATION_KEYS, lower_first, schema_problems, surprise_problems
from exporter.rules.score import load_score_block, merge_scores

# The evaluator keeps history in memory for the longest range any rule reads; capping it keeps
# that memory bounded whatever a rule asks for. `for` and `keep_firing_for` share the cap so a
# rule cannot hold a pod out for longer than an operator would notice.
MAX_RANGE_SECONDS = 3600
# Rule files are a few kilobytes; anything near this is a mistake (a log, a binary) and
# reading it whole would let a bad ConfigMap exhaust the sidecar's memory.
MAX_FILE_BYTES = rule_files.MAX_FILE_BYTES


def resolve_rule_files(path: str) -> list[str]:
    """A file stays itself; a directory gives its *.yaml/*.yml files, sorted, not recursing.

    Hidden entries are skipped: a ConfigMap volume holds `..data` and `..2026_...` directories
    besides the top-level symlinks that point into them, and only the symlinks are the files."""
    if os.path.isdir(path):
        names = sorted(
            name
            for name in os.listdir(path)
            if not name.startswith(".")
            and name.endswith((".yaml", ".yml"))
            and not os.path.isdir(os.path.join(path, name))
        )
        if not names:
            raise ConfigError([Problem(path, message="no *.yaml or *.yml rule files in this directory")])
        return [os.path.join(path, name) for name in names]
    if not os.path.lexists(path):
        raise ConfigError([Problem(path, message="no such file or directory")])
    return [path]


def load_rules(paths: Sequence[str]) -> RuleSet:
    """Load every file (directories expanded) into one RuleSet, or raise ConfigError with every problem."""
    if isinstance(paths, str):
        paths = [paths]
    problems: list[Problem] = []
    files: list[str] = []
    for path in paths:
        try:
            files.extend(resolve_rule_files(path))
        except ConfigError as err:
            problems.extend(err.problems)
    contents: list[bytes] = []
    loader = _Loader()
    for file in files:
        data, error = _read_capped(file)
        contents.append(data)
        if error:
            problems.append(Problem(file, message=error))
            continue
        loader.load_file(file, data)
    problems.extend(loader.problems)
    problems.extend(fleet_reference_problems(loader.rules_at, loader.fleet.config))
    if files and not problems and not loader.rules:
        problems.append(Problem(files[0], message="no rules defined: rules: is empty or missing in every file"))
    if problems:
        raise ConfigError(problems)
    scrape = loader.scrape or ScrapeConfig()
    return RuleSet(
        tuple(loader.rules),
        scrape,
        rules_sha256(contents),
        tuple(files),
        fleet=loader.fleet.config,
        score=merge_scores(loader.scores),
    )


def seed_ruleset(metric: str, threshold: float) -> RuleSet:
    """The seed sidecar's behaviour as one rule: unready while sum(metric) > threshold."""
    where = "env METRIC_TO_CHECK"
    expr_text = f"sum({metric})"
    try:
        expr = compile_expr(expr_text)
    except PromQLError as err:
        raise ConfigError([Problem(where, message=f'"{metric}" is not a usable metric name: {err}')]) from None
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ConfigError([Problem("env METRIC_THRESHOLD", message=f'"{threshold}" is not a finite number')])
    rule = Rule(
        name=metric,
        expr_text=expr_text,
        expr=expr,
        above=threshold,
        description=f"seed mode: unready while the sum of {metric} is above {threshold:g}",
        source=where,
    )
    digest = hashlib.sha256(f"seed\0{metric}\0{threshold!r}".encode()).hexdigest()
    return RuleSet((rule,), ScrapeConfig(), digest, ())


def _read_capped(file: str) -> tuple[bytes, str]:
    data, error = rule_files.read_capped(file, MAX_FILE_BYTES)
    return data, error or rule_files.too_large(data, MAX_FILE_BYTES)


class _Loader:
    """Accumulates rules, the scrape block and problems across files, in order."""

    def __init__(self):
        self.rules: list[Rule] = []
        self.problems: list[Problem] = []
        self.scrape: ScrapeConfig | None = None
        self._scrape_at = ""
        self.scores: list = []  # (file stem, ScoreSpec) per file with a score block
        self._names: dict[str, str] = {}  # name -> "file:line" of its first definition
        self.fleet = FleetBlock()  # the one fleet: block of all the files, if any
        self.rules_at: list = []  # (rule, (file, line, col) of its expr), for checks across files

    def load_file(self, file: str, data: bytes) -> None:
        problems: list[Problem] = []
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
            self.problems.append(Problem(file, line, col, message="not UTF-8 text; save the file as UTF-8"))
            return
        doc = parse_document(text)
        ctx = FileContext(file, doc, problems)
        for yp in doc.problems:
            problems.append(Problem(file, yp.line, yp.col, ctx.rule_at_line(yp.line), yp.message))
        if doc.value is not None:
            bad_paths = schema_problems(ctx)
            surprise_problems(ctx, bad_paths)
            if isinstance(doc.value, dict):
                self._load_scrape(ctx, bad_paths)
                self.fleet.load(ctx, bad_paths)
                self._load_score(ctx, bad_paths)
                rules = doc.value.get("rules")
                for index, entry in enumerate(rules if isinstance(rules, list) else []):
                    if isinstance(entry, dict):
                        self._load_rule(ctx, index, entry, bad_paths)
        # Source order within a file (stable, so problems at one spot keep their order).
        self.problems.extend(sorted(problems, key=lambda p: (p.line, p.col)))

    def _load_scrape(self, ctx, bad_paths) -> None:
        block = ctx.doc.value.get("scrape")
        if not isinstance(block, dict):
            return
        here = ctx.where(("scrape",), key=True)
        if self.scrape is not None:
            ctx.add(("scrape",), f"only one file may have a scrape block; the first is at {self._scrape_at}", key=True)
            return
        self._scrape_at = here
        values: dict = {}
        for key, value in block.items():
            if ("scrape", key) in bad_paths:
                continue
            values[key] = _duration_seconds(value) if key in DURATION_KEYS else value
        interval, timeout = values.get("interval"), values.get("timeout")
        if isinstance(values.get("endpoint"), str) and check_url(values["endpoint"]):
            url = values.pop("endpoint")
            ctx.add(("scrape", "endpoint"), f'endpoint: "{redact_url(url)}" {check_url(url)}')
        out_of_range = False
        for key in ("interval", "timeout"):
            problem = duration_problem(key, values[key]) if values.get(key) is not None else None
            if problem:
                ctx.add(("scrape", key), f"{key}: {ctx.shown(('scrape', key))} {problem}")
                out_of_range = True
        if not out_of_range and timeout is not None and interval:
            overlap = timeout_problem(
                timeout, interval, ctx.shown(("scrape", "timeout")), ctx.shown(("scrape", "interval"))
            )
            if overlap:
                ctx.add(("scrape", "timeout"), overlap)
        self.scrape = ScrapeConfig(**values)

    def _load_score(self, ctx, bad_paths) -> None:
        block = ctx.doc.value.get("score")
        if isinstance(block, dict) and not any(path[:1] == ("score",) for path in bad_paths):
            spec = load_score_block(ctx, block, MAX_RANGE_SECONDS)
            if spec is not None:
                self.scores.append((os.path.splitext(os.path.basename(ctx.file))[0], spec))

    def _load_rule(self, ctx, index: int, entry: dict, bad_paths) -> None:
        base = ("rules", index)
        ok = {key: value for key, value in entry.items() if base + (key,) not in bad_paths}
        failed_before = len(ctx.problems)
        name = ok.get("name")
        if isinstance(name, str):
            first = self._names.get(name)
            if first:
                ctx.add(base + ("name",), f'name "{name}" is already used by the rule at {first}')
            else:
                self._names[name] = ctx.where(base, key=False, line_only=True)
        compiled = self._compile(ctx, base, ok)
        self._check_thresholds(ctx, base, ok)
        seconds = {}
        for key in ("for", "keep_firing_for"):
            if key in ok:
                seconds[key] = _duration_seconds(ok[key])
                if seconds[key] > MAX_RANGE_SECONDS:
                    ctx.add(
                        base + (key,),
                        f"{key}: {ctx.shown(base + (key,))} is longer than the "
                        f"{format_duration(MAX_RANGE_SECONDS)} limit",
                    )
        if compiled is not None and "above" not in entry and "below" not in entry and compiled.value_type == "scalar":
            ctx.add(
                base + ("expr",),
                "expr: a condition rule (no above or below) needs an expression that "
                "returns series, and this one returns a scalar; add above or below",
            )
        if len(ctx.problems) > failed_before or set(ok) != set(entry) or compiled is None or not isinstance(name, str):
            return
        self.rules.append(
            Rule(
                name=name,
                expr_text=ok["expr"],
                expr=compiled,
                above=_float(ok.get("above")),
                below=_float(ok.get("below")),
                recover_below=_float(ok.get("recover_below")),
                recover_above=_float(ok.get("recover_above")),
                for_seconds=seconds.get("for", 0.0),
                keep_firing_for_seconds=seconds.get("keep_firing_for", 0.0),
                severity=ok.get("severity", "unready"),
                on_missing=ok.get("on_missing", "ok"),
                hard_failure=ok.get("hard_failure", False),
                description=ok.get("description", "").strip(),
                source=ctx.where(base, key=False, line_only=True),
                expr_source=ctx.where(base + ("expr",)),
            )
        )
        self.rules_at.append((self.rules[-1], (ctx.file, *ctx.position(base + ("expr",)))))

    def _compile(self, ctx, base, ok):
        text = ok.get("expr")
        if not isinstance(text, str):
            return None
        path = base + ("expr",)
        try:
            compiled = compile_expr(text)
        except PromQLError as err:
            ctx.add(path, f"expr: {lower_first(str(err))}")
            return None
        if compiled.max_range_seconds > MAX_RANGE_SECONDS:
            ctx.add(
                path,
                f"expr: reads a range of {format_duration(compiled.max_range_seconds)}, longer than the "
                f"{format_duration(MAX_RANGE_SECONDS)} of history the sidecar keeps",
            )
            return None
        return compiled

    def _check_thresholds(self, ctx, base, ok) -> None:
        for key in ("above", "below", "recover_below", "recover_above"):
            if key in ok and not is_finite_number(ok[key]):
                ctx.add(base + (key,), f"{key}: {ctx.shown(base + (key,))} {not_finite_reason(ok[key])}")
                ok.pop(key)
        if "above" in ok and "below" in ok:
            ctx.add(base + ("below",), "below: a rule has either above or below, not both; write two rules", key=True)
            return
        pairs = (
            ("recover_below", "above", "recover_above", lambda r, t: r <= t, "greater", "below"),
            ("recover_above", "below", "recover_below", lambda r, t: r >= t, "less", "above"),
        )
        for key, trip, other, fits, wrong, side in pairs:
            if key not in ok:
                continue
            if trip not in ok:
                other_trip = "below" if trip == "above" else "above"
                hint = f"; with {other_trip} use {other}" if other_trip in ok else ""
                ctx.add(
                    base + (key,), f"{key} needs {trip} (it is where a rule tripped by {trip} clears){hint}", key=True
                )
            elif not fits(ok[key], ok[trip]):
                ctx.add(
                    base + (key,),
                    f"{key}: {ctx.shown(base + (key,))} must not be {wrong} than {trip} "
                    f"({ctx.shown(base + (trip,))}); the band lies {side} the trip threshold",
                )


def _duration_seconds(value) -> float:
    return 0.0 if value == 0 else parse_duration(value)


def _float(value):
    return None if value is None else float(value)
