"""Issue 14, items 10-12: huge numbers, hostile files in the rules directory, unbounded durations
and a dead evaluator thread. Each test feeds the exact input an operator or attacker would."""

import os
import signal
import tracemalloc
from contextlib import contextmanager

import pytest
from falcon import testing

from exporter.cli import main
from exporter.commands import serve as serve_command
from exporter.config.errors import ConfigError
from exporter.config.settings import load_settings
from exporter.rules.loader import load_rules
from exporter.serve.app import create_app
from exporter.serve.evaluator import Evaluator
from exporter.serve.rules_source import RulesSource
from exporter.serve.telemetry import build_registry

DIGITS_400 = "9" * 400
GOOD = "rules:\n  - name: queue\n    expr: sum(tgi_queue_size)\n    above: 10\n"


@contextmanager
def deadline(seconds: int, what: str):
    """Turn a hang (the FIFO open of the old code) into a failure instead of a stuck run."""

    def hung(signum, frame):
        raise AssertionError(f"{what} blocked for {seconds}s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def no_gunicorn(monkeypatch):
    """`serve` must stop before gunicorn: if it gets that far, fail instead of serving forever."""

    def started(self):
        raise AssertionError("serve accepted the configuration and went on to start gunicorn")

    monkeypatch.setattr(serve_command._GunicornApp, "run", started)


def check(capsys, *paths) -> tuple[int, str]:
    code = main(["check", *map(str, paths)])
    out = capsys.readouterr()
    return code, out.out + out.err


# ---- item 10: huge integers ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["above", "below"])
def test_check_rejects_a_400_digit_threshold_with_a_located_line(tmp_path, capsys, key):
    path = tmp_path / "huge.yaml"
    path.write_text(f"rules:\n  - name: q\n    expr: sum(x)\n    {key}: {DIGITS_400}\n")
    code, text = check(capsys, path)
    assert code != 0
    assert "Traceback" not in text
    assert f'{path}:4:{len(key) + 7}: rule "q": {key}: "{DIGITS_400}" is not a finite number' in text


def test_check_rejects_a_5000_digit_threshold_without_a_traceback(tmp_path, capsys):
    # Beyond Python's int-from-text limit (4300 digits): YAML's own conversion fails.
    path = tmp_path / "huger.yaml"
    path.write_text("rules:\n  - name: q\n    expr: sum(x)\n    above: " + "9" * 5000 + "\n")
    code, text = check(capsys, path)
    assert code != 0 and "Traceback" not in text
    assert f'{path}:4:12: rule "q": above: "' in text and "is not a finite number" in text


def test_check_explains_1e999_instead_of_crashing(tmp_path, capsys):
    path = tmp_path / "e999.yaml"
    path.write_text("rules:\n  - name: q\n    expr: sum(x)\n    above: 1e999\n")
    code, text = check(capsys, path)
    assert code != 0 and "Traceback" not in text
    assert f'{path}:4:12: rule "q": above: want a number, got "1e999"' in text


def test_metric_threshold_of_400_digits_quotes_what_was_written():
    with pytest.raises(ConfigError) as caught:
        load_settings({"METRIC_THRESHOLD": DIGITS_400})
    message = str(caught.value)
    assert message == f'env METRIC_THRESHOLD: "{DIGITS_400}" is not a finite number'
    assert '"inf"' not in message


def test_serve_with_a_400_digit_threshold_exits_2_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("METRIC_THRESHOLD", DIGITS_400)
    code = main(["serve"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("llm-healthcheck: env METRIC_THRESHOLD:")


@pytest.mark.parametrize("name", ["FAILURE_THRESHOLD", "THREADS", "HISTORY_MAX_SERIES"])
def test_huge_whole_numbers_in_env_are_refused(name):
    with pytest.raises(ConfigError, match=rf"env {name}: .* is too large \(at most 2147483647\)"):
        load_settings({name: "9" * 5000})


def _reload_world(tmp_path, clock, upstream):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD)
    upstream.body = b"tgi_queue_size 1\n"
    settings = load_settings({"RULES_PATH": str(rules), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "5s"})
    return rules, Evaluator(settings, clock=clock)


def test_reload_of_a_huge_threshold_is_a_counted_failure_and_the_cycle_runs(tmp_path, clock, upstream):
    rules, evaluator = _reload_world(tmp_path, clock, upstream)
    evaluator.cycle()
    (rules / "a.yaml").write_text(GOOD.replace("above: 10", f"above: {DIGITS_400}"))
    clock.advance(5)
    evaluator.maybe_reload()
    decision = evaluator.cycle()
    assert dict(decision.reload.counts) == {"failure": 1}
    assert not decision.reload.last_ok
    assert "is not a finite number" in decision.reload.last_error
    assert [r.rule.above for r in decision.rules] == [10.0]  # last good rules kept
    assert decision.ready


def test_a_loader_bug_during_reload_still_counts_as_a_failed_reload(tmp_path, clock, upstream, monkeypatch):
    rules, evaluator = _reload_world(tmp_path, clock, upstream)
    evaluator.cycle()

    def broken(self):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(RulesSource, "load", broken)
    assert evaluator.reload() is False
    decision = evaluator.cycle()
    assert dict(decision.reload.counts) == {"failure": 1}
    assert "could not be loaded: OverflowError" in decision.reload.last_error


# ---- item 11: files in the rules directory ---------------------------------------------------


def test_a_300_mb_file_in_the_rules_dir_is_hashed_and_refused_without_reading_it_whole(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD)
    with open(rules / "huge.yaml", "wb") as handle:  # sparse: no disk used
        handle.truncate(300 * 1024 * 1024)
    source = RulesSource(load_settings({"RULES_PATH": str(rules)}))
    tracemalloc.start()
    try:
        source.fingerprint()
        with pytest.raises(ConfigError, match="huge.yaml: file is larger than 1 MiB"):
            load_rules([str(rules)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes allocated while hashing and loading"


def test_a_fifo_in_the_rules_dir_is_an_error_not_a_hang(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD)
    os.mkfifo(rules / "pipe.yaml")
    source = RulesSource(load_settings({"RULES_PATH": str(rules)}))
    with deadline(5, "hashing a rules dir holding a FIFO"):
        first = source.fingerprint()
        assert source.fingerprint() == first  # stable, so the poll does not reload forever
        with pytest.raises(ConfigError) as caught:
            load_rules([str(rules)])
    assert f"{rules / 'pipe.yaml'}: is not a regular file (a FIFO); rule files must be plain files" in str(caught.value)


def test_read_capped_never_returns_more_than_the_cap_plus_one(tmp_path):
    from exporter.rules import files as rule_files

    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (3 * 1024 * 1024))
    data, error = rule_files.read_capped(str(path))
    assert error == "" and len(data) == rule_files.MAX_FILE_BYTES + 1


# ---- item 12: durations and a dead evaluator -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SCRAPE_INTERVAL", "10000000d", "must be between 10ms and 10m"),
        ("SCRAPE_INTERVAL", "1ms", "must be between 10ms and 10m"),
        ("SCRAPE_TIMEOUT", "1h", "must be between 1ms and 10m"),
        ("RELOAD_INTERVAL", "10000000d", "must be between 100ms and 1h"),
        ("SHUTDOWN_DRAIN_SECONDS", "1e300", "must be between 0s and 10m"),
        ("GRACEFUL_TIMEOUT", "99999999999", "must be between 100ms and 1h"),
    ],
)
def test_durations_out_of_range_stop_startup_with_the_range(name, value, message):
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert str(caught.value) == f'env {name}: "{value}" {message}'


def test_serve_with_a_huge_interval_exits_2(capsys, monkeypatch):
    monkeypatch.setenv("SCRAPE_INTERVAL", "10000000d")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == 'llm-healthcheck: env SCRAPE_INTERVAL: "10000000d" must be between 10ms and 10m'


def test_rule_file_scrape_interval_out_of_range_is_a_located_error(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text("scrape:\n  interval: 10000000d\n" + GOOD)
    code, text = check(capsys, path)
    assert code != 0
    assert f'{path}:2:13: interval: "10000000d" must be between 10ms and 10m' in text


class _DyingScraper:
    """A scrape that raises what the loop cannot catch (as the old 10000000d wait did)."""

    def __init__(self, *args):
        pass

    def scrape(self, names):
        raise SystemExit("evaluator thread killed")

    def close(self):
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_livez_fails_when_the_evaluator_thread_is_gone(clock):
    settings = load_settings({"METRICS_ENDPOINT": "http://127.0.0.1:9/metrics"})
    evaluator = Evaluator(settings, clock=clock, scraper_factory=_DyingScraper)
    client = testing.TestClient(create_app(evaluator, build_registry(lambda: evaluator.decision, with_process=False)))
    assert client.simulate_get("/livez").status_code == 200
    evaluator.start()
    evaluator._thread.join(5)
    assert not evaluator._thread.is_alive()
    # The clock has not moved: only the dead thread can make /livez fail here.
    assert client.simulate_get("/livez").status_code == 503
