"""`llm-healthcheck check` as an operator runs it: a real subprocess, exact output, exit codes.

Each file (or directory) in tests/rules_broken/ holds exactly one mistake; its sibling
`.expected` file is the exact stderr an operator must see (exit status 2, as for every
configuration error).
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BROKEN = REPO / "tests" / "rules_broken"
CASES = sorted(p for p in BROKEN.iterdir() if p.suffix == ".yaml" or p.is_dir())


def run_check(*paths, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "exporter", "check", *map(str, paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_broken_case_has_an_expected_message_and_there_are_enough():
    assert len(CASES) >= 15
    for case in CASES:
        assert (BROKEN / f"{case.stem}.expected").is_file(), case


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_broken_rule_file_gives_its_exact_message(case):
    expected = (BROKEN / f"{case.stem}.expected").read_text()
    result = run_check(case.relative_to(REPO))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == expected
    assert "Traceback" not in result.stderr


def test_problems_from_several_files_are_all_reported_in_argument_order():
    first, second = BROKEN / "unknown_key.yaml", BROKEN / "subquery.yaml"
    result = run_check(second.relative_to(REPO), first.relative_to(REPO))
    assert result.returncode == 2
    expected = (BROKEN / "subquery.expected").read_text() + (BROKEN / "unknown_key.expected").read_text()
    assert result.stderr == expected


def test_several_mistakes_in_one_file_are_each_reported_in_source_order(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: a\n"
        "    expr: sum(tgi_queue_size)\n"
        "    above: 10\n"
        "    for: 10\n"
        "  - name: b\n"
        "    expr: rate(x[5m]\n"
        "    severity: critical\n"
    )
    result = run_check(rules)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f'llm-healthcheck: {rules}:5:10: rule "a": for: bare number "10" has no unit; write "10s"',
        f'llm-healthcheck: {rules}:7:11: rule "b": expr: parse error: unclosed left parenthesis',
        f'llm-healthcheck: {rules}:8:15: rule "b": severity: want one of unready, warn, got "critical"',
    ]


def test_valid_file_prints_one_summary_line_per_rule_and_exits_zero(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: queue_saturated\n"
        "    expr: sum(tgi_queue_size)\n"
        "    above: 10\n"
        "    recover_below: 6\n"
        "    for: 10s\n"
        "    keep_firing_for: 1m30s\n"
        "  - name: stalled\n"
        "    expr: sum(vllm:num_requests_waiting) > 0 and sum(vllm:num_requests_running) == 0\n"
        "    for: 20s\n"
        "  - name: idle_warning\n"
        "    expr: sum(tgi_batch_current_size)\n"
        "    below: 0.5\n"
        "    recover_above: 2\n"
        "    severity: warn\n"
    )
    result = run_check(rules)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == [
        "queue_saturated",
        "threshold",
        "above",
        "10,",
        "recover_below",
        "6",
        "for",
        "10s",
        "keep_firing_for",
        "1m30s",
        "unready",
        f"{rules}:2",
    ]
    assert lines[1].split() == [
        "stalled",
        "condition",
        "any",
        "series",
        "for",
        "20s",
        "keep_firing_for",
        "0s",
        "unready",
        f"{rules}:8",
    ]
    assert lines[2].split() == [
        "idle_warning",
        "threshold",
        "below",
        "0.5,",
        "recover_above",
        "2",
        "for",
        "0s",
        "keep_firing_for",
        "0s",
        "warn",
        f"{rules}:11",
    ]


def test_shipped_rule_packs_pass_check():
    result = run_check("rules/")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert len(names) == len(set(names)) >= 12


def test_missing_path_is_one_clear_line(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = run_check(missing)
    assert result.returncode == 2
    assert result.stderr == f"llm-healthcheck: {missing}: no such file or directory\n"
