"""`llm-healthcheck test FILE...`: run rule unit tests (promtool's style) against rule files."""

import sys

from exporter.core.rule_tests import run_test_file

HELP = """Run rule unit tests (promtool's style) against rule files.

Input series in promtool's notation, and the expected state of each rule and of readiness
at chosen times (see docs/rules.md, "Testing rules").

Exit 0 when every expectation holds; exit 1 printing each difference as expected vs got."""


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="rule test file (YAML)")


def run(args) -> int:
    failed = False
    for file in args.files:
        report = run_test_file(file)
        for problem in report.problems:
            print(problem, file=sys.stderr)
        for failure in report.failures:
            print(failure)
        if report.problems:
            print(f"{file}: FAILED: the test file or its rule files have problems", file=sys.stderr)
        elif report.failures:
            print(f"{file}: FAILED: {len(report.failures)} of {_count(report)}")
        else:
            print(f"{file}: ok: {_count(report)}")
        failed = failed or not report.ok
    return 1 if failed else 0


def _count(report) -> str:
    tests = "test" if report.tests == 1 else "tests"
    return f"{report.checks} checks in {report.tests} {tests}"
