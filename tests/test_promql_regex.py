"""Label regexes follow Prometheus (Go RE2) syntax, fully anchored, even where Python's
`re` spells things differently."""

import pytest

from exporter.core.history import History
from exporter.promql import PromQLError, compile_expr, evaluate


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


@pytest.mark.parametrize("pattern", [r"\\pL+", "(?U)a+"])
def test_regex_features_python_lacks_are_refused_not_approximated(pattern):
    with pytest.raises(PromQLError, match="invalid regular expression"):
        compile_expr('req{group=~"' + pattern + '"}')
