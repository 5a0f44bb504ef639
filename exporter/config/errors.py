"""The one error type for configuration problems, and the one place they are formatted.

Every problem reads like promtool's: `file:line:col: rule "name": message`.
Parts that are unknown are left out (no rule -> no `rule "..."` part; no
position -> just `file:`), so env-var errors read `env METRIC_THRESHOLD: ...`.
"""

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int = 0
    col: int = 0
    rule: str | None = None
    message: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.col or 1}"
        rule = f' rule "{self.rule}":' if self.rule else ""
        return f"{where}:{rule} {self.message}"


class ConfigError(Exception):
    """Raised with every problem found, never just the first."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def unexpected(origin: str, error: Exception) -> ConfigError:
    """An exception no check foresaw, as a problem: counted and shown like any other, no traceback."""
    return ConfigError([Problem(origin, message=f"could not be loaded: {type(error).__name__}: {error}"[:300])])


PROGRAM = "llm-healthcheck"


def report_config_error(err: ConfigError, stream=None) -> None:
    """Print every problem as one line `llm-healthcheck: <problem>` (stderr by default)."""
    import sys

    for line in str(err).splitlines():
        print(f"{PROGRAM}: {line}", file=stream or sys.stderr)
