"""Rule unit tests in promtool's style: given these series, at this time, these rules are in
these states and the pod is (not) ready.

A test file:

    rule_files: [../tgi.yaml]          # relative to this file
    evaluation_interval: 1s            # default `interval` of each test
    tests:
      - name: queue over the threshold trips after `for`
        interval: 1s                   # time between samples, and between evaluations
        input_series:
          - series: 'tgi_queue_size{model="m"}'
            values: '0x4 12x20 3x10'   # promtool's expanding notation
        expect:
          - eval_time: 15s
            rules: {queue_saturated: firing, queue_warning: {state: firing, value: 12}}
            ready: false

Sample i of a series sits at i * interval. The engine is stepped from t=0 every interval up
to each eval_time in turn (and at eval_time itself when it falls between steps), exactly as
the sidecar's loop would run it, so `for` and `keep_firing_for` are exercised for real.
"""

import json
import math
import os
import re
from dataclasses import dataclass, field

from exporter.config.durations import parse_duration
from exporter.config.errors import ConfigError, Problem
from exporter.config.scrape_config import ScrapeConfig
from exporter.config.yamldoc import parse_document, unknown_key
from exporter.core import engine, policy
from exporter.core.history import History
from exporter.rules.loader import MAX_RANGE_SECONDS, load_rules
from exporter.rules.series_notation import SeriesNotationError, expand_values

_PAGE_CONFIG = ScrapeConfig()  # input series always arrive: only the rules decide
_MAX_STEPS = 1_000_000  # a typo like eval_time: 10y must not spin for hours
_STATES = engine.STATES
_TOP_KEYS = ("rule_files", "evaluation_interval", "tests")
_TEST_KEYS = ("name", "interval", "input_series", "expect")
_SERIES_KEYS = ("series", "values")
_EXPECT_KEYS = ("eval_time", "rules", "ready")
_RULE_EXPECT_KEYS = ("state", "value")


@dataclass
class FileReport:
    file: str
    tests: int = 0
    checks: int = 0
    failures: list = field(default_factory=list)  # str lines, expected vs got
    problems: list = field(default_factory=list)  # Problem: the test file itself is wrong

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems


@dataclass(frozen=True)
class _Expectation:
    line: int
    col: int
    eval_time: float
    shown: str  # eval_time as written in the file
    rules: tuple  # (rule name, state or None, value-given, value, line, col)
    ready: bool | None


@dataclass(frozen=True)
class _Case:
    name: str
    interval: float
    series: tuple  # (labels, values)
    expectations: tuple


def run_test_file(path: str) -> FileReport:
    """Load the test file and the rule files it names, run every test, report what differed."""
    report = FileReport(path)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        report.problems.append(Problem(path, message=f"cannot read: {_reason(err)}"))
        return report
    spec = _Spec(path, parse_document(text))
    rule_paths, cases = spec.read()
    report.problems.extend(sorted(spec.problems, key=lambda p: (p.line, p.col)))
    if report.problems:
        return report
    try:
        ruleset = load_rules(rule_paths)
    except ConfigError as err:
        report.problems.extend(err.problems)
        return report
    names = {rule.name for rule in ruleset.rules}
    for case in cases:
        for expectation in case.expectations:
            for name, *_rest, line, col in expectation.rules:
                if name not in names:
                    report.problems.append(
                        Problem(
                            path,
                            line,
                            col,
                            message=f'test "{case.name}": no rule named "{name}" in {", ".join(rule_paths)}',
                        )
                    )
    if report.problems:
        return report
    for case in cases:
        report.tests += 1
        _run_case(path, ruleset, case, report)
    return report


def _run_case(path: str, ruleset, case: _Case, report: FileReport) -> None:
    history = History(retention_seconds=2 * MAX_RANGE_SECONDS)
    for labels, values in case.series:
        history.load_series(labels, [(i * case.interval, value) for i, value in enumerate(values)])
    state = engine.initial_state()
    statuses: tuple = ()
    step, last = 0, None
    for expectation in sorted(case.expectations, key=lambda e: e.eval_time):
        target = expectation.eval_time
        while step * case.interval <= target + 1e-9:
            last = step * case.interval
            state, statuses = engine.evaluate(ruleset, history, state, last)
            step += 1
        if last is None or abs(last - target) > 1e-9:
            last = target
            state, statuses = engine.evaluate(ruleset, history, state, last)
        _compare(path, case, expectation, statuses, report)


def _compare(path, case, expectation, statuses, report) -> None:
    by_name = {status.rule.name: status for status in statuses}
    at = f'{path}:{{line}}:{{col}}: test "{case.name}": at {expectation.shown}: '
    for name, want_state, has_value, want_value, line, col in expectation.rules:
        status = by_name[name]
        where = at.format(line=line, col=col) + f'rule "{name}": '
        if want_state is not None:
            report.checks += 1
            if status.state != want_state:
                report.failures.append(f"{where}expected {want_state}, got {status.state} ({status.reason})")
        if has_value:
            report.checks += 1
            if not _same_value(want_value, status.value):
                report.failures.append(f"{where}expected value {_shown(want_value)}, got {_shown(status.value)}")
    if expectation.ready is not None:
        report.checks += 1
        ready = policy.decide(statuses, policy.FRESH_PAGE, _PAGE_CONFIG, previous_ready=True).ready
        if ready != expectation.ready:
            blocking = [s.rule.name for s in statuses if s.blocking]
            why = f" (blocking: {', '.join(blocking)})" if blocking else " (no rule blocks)"
            report.failures.append(
                at.format(line=expectation.line, col=expectation.col)
                + f"expected {_ready_word(expectation.ready)}, got {_ready_word(ready)}{why}"
            )


def _same_value(want, got) -> bool:
    if want is None or got is None:
        return want is got
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-12)


def _shown(value) -> str:
    return "none (no data)" if value is None else engine.format_value(value)


def _ready_word(ready: bool) -> str:
    return "ready" if ready else "unready"


def _reason(err) -> str:
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return (err.strerror or str(err)).lower()


class _Spec:
    """Reads the test file's structure, collecting a problem for anything malformed."""

    def __init__(self, path: str, doc):
        self.path = path
        self.doc = doc
        self.problems = [Problem(path, p.line, p.col, message=p.message) for p in doc.problems]

    def read(self):
        top = self.doc.value
        if not self._mapping((), top, _TOP_KEYS, "a test file"):
            return [], []
        base = os.path.dirname(self.path)
        rule_files = top.get("rule_files")
        paths = []
        if not isinstance(rule_files, list) or not rule_files or not all(isinstance(p, str) for p in rule_files):
            self._add(("rule_files",), "rule_files: want a list of rule file paths, relative to this file")
        else:
            paths = [os.path.normpath(os.path.join(base, p)) for p in rule_files]
        default_interval = self._duration(("evaluation_interval",), top.get("evaluation_interval", "1s"))
        tests = top.get("tests")
        if not isinstance(tests, list) or not tests:
            self._add(("tests",), "tests: want a list of tests")
            return paths, []
        cases = [self._case(i, entry, default_interval) for i, entry in enumerate(tests)]
        return paths, [c for c in cases if c is not None]

    def _case(self, index, entry, default_interval):
        path = ("tests", index)
        name = entry.get("name", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
        name = name if isinstance(name, str) else str(name)
        if not self._mapping(path, entry, _TEST_KEYS, "a test", name):
            return None
        interval = self._duration(path + ("interval",), entry.get("interval"), default_interval, test=name)
        if interval is not None and interval <= 0:
            self._add(path + ("interval",), f'test "{name}": interval: must be greater than zero')
            interval = None
        series = []
        for i, item in enumerate(self._list(path + ("input_series",), entry.get("input_series", []), name)):
            parsed = self._series(path + ("input_series", i), item, name)
            if parsed:
                series.append(parsed)
        expectations = []
        raw_expect = entry.get("expect")
        if raw_expect is None:
            self._add(path, f'test "{name}": missing required key "expect"')
        for i, item in enumerate(self._list(path + ("expect",), raw_expect or [], name)):
            parsed = self._expectation(path + ("expect", i), item, name, interval)
            if parsed:
                expectations.append(parsed)
        if interval is None:
            return None
        return _Case(name, interval, tuple(series), tuple(expectations))

    def _series(self, path, item, name):
        if not self._mapping(path, item, _SERIES_KEYS, "an input series", name):
            return None
        ok = True
        for key in _SERIES_KEYS:
            if not isinstance(item.get(key), str):
                where = path + (key,) if key in item else path
                self._add(
                    where,
                    f'test "{name}": {key}: want text in quotes, like '
                    + ("'tgi_queue_size{model=\"m\"}'" if key == "series" else "'0+1x10 _ stale'"),
                )
                ok = False
        if not ok:
            return None
        try:
            labels = parse_series(item["series"])
        except ValueError as err:
            self._add(path + ("series",), f'test "{name}": series: {err}')
            return None
        try:
            values = expand_values(item["values"])
        except SeriesNotationError as err:
            self._add(path + ("values",), f'test "{name}": values: {err}')
            return None
        return labels, values

    def _expectation(self, path, item, name, interval):
        if not self._mapping(path, item, _EXPECT_KEYS, "an expectation", name):
            return None
        before = len(self.problems)
        eval_time = None
        if "eval_time" not in item:
            self._add(path, f'test "{name}": missing required key "eval_time"')
        else:
            eval_time = self._duration(path + ("eval_time",), item["eval_time"], test=name)
        if eval_time is not None and interval and eval_time / interval > _MAX_STEPS:
            self._add(path + ("eval_time",), f'test "{name}": eval_time: more than {_MAX_STEPS} evaluation steps')
        ready = item.get("ready")
        if "ready" in item and not isinstance(ready, bool):
            self._add(path + ("ready",), f'test "{name}": ready: want true or false')
        rules = []
        expected = item.get("rules", {})
        if not isinstance(expected, dict):
            self._add(path + ("rules",), f'test "{name}": rules: want a mapping of rule name to state')
            expected = {}
        for rule, want in expected.items():
            parsed = self._rule_expectation(path + ("rules", rule), rule, want, name)
            if parsed:
                rules.append(parsed)
        if len(self.problems) > before or eval_time is None:
            return None
        line, col = self.doc.position(path)
        return _Expectation(line, col, eval_time, str(item["eval_time"]), tuple(rules), ready)

    def _rule_expectation(self, path, rule, want, name):
        line, col = self.doc.position(path, key=True)
        state, has_value, value = want, False, None
        if isinstance(want, dict):
            if not self._mapping(path, want, _RULE_EXPECT_KEYS, "a rule expectation", name):
                return None
            state = want.get("state")
            has_value, value = "value" in want, want.get("value")
            if has_value and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                self._add(path + ("value",), f'test "{name}": rule "{rule}": value: want a number, or null for no data')
                return None
            value = None if value is None else float(value)
        if state is not None and state not in _STATES:
            self._add(path, f'test "{name}": rule "{rule}": want one of {", ".join(_STATES)}, got {json.dumps(state)}')
            return None
        return rule, state, has_value, value, line, col

    def _mapping(self, path, value, keys, what, test=None) -> bool:
        prefix = f'test "{test}": ' if test else ""
        if not isinstance(value, dict):
            self._add(path, f"{prefix}{what} must be a mapping")
            return False
        for key in value:
            if key not in keys:
                self._add(path + (key,), prefix + unknown_key(key, keys), key=True)
        return True

    def _list(self, path, value, test):
        if not isinstance(value, list):
            self._add(path, f'test "{test}": {path[-1]}: want a list')
            return []
        return value

    def _duration(self, path, value, default=None, test=None):
        if value is None:
            return default
        if value == 0 and not isinstance(value, bool):
            return 0.0
        prefix = f'test "{test}": ' if test else ""
        try:
            if not isinstance(value, str):
                raise ValueError(f'bare number {value!r} has no unit; write "{value}s"')
            return parse_duration(value)
        except ValueError as err:
            self._add(path, f"{prefix}{path[-1]}: {err}")
            return None

    def _add(self, path, message, key=False):
        line, col = self.doc.position(path, key)
        self.problems.append(Problem(self.path, line, col, message=message))


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*\"((?:[^\"\\]|\\.)*)\"\s*")
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_series(text: str) -> tuple:
    """`name{a="b"}` (or `{__name__="name", ...}`) -> sorted label pairs including __name__."""
    text = text.strip()
    match = _NAME.match(text)
    labels = {}
    pos = 0
    if match:
        labels["__name__"] = match.group()
        pos = match.end()
    if pos < len(text):
        if text[pos] != "{" or not text.endswith("}"):
            raise ValueError(f'"{text}" is not a series like metric{{label="value"}}')
        body, pos = text[pos + 1 : -1], 0
        while pos < len(body):
            label = _LABEL.match(body, pos)
            if not label:
                raise ValueError(f'"{text}": cannot read the labels at "{body[pos:]}"')
            if label.group(1) in labels:
                raise ValueError(f'"{text}": label "{label.group(1)}" is given twice')
            labels[label.group(1)] = re.sub(r"\\.", lambda m: _ESCAPES.get(m.group(), m.group()[1]), label.group(2))
            pos = label.end()
            if pos < len(body):
                if body[pos] != ",":
                    raise ValueError(f'"{text}": expected a comma at "{body[pos:]}"')
                pos += 1
    if "__name__" not in labels:
        raise ValueError(f'"{text}" has no metric name')
    return tuple(sorted(labels.items()))
