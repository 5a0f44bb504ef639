"""Label regexes follow Prometheus (Go RE2) syntax, fully anchored, even where Python's
`re` spells things differently."""

import subprocess
import sys

import pytest

from exporter.core.history import History
from exporter.promql import PromQLError, compile_expr, evaluate
from tests.support import REPO


def lab(name, **labels):
    return tuple(sorted({**labels, "__name__": name}.items()))


@pytest.fixture
def groups():
    h = History(retention_seconds=60)
    h.record(0, [(lab("req", group=g), float(i)) for i, g in enumerate(["production", "canary", "Pre-Prod", "a\nb"])])
    return h


def selected(h, text):
    return sorted(dict(labels)["group"] for labels, _ in evaluate(compile_expr(text), h, 0))


@pytest.mark.parametrize(
    "matcher, expected",
    [
        ('group=~"prod"', []),  # anchored: a substring is not enough
        ('group=~"prod.*"', ["production"]),
        ('group=~"(?i)PRO.*"', ["production"]),
        ('group=~"((?i)PRO).*"', ["production"]),  # RE2: flags scoped to the group
        ('group=~".*((?i)duc).*"', ["production"]),
        ('group=~"pre(?i)-PROD"', []),  # the flag applies only after it
        ('group=~"Pre(?i)-PROD"', ["Pre-Prod"]),
        ('group=~"[[:upper:]].*"', ["Pre-Prod"]),
        ('group=~"a.b"', ["a\nb"]),  # "." matches a newline, as in Prometheus
        ('group!~"c.*|p.*"', ["Pre-Prod", "a\nb"]),
        ('group=~"canary|x(?i)Y"', ["canary"]),
    ],
)
def test_regex_matchers_behave_as_in_prometheus(groups, matcher, expected):
    assert selected(groups, "req{" + matcher + "}") == expected


@pytest.mark.parametrize(
    "matcher, expected",
    [
        (r'group=~"\\pL+"', ["canary", "production"]),  # RE2's unicode classes, which Python's re lacks
        ('group=~"(?U)c.+"', ["canary"]),  # ungreedy still has to match the whole value
    ],
)
def test_re2_features_python_lacks_behave_as_in_prometheus(groups, matcher, expected):
    assert selected(groups, "req{" + matcher + "}") == expected


@pytest.mark.parametrize("pattern", ["(a", "a{2,1}", "(?<=a)b"])
def test_patterns_re2_refuses_are_check_errors(pattern):
    with pytest.raises(PromQLError, match="regex|regular expression"):
        compile_expr('req{group=~"' + pattern + '"}')


_CATASTROPHE = """
import sys
from exporter.core.history import History
from exporter.promql import compile_expr, evaluate
h = History(retention_seconds=60)
name = ("__name__", "req")
h.record(0, [((name, ("model", "a" * 32)), 1.0), ((name, ("model", "a" * 31 + "b")), 2.0)])
print([dict(labels)["model"] for labels, _ in evaluate(compile_expr(sys.argv[1]), h, 0)])
"""


@pytest.mark.parametrize("pattern", ["(a+)+b", "(a*)*b", "(a|a)+b"])
def test_a_catastrophic_pattern_cannot_freeze_the_evaluator(pattern):
    # A backtracking matcher takes minutes over thirty-two "a"s against (a+)+b and holds the GIL
    # all along, so no probe is answered meanwhile. RE2 matches in time linear in the value. A
    # child process, because a thread stuck in a backtracking match cannot be timed out.
    query = 'req{model=~"' + pattern + '"}'
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CATASTROPHE, query], cwd=REPO, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"matching {pattern} against thirty-two a's did not finish")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(["a" * 31 + "b"])
