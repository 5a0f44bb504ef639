"""No traceback from any CLI or startup path for any configuration input.

Random environments (every variable the sidecar reads, with values an attacker or a careless
operator could set: huge numbers, overflowing durations, broken URLs with secrets, control
characters) and random rule files (structured and mutated, with the same kinds of scalars) go
through the real entry point, `main()`: `serve` up to the moment gunicorn would start (its run
is replaced, nothing else), `check`, `eval --file` and (for rule unit-test files) `test`. Each
must end in an exit code and short messages, never an exception or a traceback, and never print
a secret.

Bounded like tests/test_fuzz.py, at a quarter of FUZZ_EXAMPLES per test (50 by default): each
input runs whole commands, startup included.
"""

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exporter.cli import main
from exporter.commands import serve as serve_command
from exporter.config.settings import ENV_NAMES
from tests.support import REPO
from tests.test_fuzz import EXAMPLES, FUZZ, RULE_TEXTS, YAML_ALPHABET, mutated, watchdog

CONFIG_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
SECRET = "s3cr3tPW"
HUGE = ["9" * 400, "9" * 5000, "-" + "9" * 400, "1e999", "-1e999", "1e308", "0x" + "f" * 300]
DURATIONS = ["10000000d", "1ms", "0", "0s", "1.5", "1m30s", "-1s", "1e308s", "9" * 400 + "s", "10m", "1y", ".5s"]
URLS = [
    f"http://user:{SECRET}@127.0.0.1:9/metrics",
    f"http://user:{SECRET}@@127.0.0.1:9/metrics?token={SECRET}",
    f"http://user:{SECRET}@host:abc/metrics",
    f"http://user:{SECRET}@[::1/metrics",
    f"http://user:{SECRET}@host/a b?api-key={SECRET}",
    f"http://127.0.0.1:99999/?X-Amz-Signature={SECRET}",
    "http://:80/",
    "https://",
    "ftp://host/metrics",
    "http://host:0/",
]
VALUES = st.one_of(
    st.sampled_from(HUGE + DURATIONS + URLS + ["", " ", "true", "off", "json", "1", "2", "nan", "inf", "-0"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40),
)
# Each variable mostly gets values of its own kind (a URL for the endpoint, durations for
# intervals), so the hostile values of that kind are reached often, and sometimes anything.
_KIND = {
    "METRICS_ENDPOINT": URLS,
    "METRIC_THRESHOLD": HUGE,
    "METRICS_THRESHOLD": HUGE,
    "SCRAPE_INTERVAL": DURATIONS + HUGE,
    "SCRAPE_TIMEOUT": DURATIONS + HUGE,
    "RELOAD_INTERVAL": DURATIONS + HUGE,
    "SHUTDOWN_DRAIN_SECONDS": DURATIONS + HUGE,
    "GRACEFUL_TIMEOUT": DURATIONS + HUGE,
}


@st.composite
def environments(draw):
    names = draw(st.lists(st.sampled_from(list(ENV_NAMES) + ["WEB_CONCURRENCY"]), max_size=6, unique=True))
    env = {}
    for name in names:
        pool = _KIND.get(name, HUGE)
        env[name] = draw(st.one_of(st.sampled_from(pool), VALUES) if draw(st.booleans()) else st.sampled_from(pool))
    return env


ENVIRONMENTS = environments()


@pytest.fixture
def no_gunicorn(monkeypatch):
    """serve runs everything up to gunicorn's start; that one call returns at once."""
    monkeypatch.setattr(serve_command._GunicornApp, "run", lambda self: None)
    for name in list(ENV_NAMES) + ["WEB_CONCURRENCY", "GUNICORN_CMD_ARGS"]:
        monkeypatch.delenv(name, raising=False)


def run_cli(capsys, argv, what, shown, secret_hidden=True) -> int:
    with watchdog(what, shown):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors: an exit code, a usage line
            code = exit_.code
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text, f"{what} printed a traceback for {shown!r:.300}:\n{text[-2000:]}"
    assert not secret_hidden or SECRET not in text, f"{what} printed a secret for {shown!r:.300}:\n{text[-2000:]}"
    assert code in (0, 1, 2), f"{what} exited {code!r} for {shown!r:.300}"
    return code


@CONFIG_FUZZ
@given(env=ENVIRONMENTS)
@example(env={"METRICS_ENDPOINT": f"http://user:{SECRET}@host:abc/metrics"})  # once a ValueError traceback
@example(env={"METRICS_ENDPOINT": f"http://user:{SECRET}@@127.0.0.1:9/metrics?token={SECRET}"})
def test_serve_startup_never_raises_for_any_environment(env, capsys, monkeypatch, no_gunicorn):
    env = {k: v for k, v in env.items() if k != "RULES_PATH"}  # rule files: the tests below
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        # A URL set in another variable (METRIC_TO_CHECK) is quoted as written, by design.
        in_urls_only = all(SECRET not in v for k, v in env.items() if k != "METRICS_ENDPOINT")
        code = run_cli(capsys, ["serve"], "serve startup", env, secret_hidden=in_urls_only)
    if code == 2:
        assert capsys.readouterr().err == ""  # (read above: one refusal, nothing after it)


PLAIN_URLS = [url.replace(SECRET, "x") for url in URLS]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**500), 10**500),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(HUGE + DURATIONS + PLAIN_URLS + ["on", "010", "sum(x)", "1e3"]),
)
ENDPOINTS = st.one_of(SCALARS, st.sampled_from(URLS))  # secrets only where a URL belongs
RULE_KEYS = ["name", "expr", "above", "below", "recover_below", "recover_above", "for", "keep_firing_for", "severity"]
SCRAPE_KEYS = ["endpoint", "interval", "timeout", "on_failure", "on_empty", "failure_threshold"]


@st.composite
def rule_documents(draw):
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        rule = {"name": draw(st.sampled_from(["q", "kv", "x y", ""])), "expr": draw(st.sampled_from(EXPRS))}
        for key in draw(st.lists(st.sampled_from(RULE_KEYS), max_size=4)):
            rule[key] = draw(SCALARS)
        rules.append(rule)
    doc = {"rules": rules}
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(SCRAPE_KEYS), max_size=4))
        doc["scrape"] = {key: draw(ENDPOINTS if key == "endpoint" else SCALARS) for key in keys}
    if draw(st.booleans()):
        doc["fleet"] = {"url": draw(ENDPOINTS), "queries": [{"name": "pods", "expr": "count(up)"}]}
    return yaml.safe_dump(doc, allow_unicode=True, width=10**6)


EXPRS = ["sum(tgi_queue_size)", "tgi_queue_size > 5", "rate(x[99999999d])", "sum(x) > " + "9" * 400, "(a+)+b"]


def check_rule_file(tmp_path, capsys, monkeypatch, text):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    page = tmp_path / "page.txt"
    page.write_text("tgi_queue_size 3\nx 1\n")
    run_cli(capsys, ["check", str(path)], "check", text)
    run_cli(capsys, ["eval", str(path), "--file", str(page)], "eval --file", text)
    with monkeypatch.context() as patch:
        patch.setenv("RULES_PATH", str(path))
        run_cli(capsys, ["serve"], "serve startup with rules", text)


@CONFIG_FUZZ
@given(text=rule_documents())
def test_generated_rule_files_never_raise_from_any_command(text, tmp_path, capsys, monkeypatch, no_gunicorn):
    check_rule_file(tmp_path, capsys, monkeypatch, text)


@CONFIG_FUZZ
@given(text=mutated(RULE_TEXTS, YAML_ALPHABET + "9e"))
def test_mutated_rule_files_never_raise_from_any_command(text, tmp_path, capsys, monkeypatch, no_gunicorn):
    check_rule_file(tmp_path, capsys, monkeypatch, text)


# Rule unit-test files (`llm-healthcheck test`) are configuration too: mutated shipped ones,
# next to a copy of the rule file they name, with huge numbers and durations in the alphabet.
TEST_TEXTS = [path.read_text() for path in sorted((REPO / "rules" / "tests").glob("*.test.yaml"))]


@CONFIG_FUZZ
@given(text=mutated(TEST_TEXTS, YAML_ALPHABET + "9e"), huge=st.sampled_from(HUGE + DURATIONS))
def test_mutated_rule_test_files_never_raise_from_test(text, huge, tmp_path, capsys):
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    for rule_file in (REPO / "rules").glob("*.yaml"):
        (tmp_path / rule_file.name).write_text(rule_file.read_text())
    path = tests / "case.test.yaml"
    path.write_text(text.replace("1s", huge, 1), encoding="utf-8")
    run_cli(capsys, ["test", str(path)], "test", text)
