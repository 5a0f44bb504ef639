"""Label regexes with Prometheus' semantics, on RE2 itself (google-re2).

Prometheus compiles `=~` and `!~` values with Go's RE2 as `^(?s:<value>)$`: anchored at
both ends, `.` matching newlines, and matching in time linear in the label value. Python's
`re` backtracks, so a rule with `{model=~"(a+)+b"}` and a label value of thirty `a`s held the
GIL (and with it the probe answers) for minutes. RE2 cannot backtrack: every pattern that
Prometheus accepts is accepted here with the same meaning (`\\pL`, `(?U)`, POSIX classes,
mid-pattern flags), and one that RE2 refuses is a `check` error.

Label values are bounded before they reach a matcher as well: the scrape refuses a page with
a label value over the cap (exporter.core.scrape.LABEL_VALUE_LIMIT_BYTES).
"""

from collections.abc import Callable

import re2

# RE2's own bound on the memory of one compiled pattern (its default, 8 MiB): a pattern whose
# automaton would be bigger is refused at `check` rather than allocated at run time.
MAX_PATTERN_MEMORY = 8 << 20


class RegexSyntaxError(ValueError):
    pass


def _options() -> "re2.Options":
    options = re2.Options()
    options.dot_nl = True  # `.` matches a newline, as in Prometheus' (?s:...)
    options.never_capture = True  # matchers only ask whether, never what
    options.log_errors = False  # errors are raised and reported once, not logged to stderr
    options.max_mem = MAX_PATTERN_MEMORY
    return options


_OPTIONS = _options()


def compile_fullmatch(pattern: str) -> Callable[[str], bool]:
    """A predicate: does the whole of a value match `pattern` (RE2 syntax, as Prometheus)?"""
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as err:
        detail = err.args[0] if err.args else err
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RegexSyntaxError(str(detail)) from None
    full = compiled.fullmatch
    return lambda value: full(value) is not None
