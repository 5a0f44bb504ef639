"""`llm-healthcheck check PATH...`: validate rule files the way the sidecar will load them."""

from exporter.config.durations import format_duration
from exporter.rules.loader import load_rules

HELP = """Validate rule files (files or directories of *.yaml) without starting anything.

Exit 0 and one summary line per rule when every file is valid; exit 2 and one line per
problem (llm-healthcheck: file:line:col: rule "name": message) otherwise. A runtime reload runs the same
checks, so a file that passes here loads there."""


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rule file or directory of *.yaml / *.yml files")


def run(args) -> int:
    ruleset = load_rules(args.paths)  # a ConfigError: every problem, one line each, exit 2
    rows = [_summary(rule) for rule in ruleset.rules]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        print("  ".join(cells))
    if ruleset.fleet is not None:
        print(_fleet_summary(ruleset.fleet))
    if ruleset.score is not None:  # the load score for /load, one line so a reviewer sees it
        score = ruleset.score
        terms = ", ".join(term.name for term in score.terms)
        print(
            f"score: largest of {terms}; on_missing {score.on_missing:g}, on_stale {score.on_stale:g}  {score.source}"
        )
    return 0


def _fleet_summary(fleet) -> str:
    from exporter.config.settings import redact_url

    guard = (
        f"fail-open guard at max_unready_fraction {fleet.max_unready_fraction:g}"
        if fleet.guarded
        else "no fail-open guard"
    )
    return (
        f"fleet: {redact_url(fleet.url)} every {format_duration(fleet.interval)} "
        f"(timeout {format_duration(fleet.timeout)}, max_age {format_duration(fleet.max_age)}); "
        f"series {', '.join(sorted(fleet.series_names))}; {guard}"
    )


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
