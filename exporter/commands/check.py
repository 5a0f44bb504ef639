"""`llm-healthcheck check PATH...`: validate rule files the way the sidecar will load them."""

import sys

from exporter.config.errors import ConfigError
from exporter.rules.loader import format_duration, load_rules

HELP = """Validate rule files (files or directories of *.yaml) without starting anything.

Exit 0 and one summary line per rule when every file is valid; exit 1 and one line per
problem (file:line:col: rule "name": message) otherwise. A runtime reload runs the same
checks, so a file that passes here loads there."""


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rule file or directory of *.yaml / *.yml files")


def run(args) -> int:
    try:
        ruleset = load_rules(args.paths)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 1
    rows = [_summary(rule) for rule in ruleset.rules]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        print("  ".join(cells))
    if ruleset.score is not None:  # the load score for /load, one line so a reviewer sees it
        score = ruleset.score
        terms = ", ".join(term.name for term in score.terms)
        print(
            f"score: largest of {terms}; on_missing {score.on_missing:g}, on_stale {score.on_stale:g}  {score.source}"
        )
    return 0


def _summary(rule) -> tuple[str, ...]:
    if rule.above is not None:
        band = f", recover_below {rule.recover_below:g}" if rule.recover_below is not None else ""
        form, limits = "threshold", f"above {rule.above:g}{band}"
    elif rule.below is not None:
        band = f", recover_above {rule.recover_above:g}" if rule.recover_above is not None else ""
        form, limits = "threshold", f"below {rule.below:g}{band}"
    else:
        form, limits = "condition", "any series"
    return (
        rule.name,
        form,
        limits,
        f"for {format_duration(rule.for_seconds)}",
        f"keep_firing_for {format_duration(rule.keep_firing_for_seconds)}",
        rule.severity,
        rule.source,
    )
