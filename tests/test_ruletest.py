"""`llm-healthcheck test`: the rule unit-test runner, through the real CLI and its API."""

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.core.rule_tests import parse_series, run_test_file

REPO = Path(__file__).resolve().parents[1]

RULES = """\
rules:
  - name: queue_saturated
    expr: sum(tgi_queue_size)
    above: 10
    recover_below: 6
    for: 5s
    keep_firing_for: 10s
  - name: queue_warning
    expr: sum(tgi_queue_size)
    above: 5
    severity: warn
"""


def write(tmp_path: Path, tests: str, rules: str = RULES) -> Path:
    (tmp_path / "rules.yaml").write_text(rules)
    test_file = tmp_path / "t.test.yaml"
    test_file.write_text("rule_files: [rules.yaml]\n" + tests)
    return test_file


def run_cli(*files):
    return subprocess.run(
        [sys.executable, "-m", "exporter", "test", *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


QUEUE_TEST = """\
tests:
  - name: trips and recovers
    interval: 1s
    input_series:
      - series: 'tgi_queue_size{model="a"}'
        values: '0x4 12x20 8x5 3x30'
    expect:
      - eval_time: 9s
        rules: {queue_saturated: pending}
        ready: true
      - eval_time: 10s
        rules: {queue_saturated: {state: firing, value: 12}, queue_warning: firing}
        ready: false
      - eval_time: 28s
        rules: {queue_saturated: {state: firing, value: 8}}
        ready: false
      - eval_time: 32s
        rules: {queue_saturated: recovering, queue_warning: ok}
        ready: false
      - eval_time: 42s
        rules: {queue_saturated: ok}
        ready: true
"""


def test_passing_file_exits_zero_and_counts_its_checks(tmp_path):
    test_file = write(tmp_path, QUEUE_TEST)
    result = run_cli(test_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"{test_file}: ok: 14 checks in 1 test\n"
    assert result.stderr == ""


def test_wrong_expectations_fail_with_expected_and_got_side_by_side(tmp_path):
    wrong = (
        QUEUE_TEST.replace("{queue_saturated: pending}", "{queue_saturated: firing}")
        .replace("value: 8}", "value: 9}")
        .replace(
            "        rules: {queue_saturated: ok}\n        ready: true",
            "        rules: {queue_saturated: ok}\n        ready: false",
        )
    )
    test_file = write(tmp_path, wrong)
    result = run_cli(test_file)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f'{test_file}:10:17: test "trips and recovers": at 9s: rule "queue_saturated": '
        f"expected firing, got pending (value 12 > threshold 10 for 4s of 5s)",
        f'{test_file}:16:17: test "trips and recovers": at 28s: rule "queue_saturated": expected value 9, got 8',
        f'{test_file}:21:9: test "trips and recovers": at 42s: expected unready, got ready (no rule blocks)',
        f"{test_file}: FAILED: 3 of 14 checks in 1 test",
    ]


def test_one_failing_file_among_several_fails_the_run(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = write(tmp_path / "good", QUEUE_TEST)
    bad = write(tmp_path / "bad", QUEUE_TEST.replace("queue_saturated: ok}", "queue_saturated: firing}"))
    result = run_cli(good, bad)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{good}: ok: 14 checks in 1 test"
    assert lines[-1] == f"{bad}: FAILED: 1 of 14 checks in 1 test"


def test_eval_time_between_steps_is_evaluated_at_that_time(tmp_path):
    test_file = write(
        tmp_path,
        """\
tests:
  - name: coarse interval
    interval: 10s
    input_series:
      - series: 'tgi_queue_size'
        values: '20x5'
    expect:
      - eval_time: 4s
        rules: {queue_saturated: pending}
      - eval_time: 5s
        rules: {queue_saturated: firing}
        ready: false
""",
    )
    report = run_test_file(str(test_file))
    assert report.failures == [] and report.problems == []
    assert report.checks == 3


def test_missing_samples_and_staleness_follow_prometheus(tmp_path):
    test_file = write(
        tmp_path,
        """\
tests:
  - name: a gap is bridged by the lookback, a stale marker ends the series at once
    input_series:
      - series: 'tgi_queue_size'
        values: '20x6 _x3 20 stale'
    expect:
      - eval_time: 9s
        rules: {queue_saturated: {state: firing, value: 20}}
      - eval_time: 11s
        rules: {queue_saturated: {state: recovering, value: null}}
""",
    )
    report = run_test_file(str(test_file))
    assert report.failures == [] and report.problems == []


def test_unknown_rule_in_an_expectation_is_a_problem_not_a_silent_pass(tmp_path):
    test_file = write(
        tmp_path,
        """\
tests:
  - name: typo
    input_series: []
    expect:
      - eval_time: 1s
        rules: {queue_saturatd: ok}
""",
    )
    result = run_cli(test_file)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'{test_file}:7:17: test "typo": no rule named "queue_saturatd" in {tmp_path / "rules.yaml"}',
        f"{test_file}: FAILED: the test file or its rule files have problems",
    ]


def test_malformed_test_file_reports_each_problem_with_its_position(tmp_path):
    test_file = write(
        tmp_path,
        """\
tests:
  - name: bad
    interval: 1
    input_series:
      - series: 'tgi_queue_size{model=a}'
        values: '1+1x3'
      - series: 'tgi_queue_size'
        values: '1+x3'
    expect:
      - eval_time: 10 s
        rules: {queue_saturated: burning}
        ready: maybe
    extra: 1
""",
    )
    report = run_test_file(str(test_file))
    assert [str(p) for p in report.problems] == [
        f'{test_file}:4:15: test "bad": interval: bare number 1 has no unit; write "1s"',
        f'{test_file}:6:17: test "bad": series: "tgi_queue_size{{model=a}}": cannot read the labels at "model=a"',
        f"{test_file}:9:17: test \"bad\": values: invalid series value '1+x3': "
        f"expected a number, _, stale, or a form like 1+2x5",
        f'{test_file}:11:20: test "bad": eval_time: "10 s" is not a duration; '
        f"write a whole number and unit like 10s, 800ms or 1m30s",
        f'{test_file}:12:34: test "bad": rule "queue_saturated": want one of ok, pending, firing, recovering, '
        f'got "burning"',
        f'{test_file}:13:16: test "bad": ready: want true or false',
        f'{test_file}:14:5: test "bad": unknown key "extra"; known keys: name, interval, input_series, expect',
    ]


def test_problems_in_the_rule_files_are_reported_as_check_would(tmp_path):
    test_file = write(
        tmp_path, "tests:\n  - name: x\n    expect: []\n", rules="rules:\n  - name: a\n    expr: sum(x\n    above: 1\n"
    )
    result = run_cli(test_file)
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[0]
        == f'{tmp_path / "rules.yaml"}:3:11: rule "a": expr: parse error: unclosed left parenthesis'
    )


def test_missing_test_file_is_one_clear_line(tmp_path):
    result = run_cli(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{tmp_path / 'nope.yaml'}: cannot read: no such file or directory"


@pytest.mark.parametrize(
    "text, labels",
    [
        ("up", (("__name__", "up"),)),
        (
            'vllm:num_requests_waiting{model_name="m", engine="0"}',
            (("__name__", "vllm:num_requests_waiting"), ("engine", "0"), ("model_name", "m")),
        ),
        ('{__name__="x", a="q\\"uote\\\\d\\n"}', (("__name__", "x"), ("a", 'q"uote\\d\n'))),
        ('x{a="1",}', (("__name__", "x"), ("a", "1"))),
    ],
)
def test_parse_series_reads_promtool_series_syntax(text, labels):
    assert parse_series(text) == labels


@pytest.mark.parametrize(
    "text, message",
    [
        ('{a="1"}', "has no metric name"),
        ('x{a="1", a="2"}', 'label "a" is given twice'),
        ('x{a="1" b="2"}', "expected a comma"),
        ("x y", "is not a series"),
    ],
)
def test_parse_series_refuses_malformed_series(text, message):
    with pytest.raises(ValueError, match=message):
        parse_series(text)
