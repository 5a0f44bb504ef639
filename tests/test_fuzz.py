"""Fuzzing every parser that reads outside input: upstream exposition text, rule YAML, PromQL
strings and promtool's series notation. Each may only raise its own documented error, never
another exception, and never hang.

Bounded in the normal suite (FUZZ_EXAMPLES, default 200 inputs per test); `make fuzz` raises it.
Each test counts the inputs it tried and the count is printed at the end of the session, even
under -q. A watchdog turns a hung input into a failure naming it instead of a stuck run.
"""

import math
import os
import random
import re
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.errors import ConfigError
from exporter.core.history import History
from exporter.core.scrape import UNPARSABLE, ScrapeFailure, parse_samples
from exporter.promql import PromQLError, compile_expr, evaluate
from exporter.rules.loader import load_rules
from exporter.rules.series_notation import expand_values
from tests.support import REPO, all_captures, capture

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
HANG_SECONDS = 20  # far above any input's cost; only a real hang reaches it
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)

_tried: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report_inputs_tried(request):
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    lines = [f"fuzz: {name}: {count} inputs tried" for name, count in _tried.items()]
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


@contextmanager
def watchdog(what: str, text):
    def hung(signum, frame):
        raise AssertionError(f"{what} hung for {HANG_SECONDS}s on {text!r:.300}")

    _tried[what] = _tried.get(what, 0) + 1
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def mutated(seed_texts: list[str], alphabet: str):
    """Real inputs with random edits: cuts, duplicated slices, inserted and swapped characters."""

    @st.composite
    def build(draw):
        text = draw(st.sampled_from(seed_texts))
        rng = random.Random(draw(st.integers(0, 2**32 - 1)))
        for _ in range(draw(st.integers(1, 8))):
            if not text:
                text = rng.choice(alphabet)
            i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
            edit = rng.randrange(5)
            if edit == 0:
                text = text[:i] + text[j:]
            elif edit == 1:
                text = text[:j] + text[i:j] + text[j:]
            elif edit == 2:
                text = text[:i] + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) + text[i:]
            elif edit == 3 and i < len(text):
                text = text[:i] + rng.choice(alphabet) + text[i + 1 :]
            else:
                text = text[:i]
        return text

    return build()


# ---- exposition text ------------------------------------------------------------------------

NAMES = ["tgi_queue_size", "tgi_request_duration_bucket", "vllm:num_requests_waiting", "up", "x_total"]
LABEL_VALUES = st.one_of(
    st.sampled_from(["", "a", "0.5", "+Inf", "a,b", "x}y", 'q\\"uo', "back\\\\slash", "n\\nl", "{}", "é✓"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
)
VALUE_TOKENS = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-0",
            "+5",
            "1e3",
            "1E-3",
            ".5",
            "5.",
            "NaN",
            "+Inf",
            "-Inf",
            "inf",
            "nan",
            "Infinity",
            "1_000",
            "0x10",
            "1e999",
            "9" * 400,
            "",
            "abc",
            "1.2.3",
            "٣",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
)


@st.composite
def sample_lines(draw):
    name = draw(st.sampled_from(NAMES + ["other_metric", "tgi_queue_size_max"]))
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(["le", "model", "pod", "__x", "a:b", "2bad", "le"]), LABEL_VALUES), max_size=3
        )
    )
    labels = ",".join(f'{k}="{v}"' for k, v in pairs)
    if draw(st.booleans()):
        labels += ","
    head = name + (f"{{{labels}}}" if pairs or draw(st.booleans()) else "")
    sep = draw(st.sampled_from([" ", " ", " ", "\t", "  ", ""]))
    line = head + sep + draw(VALUE_TOKENS)
    if draw(st.booleans()):
        line += draw(st.sampled_from([" 1700000000000", " -5", " 1.5e9", " x", ' # {t="1"} 2']))
    return draw(st.sampled_from(["", " ", "\t"])) + line + draw(st.sampled_from(["", "", "\r", " "]))


@st.composite
def pages(draw):
    lines = draw(
        st.lists(
            st.one_of(
                sample_lines(),
                st.sampled_from(
                    ["", "# HELP tgi_queue_size Queue.", "# TYPE tgi_queue_size gauge", "# EOF", "#", "garbage here"]
                ),
            ),
            max_size=12,
        )
    )
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


CAPTURE_TEXTS = [path.read_text() for path in all_captures()]
EXPOSITION_ALPHABET = 'abcdefgtq_:{}=",. \t\n\\#+-eE0123456789InfNa\r\x00é'
NAME_SETS = st.one_of(st.none(), st.frozensets(st.sampled_from(NAMES), max_size=4))


def reference(body: bytes, names):
    """What parse_samples must return, from prometheus_client parsing each selected line alone;
    None where it must fail as unparsable."""
    if not re.match(rb"[a-zA-Z_:#]", body.lstrip()[:1]):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    # Pages Prometheus fails whole (prometheus_client would read them): in OpenMetrics (a
    # `# EOF` line) data after it or any line starting with a blank; otherwise a sample line
    # starting with a blank; in both, a carriage return in a sample line.
    eof = next((i for i, line in enumerate(lines) if re.fullmatch(r"# EOF[ \t]*", line)), None)
    if eof is not None and "\n".join(lines[eof + 1 :]).strip():
        return None
    for i, line in enumerate(lines):
        if eof is not None and i < eof and line[:1] in (" ", "\t"):
            return None
        if eof is None and line[:1] in (" ", "\t") and line.strip(" \t")[:1] not in ("", "#"):
            return None
        if "\r" in line and line[:1] not in ("#",) and "\r" in line[1:]:
            return None
    out, seen = {}, set()
    for line in lines:
        if names is None:
            if not line.strip() or line.strip().startswith("#"):
                continue
        elif not any(line.startswith(n) and (len(line) == len(n) or line[len(n)] in "{ \t") for n in names):
            continue
        try:
            samples = [s for f in text_string_to_metric_families(line + "\n") for s in f.samples]
            if len(samples) != 1:
                return None
            value = float(samples[0].value)
        except (ValueError, TypeError, IndexError, OverflowError):
            return None
        labels = tuple(sorted({**samples[0].labels, "__name__": samples[0].name}.items()))
        series = tuple(p for p in labels if p[1])  # empty label values: the same series
        if series not in seen:  # a series printed twice: Prometheus keeps the first sample
            seen.add(series)
            out[labels] = value
    return out


def check_exposition(body: bytes, names):
    with watchdog("exposition text", body):
        try:
            samples = parse_samples(body, names)
        except ScrapeFailure as failure:
            assert failure.reason == UNPARSABLE
            assert str(failure)
            samples = None
    expected = reference(body, names)
    if expected is None:
        assert samples is None, f"parsed what prometheus_client refuses: {body!r:.300}"
        return
    assert samples is not None, f"refused what prometheus_client parses: {body!r:.300}"
    got = dict(samples)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert same_float(got[key], value), (key, got[key], value)


def same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


@FUZZ
@given(text=pages(), names=NAME_SETS)
def test_generated_pages_parse_like_prometheus_client_or_fail_unparsable(text, names):
    check_exposition(text.encode("utf-8"), names)


@FUZZ
@given(text=mutated(CAPTURE_TEXTS, EXPOSITION_ALPHABET), names=NAME_SETS)
def test_mutated_captures_parse_like_prometheus_client_or_fail_unparsable(text, names):
    check_exposition(text.encode("utf-8"), names)


@FUZZ
@given(body=st.binary(max_size=2048), names=NAME_SETS)
def test_random_bytes_only_fail_unparsable(body, names):
    check_exposition(body, names)


def test_every_capture_parses_like_prometheus_client():
    for path in all_captures():
        check_exposition(path.read_bytes(), None)
        check_exposition(path.read_bytes(), frozenset(NAMES))


# ---- rule YAML --------------------------------------------------------------------------------

RULE_TEXTS = [path.read_text() for path in sorted((REPO / "rules").glob("*.yaml"))]
YAML_ALPHABET = "abcdefnorsuvxy_:{}[]()-#&*!|>'\"., \t\n0123456789%@`?=<"
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["1s", "0", "1e3", "on", "010", "-1m", "sum(x)"]),
)
KEYS = st.sampled_from(
    [
        "rules",
        "scrape",
        "name",
        "expr",
        "above",
        "below",
        "recover_below",
        "recover_above",
        "for",
        "keep_firing_for",
        "severity",
        "description",
        "interval",
        "timeout",
        "endpoint",
        "on_failure",
        "on_empty",
        "failure_threshold",
        "threshold",
        "groups",
        "x",
    ]
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=12,
)


def check_rules(tmp_path: Path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with watchdog("rule YAML", text):
        try:
            ruleset = load_rules([str(path)])
        except ConfigError as err:
            assert err.problems, "a ConfigError must carry its problems"
            for problem in err.problems:
                assert str(problem).startswith(str(path)), str(problem)
            return
    assert ruleset.rules


@FUZZ
@given(text=mutated(RULE_TEXTS, YAML_ALPHABET))
def test_mutated_rule_files_load_or_raise_config_error(tmp_path, text):
    check_rules(tmp_path, text)


@FUZZ
@given(document=DOCUMENTS)
def test_generated_yaml_documents_load_or_raise_config_error(tmp_path, document):
    check_rules(tmp_path, yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(rules=st.lists(st.dictionaries(KEYS, SCALARS, max_size=6), min_size=1, max_size=3))
# Found by this test: a non-finite duration crashed the loader with a traceback.
@example(rules=[{"name": "a", "expr": "sum(x)", "above": 1, "for": math.inf}])
@example(rules=[{"name": "a", "expr": "sum(x)", "above": 1, "keep_firing_for": math.nan}])
def test_generated_rule_lists_load_or_raise_config_error(tmp_path, rules):
    check_rules(tmp_path, yaml.safe_dump({"rules": rules}, allow_unicode=True))


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text_as_rule_file_loads_or_raises_config_error(tmp_path, text):
    assume("\x00" not in text)
    check_rules(tmp_path, text)


# ---- PromQL ---------------------------------------------------------------------------------


def _shipped_expressions() -> list[str]:
    found = set()
    for path in sorted((REPO / "rules").glob("*.yaml")):
        for rule in load_rules([str(path)]).rules:
            found.add(rule.expr_text)
    return sorted(found)


SHIPPED_EXPRESSIONS = _shipped_expressions()
PROMQL_ALPHABET = "abcdefgilmnorstuvwxyz_:{}[]()=~!\",.+-*/%^<>@ 0123456789smhdwy\\'`#\n"
PROMQL_TOKENS = st.lists(
    st.sampled_from(
        [
            "sum",
            "rate",
            "histogram_quantile",
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "bool",
            "and",
            "or",
            "unless",
            "offset",
            "@",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "1m",
            "5m:1m",
            "0.95",
            "le",
            '"x"',
            "=~",
            "!~",
            "!=",
            "=",
            ",",
            "+",
            "/",
            ">",
            "==",
            "tgi_queue_size",
            "vllm:num_requests_waiting",
            "tgi_request_duration_bucket",
            "absent",
            "scalar",
            "vector",
            "time()",
            "clamp_max",
            "topk",
            "count_values",
            "label_replace",
            "start()",
            "-",
            "Inf",
            "NaN",
            "1e309",
            "0x1f",
            "__name__",
        ]
    ),
    max_size=14,
).map(" ".join)


@pytest.fixture(scope="module")
def capture_history():
    """Two minutes of the real TGI page, counters moving, as the evaluator would have recorded."""
    body = capture("tgi-datadog-integrations-core-3.3.5.prom")
    samples = parse_samples(body, None)
    history = History(600)
    for step in range(120):
        history.record(1_700_000_000.0 + step, [(labels, value + step) for labels, value in samples])
    return history


def check_promql(text: str, history):
    with watchdog("PromQL", text):
        try:
            compiled = compile_expr(text)
        except PromQLError as err:
            assert str(err)
            return
        try:
            evaluate(compiled, history, 1_700_000_119.0)
        except PromQLError as err:
            assert str(err)


@FUZZ
@given(text=mutated(SHIPPED_EXPRESSIONS, PROMQL_ALPHABET))
def test_mutated_expressions_compile_and_evaluate_or_raise_promql_error(text, capture_history):
    check_promql(text, capture_history)


@FUZZ
@given(text=PROMQL_TOKENS)
def test_token_soup_compiles_and_evaluates_or_raises_promql_error(text, capture_history):
    check_promql(text, capture_history)


@FUZZ
@given(text=st.text(max_size=80))
def test_arbitrary_text_compiles_or_raises_promql_error(text, capture_history):
    check_promql(text, capture_history)


# ---- series notation --------------------------------------------------------------------------

SERIES_ALPHABET = "0123456789.+-x_ eEInfNastl{}\t"


@FUZZ
@given(
    text=st.one_of(
        st.text(alphabet=SERIES_ALPHABET, max_size=40),
        st.text(max_size=20),
        st.lists(
            st.sampled_from(
                [
                    "1",
                    "1+1x3",
                    "_",
                    "_x2",
                    "stale",
                    "NaN",
                    "-Inf",
                    "5-2x4",
                    "1e3x2",
                    "x5",
                    "1+x2",
                    "{{a}}",
                    "1x99999999",
                    "0x10",
                    ".5+.5x3",
                ]
            ),
            max_size=6,
        ).map(" ".join),
    )
)
def test_series_notation_expands_or_raises_value_error(text):
    with watchdog("series notation", text):
        try:
            values = expand_values(text)
        except ValueError as err:
            assert str(err)
            return
    assert isinstance(values, list)
