"""Prometheus' own PromQL test files, run against our evaluator.

Every in-scope `eval instant` case (and `eval range`, run step by step) must pass, or
be listed below with the reason we differ. `pytest -s` prints the counts per file; so does
`python -m tests.promql_conformance`.
"""

import re
from pathlib import Path

import pytest

from exporter.promql import SUPPORTED_FUNCTIONS
from tests import promql_conformance as conf


def test_peer_files_are_present():
    # They sit in ../shared beside the checkout; without them every case below would vanish.
    assert sorted(p.name for p in conf.DEFAULT_DIR.glob("*.test")), f"no PromQL test files in {conf.DEFAULT_DIR}"


# "file:line" -> why our answer differs from Prometheus'. Empty while everything passes;
# the test below fails both on a new divergence and on an entry that no longer diverges.
KNOWN_DIVERGENCES: dict[str, str] = {}

# Why a case may be out of scope. Anything else means the runner or the compiler
# started refusing something it should run.
ALLOWED_REASONS = [
    r"native histogram data",
    r"native histogram in the expected result",
    r"range vector result",
    r"string result",
    r"subqueries are not supported",
    r'the "@" modifier is not supported',
    r'aggregation "(limitk|limit_ratio)" is not supported',
    r'function "(?P<function>[a-z_0-9]+)" is not supported',
]


@pytest.fixture(scope="module")
def results():
    return conf.run_all()


def test_every_in_scope_case_passes_or_is_a_known_divergence(results):
    print("\n" + conf.summarize(results))
    failed = {o.case.id: o for outs in results.values() for o in outs if o.status == conf.FAILED}
    unexpected = {k: v for k, v in failed.items() if k not in KNOWN_DIVERGENCES}
    assert not unexpected, "\n".join(f"{k}: {o.case.expr}\n    {o.detail}" for k, o in unexpected.items())
    fixed = sorted(set(KNOWN_DIVERGENCES) - set(failed))
    assert not fixed, f"these now pass; remove them from KNOWN_DIVERGENCES: {fixed}"


def test_out_of_scope_only_for_documented_reasons(results):
    bad = []
    for outcomes in results.values():
        for o in outcomes:
            if o.status != conf.OUT_OF_SCOPE:
                continue
            match = next((m for m in (re.fullmatch(p, o.detail) for p in ALLOWED_REASONS) if m), None)
            if match is None or (match.groupdict().get("function") in SUPPORTED_FUNCTIONS):
                bad.append(f"{o.case.id}: {o.case.expr}: {o.detail}")
    assert not bad, "\n".join(bad)


def test_every_file_contributes_cases(results):
    for name, outcomes in results.items():
        assert any(o.status == conf.PASSED for o in outcomes), name


# --- the runner itself must be able to fail ---


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sample.test"
    path.write_text(text)
    return path


def statuses(path: Path) -> list:
    return [(o.status, o.detail) for o in conf.run_file(path)]


def test_runner_reports_a_wrong_expectation_as_failed(tmp_path):
    path = write(
        tmp_path,
        """
load 5m
  requests_total{job="a"} 0+10x10

eval instant at 50m requests_total
  requests_total{job="a"} 100

eval instant at 50m requests_total
  requests_total{job="a"} 101

eval instant at 50m requests_total
  requests_total{job="b"} 100

eval instant at 50m sum(requests_total)
  7
""",
    )
    got = statuses(path)
    assert got[0][0] == conf.PASSED
    assert got[1] == (conf.FAILED, '{__name__="requests_total", job="a"}: expected 101.0, got 100.0')
    assert got[2][0] == conf.FAILED and "unexpected series" in got[2][1]
    assert got[3][0] == conf.FAILED and "expected scalar" in got[3][1]


def test_runner_classifies_out_of_scope_with_the_reason(tmp_path):
    path = write(
        tmp_path,
        """
load 5m
  plain 1x5
  hist {{schema:0 sum:1 count:1}}x5

eval instant at 5m label_replace(plain, "a", "b", "c", "d")
  plain{a="b"} 1

eval instant at 5m hist
  hist {{schema:0 sum:1 count:1}}

eval instant at 5m {__name__=~"plain|hist"}
  plain 1

eval range from 0 to 10m step 5m plain
  plain 1 1 1

eval range from 0 to 10m step 5m plain
  plain 1 _ 1

eval instant at 5m plain
  expect fail

eval instant at 5m plain
  plain 1
""",
    )
    got = statuses(path)
    assert got[0] == (conf.OUT_OF_SCOPE, 'function "label_replace" is not supported')
    assert got[1] == (conf.OUT_OF_SCOPE, "native histogram in the expected result")
    assert got[2] == (conf.OUT_OF_SCOPE, "native histogram data")
    assert got[3] == (conf.PASSED, "")  # range cases run one instant evaluation per step
    assert got[4][0] == conf.FAILED and "expected points" in got[4][1]
    assert got[5][0] == conf.FAILED  # expected an error, evaluation succeeded
    assert got[6] == (conf.PASSED, "")


def test_runner_checks_error_messages_and_order(tmp_path):
    path = write(
        tmp_path,
        """
load 5m
  a{x="1"} 1
  b{x="1"} 2

eval instant at 0 -{__name__=~"a|b"}
  expect fail msg: vector cannot contain metrics with the same labelset

eval instant at 0 -{__name__=~"a|b"}
  expect fail msg: something else entirely

eval instant at 0 sort_desc({__name__=~"a|b"})
  expect ordered
  b{x="1"} 2
  a{x="1"} 1

eval instant at 0 sort({__name__=~"a|b"})
  expect ordered
  b{x="1"} 2
  a{x="1"} 1
""",
    )
    got = statuses(path)
    assert got[0][0] == conf.PASSED
    assert got[1][0] == conf.FAILED
    assert got[2][0] == conf.PASSED
    assert got[3][0] == conf.FAILED and "position" in got[3][1]


def test_float_comparison_matches_prometheus_tests():
    assert conf.almost_equal(float("nan"), float("nan"))
    assert conf.almost_equal(1.0, 1.0 + 1e-9)
    assert not conf.almost_equal(1.0, 1.001)
    assert not conf.almost_equal(0.0, 1e-300)
    assert conf.almost_equal(float("inf"), float("inf"))
    assert not conf.almost_equal(float("inf"), float("-inf"))
