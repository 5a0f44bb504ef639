"""Rule files -> RuleSet: strict YAML, then the JSON Schema, then what a schema cannot say.

Every problem in every file is collected before anything is raised, so an operator fixing a
ConfigMap sees the whole list at once, each line in promtool's shape
`file:line:col: rule "name": message`. `llm-healthcheck check` and a runtime reload call the
same load_rules, so they can never disagree.
"""

import difflib
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources

import jsonschema

from exporter.config.bounds import duration_problem
from exporter.config.durations import format_duration, parse_duration
from exporter.config.errors import ConfigError, Problem
from exporter.config.numbers import is_finite_number, not_finite_reason
from exporter.config.scrape_config import ScrapeConfig, timeout_problem
from exporter.config.urls import check_url, redact_url
from exporter.config.yamldoc import Document, parse_document, surprise_hint, surprising_number
from exporter.promql import PromQLError, compile_expr
from exporter.rules import files as rule_files
from exporter.rules.content_hash import rules_sha256
from exporter.rules.fleet_block import FleetBlock, fleet_reference_problems
from exporter.rules.model import Rule, RuleSet
from exporter.rules.score import load_score_block, merge_scores

# The evaluator keeps history in memory for the longest range any rule reads; capping it keeps
# that memory bounded whatever a rule asks for. `for` and `keep_firing_for` share the cap so a
# rule cannot hold a pod out for longer than an operator would notice.
MAX_RANGE_SECONDS = 3600
# Rule files are a few kilobytes; anything near this is a mistake (a log, a binary) and
# reading it whole would let a bad ConfigMap exhaust the sidecar's memory.
MAX_FILE_BYTES = rule_files.MAX_FILE_BYTES

_DURATION_KEYS = frozenset({"for", "keep_firing_for", "interval", "timeout", "max_age"})
_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
}
# Keys people bring from Prometheus alerting rules or guess from the word "threshold".
_KEY_HINTS = {
    "threshold": "above or below",
    "alert": "name",
    "expression": "expr",
    "query": "expr",
    "annotations": "description",
    "summary": "description",
    "keep_firing": "keep_firing_for",
    "recover": "recover_below or recover_above",
    "url": "endpoint",
    "scrape_interval": "interval",
    "scrape_timeout": "timeout",
    "groups": "rules",
}


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


@cache
def load_schema() -> dict:
    """The rule-file JSON Schema shipped inside the package (a copy of schemas/rules.schema.json)."""
    return json.loads(resources.files("exporter").joinpath("data/rules.schema.json").read_text("utf-8"))


@cache
def _validator():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


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
        ctx = _FileContext(file, doc, problems)
        for yp in doc.problems:
            problems.append(Problem(file, yp.line, yp.col, ctx.rule_at_line(yp.line), yp.message))
        if doc.value is not None:
            bad_paths = _schema_problems(ctx)
            _surprise_problems(ctx, bad_paths)
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
            values[key] = _duration_seconds(value) if key in _DURATION_KEYS else value
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
            ctx.add(path, f"expr: {_lower_first(str(err))}")
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


class _FileContext:
    """One file's document, its spots and the problems found in it."""

    def __init__(self, file: str, doc: Document, problems: list):
        self.file = file
        self.doc = doc
        self.problems = problems
        self._rule_lines = self._rule_start_lines()

    def _rule_start_lines(self):
        rules = self.doc.value.get("rules") if isinstance(self.doc.value, dict) else None
        if not isinstance(rules, list):
            return []
        lines = []
        for index, entry in enumerate(rules):
            spot = self.doc.spots.get(("rules", index))
            name = entry.get("name") if isinstance(entry, dict) else None
            if spot:
                lines.append((spot.line, name if isinstance(name, str) else None))
        return lines

    def rule_at_line(self, line: int) -> str | None:
        name = None
        for start, candidate in self._rule_lines:
            if start > line:
                break
            name = candidate
        return name

    def rule_of(self, path) -> str | None:
        if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
            rules = self.doc.value["rules"]
            entry = rules[path[1]] if path[1] < len(rules) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            return name if isinstance(name, str) else None
        return None

    def position(self, path, key: bool = False) -> tuple[int, int]:
        return self.doc.position(path, key)

    def where(self, path, key: bool = False, line_only: bool = False) -> str:
        line, col = self.position(path, key)
        return f"{self.file}:{line}" if line_only else f"{self.file}:{line}:{col}"

    def add(self, path, message: str, key: bool = False) -> None:
        line, col = self.position(path, key)
        self.problems.append(Problem(self.file, line, col, self.rule_of(path), message))

    def value(self, path):
        value = self.doc.value
        for part in path:
            value = value[part]
        return value

    def shown(self, path) -> str:
        """The value as the operator wrote it, quoted."""
        spot = self.doc.spots.get(tuple(path))
        if spot is not None and spot.raw is not None:
            return "nothing" if spot.raw == "" and spot.plain else json.dumps(spot.raw)
        return _shown_value(self.value(path))


def _shown_value(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return json.dumps(value if isinstance(value, str) else _plain_number(value))


def _plain_number(value):
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


_PRIORITY = ("enum", "type", "anyOf", "const", "pattern", "minLength", "minimum")


def _schema_problems(ctx: _FileContext) -> set:
    """Validate against the schema; report one problem per offending value; return the bad paths."""
    per_path: dict[tuple, tuple | None] = {}  # path -> (rank, error); None: reported already
    for error in _validator().iter_errors(ctx.doc.value):
        path = tuple(error.absolute_path)
        if any(path[:i] in ctx.doc.aliased for i in range(len(path) + 1)):
            per_path.setdefault(path, None)  # the alias is the problem there, already reported
            continue
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    ctx.add(path + (key,), f'unknown key "{key}"{_key_hint(key, allowed)}', key=True)
                    per_path.setdefault(path + (key,), None)
            continue
        if error.validator == "required":
            for key in error.validator_value:
                if key not in error.instance:
                    ctx.add(path, f'missing required key "{key}"')
            continue
        current = per_path.get(path)
        rank = _PRIORITY.index(error.validator) if error.validator in _PRIORITY else len(_PRIORITY)
        if current is None or rank < current[0]:
            per_path[path] = (rank, error)
    for path, chosen in per_path.items():
        if chosen is not None:
            ctx.add(path, _describe(ctx, path, chosen[1]))
    return set(per_path)


def _describe(ctx: _FileContext, path: tuple, error) -> str:
    key = path[-1] if path else None
    value = error.instance
    spot = ctx.doc.spots.get(path)
    shown = ctx.shown(path)
    hint = surprise_hint(spot, value)
    suffix = f" ({hint})" if hint and "the key has no value" not in hint else ""
    if isinstance(key, int):
        listed = "fleet.queries" if path[:2] == ("fleet", "queries") else "rules"
        return f"each entry of {listed} must be a mapping with name and expr, got {_kind(value, shown)}{suffix}"
    if key is None:
        return f"a rule file must be a mapping with rules: (and optionally scrape:), got {_kind(value, shown)}"
    if key in _DURATION_KEYS:
        return f"{key}: {_duration_message(value, shown)}{suffix}"
    validator = error.validator
    if validator == "type":
        wanted = error.validator_value
        wanted = (
            _TYPE_WORDS.get(wanted, wanted) if isinstance(wanted, str) else " or ".join(_TYPE_WORDS[w] for w in wanted)
        )
        return f"{key}: want {wanted}, got {_kind(value, shown)}{suffix}"
    if validator == "enum":
        return f"{key}: want one of {', '.join(error.validator_value)}, got {_kind(value, shown)}{suffix}"
    if validator == "pattern" and key == "name":
        return (
            f"name: {shown} is not a valid rule name; use letters, digits and _ . : -, starting with a letter "
            f"or _, at most 128 characters"
        )
    if validator == "pattern" and key in ("endpoint", "url"):
        url = json.dumps(redact_url(value)) if isinstance(value, str) else shown
        return f"{key}: {url} is not an http:// or https:// URL"
    if validator == "minLength":
        return f"{key}: must not be empty"
    if validator == "minimum":
        return f"{key}: {shown} must be at least {error.validator_value}"
    return f"{key}: {shown}: {_lower_first(error.message)}"


def _duration_message(value, shown: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"bare number {shown} has no unit; write {json.dumps(_with_unit(value))}"
    if isinstance(value, str):
        return f"{shown} is not a duration; write a whole number and unit like 10s, 800ms or 1m30s"
    return f"want a duration like 10s, got {_kind(value, shown)}"


def _with_unit(number) -> str:
    if not is_finite_number(number):
        return "10s"  # .nan, .inf or 400 digits written as a duration: show the form, not a conversion
    if float(number).is_integer():
        return f"{int(number)}s"
    return f"{round(number * 1000)}ms"


def _kind(value, shown: str) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return _shown_value(value)
    return shown


def _key_hint(key: str, allowed: list) -> str:
    if key in _KEY_HINTS and any(part in allowed for part in re.split(r" or ", _KEY_HINTS[key])):
        return f"; did you mean {_KEY_HINTS[key]}?"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}?"
    return f"; known keys: {', '.join(allowed)}"


def _surprise_problems(ctx: _FileContext, bad_paths: set) -> None:
    """Numbers the schema accepted but YAML 1.1 read differently from how they look (010 is 8)."""
    for path, spot in ctx.doc.spots.items():
        if path in bad_paths or not path or spot.raw is None:
            continue
        value = ctx.value(path)
        hint = surprising_number(spot, value)
        if hint:
            ctx.add(path, f"{path[-1]}: {json.dumps(spot.raw)}: {hint}")
            bad_paths.add(path)


def _duration_seconds(value) -> float:
    return 0.0 if value == 0 else parse_duration(value)


def _float(value):
    return None if value is None else float(value)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
