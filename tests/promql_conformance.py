"""Run Prometheus' own PromQL test files against our evaluator.

The files (../shared/peer/promql/*.test, format in SOURCE.md there) load series with
the expanding notation, then `eval instant at T EXPR` with the expected result below.
Every instant evaluation whose expression compiles within our subset, and whose
selectors touch no native-histogram data, is run and compared the way Prometheus' test
framework compares (relative epsilon 1e-6, NaN equals NaN). `eval range` cases are run
too, as one instant evaluation per step (which is how the sidecar evaluates: once per
cycle), and counted apart. Everything else is counted as out of scope, with the reason.
Annotations (`expect warn`/`info`) are not checked: the evaluator produces none.

    python -m tests.promql_conformance [-v] [FILE...]
"""

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser as pp

from exporter.core.history import STALE, History
from exporter.promql import PromQLError, compile_expr, evaluate, selects_any
from exporter.rules.series_notation import SeriesNotationError, expand_values

PEER_DIR = Path(__file__).resolve().parents[2] / "shared" / "peer" / "promql"
DEFAULT_DIR = PEER_DIR if PEER_DIR.is_dir() else Path("/work/shared/peer/promql")

PASSED, FAILED, OUT_OF_SCOPE = "passed", "failed", "out of scope"

_EVAL = re.compile(r"^eval(?:_(fail|warn|ordered|info))?\s+(instant|range)\s+(.*)$")
_EVAL_INSTANT = re.compile(r"^(?:at\s+(\S+?)\s+)?(.+)$")
_EVAL_RANGE = re.compile(r"^from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+?)\s+(.+)$")
_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_EXPECT = re.compile(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}


@dataclass
class Case:
    file: str
    line: int
    expr: str
    at: float | None = None
    kind: str = "instant"  # or "range"
    start: float = 0.0
    end: float = 0.0
    step: float = 0.0
    fail: bool = False
    fail_message: str | None = None
    fail_regex: str | None = None
    ordered: bool = False
    scalar: float | None = None
    expect_scalar: bool = False
    expected: list = field(default_factory=list)  # [(labels, value)], or [(labels, [values])] for range
    unsupported_expectation: str | None = None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Outcome:
    case: Case
    status: str
    detail: str = ""


@dataclass
class Load:
    step_ms: int
    with_nhcb: bool
    series: list  # [(labels, values or None when native histogram data)]
    line: int


class Clear:
    pass


def parse_duration(text: str) -> float:
    """Prometheus' model.ParseDuration, in seconds ("0", "5m", "1h30m", "10s53ms")."""
    return parse_duration_ms(text) / 1000


def parse_duration_ms(text: str) -> int:
    if text == "0":
        return 0
    pos = 0
    total = 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(match[1]) * _UNITS_MS[match[2]]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}")
    return total


def split_series_line(line: str) -> tuple[str, str]:
    """Split `metric{labels} values` into the selector and the values part."""
    in_quote = None
    depth = 0
    for i, ch in enumerate(line):
        if in_quote:
            if ch == "\\":
                continue
            if ch == in_quote and line[i - 1] != "\\":
                in_quote = None
            continue
        if ch in "\"'`" and depth:
            in_quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return line[: i + 1], line[i + 1 :]
        elif ch in " \t" and depth == 0:
            return line[:i], line[i:]
    return line, ""


def parse_labels(selector: str) -> tuple:
    """A series description's labels, parsed with the same PromQL parser the rules use."""
    if selector.replace(" ", "") == "{}":
        return ()
    node = pp.parse(selector)
    if not isinstance(node, pp.VectorSelector):
        raise ValueError(f"not a series description: {selector!r}")
    labels = {m.name: m.value for m in node.matchers.matchers}
    if node.name is not None:
        labels["__name__"] = node.name
    return tuple(sorted((k, v) for k, v in labels.items() if v))


def parse_file(path: Path) -> list:
    """Commands in file order: Load, Clear and Case objects."""
    lines = [ln.strip() for ln in path.read_text().split("\n")]
    lines = ["" if ln.startswith("#") else ln for ln in lines]
    commands: list = []
    i = 0
    name = path.name
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = line.split(None, 1)[0].lower()
        if word == "clear":
            commands.append(Clear())
            i += 1
        elif word.startswith("load"):
            i = _parse_load(lines, i, commands)
        elif word.startswith("eval"):
            i = _parse_eval(lines, i, commands, name)
        else:
            raise ValueError(f"{name}:{i + 1}: unknown command {line!r}")
    return commands


def _parse_load(lines: list, i: int, commands: list) -> int:
    match = _LOAD.match(lines[i])
    if not match:
        raise ValueError(f"line {i + 1}: invalid load command")
    load = Load(step_ms=parse_duration_ms(match[2]), with_nhcb=bool(match[1]), series=[], line=i + 1)
    i += 1
    while i < len(lines) and lines[i]:
        selector, values_text = split_series_line(lines[i])
        labels = parse_labels(selector)
        try:
            values = expand_values(values_text)
        except SeriesNotationError:
            values = None  # native histogram samples
        load.series.append((labels, values))
        i += 1
    commands.append(load)
    return i


def _parse_eval(lines: list, i: int, commands: list, name: str) -> int:
    match = _EVAL.match(lines[i])
    if not match:
        raise ValueError(f"{name}:{i + 1}: invalid eval command")
    modifier, kind, rest = match[1], match[2], match[3]
    case = Case(file=name, line=i + 1, expr=rest, kind=kind)
    if kind == "instant":
        inst = _EVAL_INSTANT.match(rest)
        case.at = parse_duration(inst[1]) if inst[1] else 0.0
        case.expr = inst[2]
    else:
        rng = _EVAL_RANGE.match(rest)
        case.start, case.end, case.step = (parse_duration(rng[k]) for k in (1, 2, 3))
        case.expr = rng[4]
    case.fail = modifier == "fail"
    case.ordered = modifier == "ordered"
    i += 1
    while i < len(lines) and lines[i]:
        line = lines[i]
        i += 1
        if line.startswith("expected_fail_message"):
            case.fail_message = line[len("expected_fail_message") :].strip()
            break
        if line.startswith("expected_fail_regexp"):
            case.fail_regex = line[len("expected_fail_regexp") :].strip()
            break
        if line.startswith("expect range vector"):
            case.unsupported_expectation = "range vector result"
            continue
        if line.startswith("expect string"):
            case.unsupported_expectation = "string result"
            continue
        if line.split(" ")[0] == "expect":
            exp = _EXPECT.match(line)
            if exp is None:
                raise ValueError(f"{name}:{i}: invalid expect line {line!r}")
            if exp[1] == "fail":
                case.fail = True
                if exp[2] == "msg":
                    case.fail_message = exp[3].strip()
                elif exp[2] == "regex":
                    case.fail_regex = exp[3].strip()
            elif exp[1] == "ordered":
                case.ordered = True
            continue  # warn/info annotations are not produced by this evaluator
        number = _parse_number(line)
        if number is not None:
            case.expect_scalar = True
            case.scalar = number
            break
        selector, values_text = split_series_line(line)
        labels = parse_labels(selector)
        if "{{" in values_text:
            case.unsupported_expectation = "native histogram in the expected result"
            continue
        values = expand_values(values_text)
        if kind == "range":
            case.expected.append((labels, values))
            continue
        if len(values) != 1:
            case.unsupported_expectation = "range vector result"
            continue
        case.expected.append((labels, values[0]))
    commands.append(case)
    return i


def _parse_number(text: str) -> float | None:
    try:
        return float(int(text, 0))
    except ValueError:
        pass
    try:
        if "_" in text or text != text.strip():
            return None
        return float(text)
    except ValueError:
        return None


def almost_equal(a: float, b: float, epsilon: float = 1e-6) -> bool:
    """Prometheus' util/almost.Equal, which its PromQL tests use."""
    if a != a and b != b:
        return True
    if a == b:
        return True
    min_normal = 2.2250738585072014e-308
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < min_normal:
        return diff < epsilon * min_normal
    return diff / min(abs_sum, sys.float_info.max) < epsilon


class Runner:
    """Replays one file's commands against a History, classifying each eval."""

    def __init__(self):
        self.history = History(retention_seconds=math.inf)
        self.native: list = []  # label sets of series holding native histogram samples

    def clear(self) -> None:
        self.history = History(retention_seconds=math.inf)
        self.native = []

    def load(self, load: Load) -> None:
        for labels, values in load.series:
            if values is None:
                self.native.append(labels)
                continue
            # Integer milliseconds first, as Prometheus stores them, then seconds.
            samples = [(i * load.step_ms / 1000, v) for i, v in enumerate(values) if v is not None]
            self.history.load_series(labels, samples)
            if load.with_nhcb:
                base = _nhcb_base(labels)
                if base is not None:
                    self.native.append(base)

    def run(self, case: Case) -> Outcome:
        if case.unsupported_expectation:
            return Outcome(case, OUT_OF_SCOPE, case.unsupported_expectation)
        try:
            expr = compile_expr(case.expr)
        except PromQLError as err:
            message = str(err)
            if case.fail and "not supported" not in message and "parse error" not in message:
                return Outcome(case, PASSED, f"failed at compile time as expected: {message}")
            return Outcome(case, OUT_OF_SCOPE, message)
        if self.native and selects_any(expr, self.native):
            return Outcome(case, OUT_OF_SCOPE, "native histogram data")
        try:
            if case.kind == "range":
                result = self._evaluate_steps(expr, case)
            else:
                result = evaluate(expr, self.history, case.at)
        except PromQLError as err:
            if case.fail:
                return self._check_failure(case, str(err))
            return Outcome(case, FAILED, f"unexpected error: {err}")
        if case.fail:
            return Outcome(case, FAILED, f"expected an error, got {result!r}")
        problem = compare_range(case, result) if case.kind == "range" else compare(case, result)
        return Outcome(case, FAILED if problem else PASSED, problem or "")

    def _evaluate_steps(self, expr, case: Case) -> dict:
        """A range query as the sidecar meets it: one instant evaluation per step.
        Returns {labels: [(step index, value)]}; a scalar becomes the series {}."""
        series: dict = {}
        steps = int(round((case.end - case.start) / case.step)) if case.step else 0
        for i in range(steps + 1):
            at = (round(case.start * 1000) + i * round(case.step * 1000)) / 1000
            result = evaluate(expr, self.history, at)
            if not isinstance(result, list):
                result = [((), result)]
            for labels, value in result:
                series.setdefault(labels, []).append((i, value))
        return series

    def _check_failure(self, case: Case, message: str) -> Outcome:
        # Our messages are lower case by convention; compare without regard to case.
        if case.fail_message is not None and case.fail_message.lower() != message.lower():
            return Outcome(case, FAILED, f"error {message!r}, expected {case.fail_message!r}")
        if case.fail_regex is not None and not re.search(case.fail_regex, message, re.IGNORECASE):
            return Outcome(case, FAILED, f"error {message!r} does not match {case.fail_regex!r}")
        return Outcome(case, PASSED, f"failed as expected: {message}")


def _nhcb_base(labels: tuple):
    """The native histogram load_with_nhcb derives from a classic series, if any."""
    name = dict(labels).get("__name__", "")
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            base = tuple(
                ("__name__", name[: -len(suffix)]) if k == "__name__" else (k, v) for k, v in labels if k != "le"
            )
            return base
    return None


def compare(case: Case, result) -> str | None:
    if case.expect_scalar:
        if isinstance(result, list):
            return f"expected scalar {case.scalar}, got vector {result!r}"
        if not almost_equal(case.scalar, result):
            return f"expected scalar {case.scalar}, got {result}"
        return None
    if not isinstance(result, list):
        return f"expected a vector, got scalar {result}"
    expected = {}
    for labels, value in case.expected:
        expected[labels] = value
    seen = set()
    for pos, (labels, value) in enumerate(result):
        if labels not in expected:
            return f"unexpected series {_show(labels)} = {value}"
        if labels in seen:
            return f"series {_show(labels)} twice in the result"
        seen.add(labels)
        want = expected[labels]
        if want is STALE or not almost_equal(want, value):
            return f"{_show(labels)}: expected {want}, got {value}"
        if case.ordered and case.expected[pos][0] != labels:
            return f"{_show(labels)} at position {pos + 1}, expected {_show(case.expected[pos][0])}"
    missing = [labels for labels in expected if labels not in seen]
    if missing:
        return f"missing series {', '.join(_show(m) for m in missing)}"
    return None


def compare_range(case: Case, result: dict) -> str | None:
    expected = {labels: values for labels, values in case.expected}
    for labels, points in result.items():
        if labels not in expected:
            return f"unexpected series {_show(labels)} with {len(points)} points"
        want = [(i, v) for i, v in enumerate(expected[labels]) if v is not None]
        if len(want) != len(points):
            return f"{_show(labels)}: expected points {want}, got {points}"
        for (wi, wv), (gi, gv) in zip(want, points):
            if wi != gi or wv is STALE or not almost_equal(wv, gv):
                return f"{_show(labels)}: expected points {want}, got {points}"
    missing = [labels for labels in expected if labels not in result]
    if missing:
        return f"missing series {', '.join(_show(m) for m in missing)}"
    return None


def _show(labels: tuple) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def run_file(path: Path) -> list:
    runner = Runner()
    outcomes = []
    for command in parse_file(path):
        if isinstance(command, Clear):
            runner.clear()
        elif isinstance(command, Load):
            runner.load(command)
        else:
            outcomes.append(runner.run(command))
    return outcomes


def run_all(directory: Path = DEFAULT_DIR, names=None) -> dict:
    files = sorted(directory.glob("*.test"))
    if names:
        files = [f for f in files if f.name in names or f.stem in names]
    return {f.name: run_file(f) for f in files}


def summarize(results: dict) -> str:
    """Counts per file and in total, instant and range evaluations apart."""
    kinds = ("instant", "range")
    statuses = (PASSED, FAILED, OUT_OF_SCOPE)
    totals = {(k, st): 0 for k in kinds for st in statuses}
    rows = []
    for name, outcomes in results.items():
        counts = {(k, st): 0 for k in kinds for st in statuses}
        for o in outcomes:
            counts[(o.case.kind, o.status)] += 1
            totals[(o.case.kind, o.status)] += 1
        rows.append((name, counts))
    rows.append(("total", totals))
    width = max(len(name) for name, _ in rows)
    lines = [
        f"{'':<{width}}  {'eval instant':^28}  {'eval range (step by step)':^28}",
        f"{'file':<{width}}  {'passed':>8}{'failed':>8}{'out of scope':>13}"
        f"  {'passed':>8}{'failed':>8}{'out of scope':>13}",
    ]
    for name, c in rows:
        cells = "  ".join(f"{c[(k, PASSED)]:>8}{c[(k, FAILED)]:>8}{c[(k, OUT_OF_SCOPE)]:>13}" for k in kinds)
        lines.append(f"{name:<{width}}  {cells}")
    return "\n".join(lines)


def out_of_scope_reasons(results: dict) -> dict:
    reasons: dict = {}
    for outcomes in results.values():
        for o in outcomes:
            if o.status == OUT_OF_SCOPE:
                key = re.sub(r'"[^"]*"', '"…"', o.detail) if o.detail.startswith("parse error") else o.detail
                reasons[key] = reasons.get(key, 0) + 1
    return dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv
    names = [a for a in argv if not a.startswith("-")]
    results = run_all(names=names or None)
    for outcomes in results.values():
        for o in outcomes:
            if o.status == FAILED or (verbose and o.status == OUT_OF_SCOPE):
                print(f"{o.case.id}: {o.status}: {o.case.expr}\n    {o.detail}")
    print(summarize(results))
    if verbose:
        print("\nout of scope, by reason:")
        for reason, n in out_of_scope_reasons(results).items():
            print(f"{n:>5}  {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
