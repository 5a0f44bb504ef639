"""`llm-healthcheck check PATH...`: validate rule files the way the sidecar will load them,
and with `--against URL|FILE`, find the metric names the page does not have."""

import sys

from exporter.config.durations import format_duration
from exporter.rules.loader import load_rules

HELP = """Validate rule files (files or directories of *.yaml) without starting anything.

Exit 0 and one summary line per rule when every file is valid; exit 2 and one line per
problem (llm-healthcheck: file:line:col: rule "name": message) otherwise. A runtime reload runs
the same checks, so a file that passes here loads there.

With --against URL|FILE the inference server's page is scraped once (or a saved page read)
and every metric family a rule reads that the page lacks is a warning, with the closest
names the page has ("did you mean tgi_queue_size?"): such a rule would be ok with no data
for ever. Warnings exit 0; with --strict they exit 1. A page that cannot be read exits 2."""


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rule file or directory of *.yaml / *.yml files")
    parser.add_argument(
        "--against",
        metavar="URL|FILE",
        help="an inference server /metrics URL to scrape once, or a saved page, to check metric names against",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when --against finds an absent metric family")
    parser.add_argument(
        "--scrape-timeout", "--timeout", dest="timeout", default="5s", help="scrape timeout for --against URL"
    )


def run(args) -> int:
    if args.strict and args.against is None:
        print("llm-healthcheck: --strict needs --against URL|FILE", file=sys.stderr)
        return 2
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
    if args.against is None:
        return 0
    from exporter.commands.page_source import PageError, page_names

    try:
        present = page_names(args.against, args.timeout)
    except PageError as err:
        print(f"llm-healthcheck: {err}", file=sys.stderr)
        return 2
    warnings = _absent_warnings(ruleset, present)
    for line in warnings:
        print(line, file=sys.stderr)
    where = _redacted(args.against)
    if warnings:
        print(
            f"{len(warnings)} metric famil{'y' if len(warnings) == 1 else 'ies'} absent from {where}", file=sys.stderr
        )
        return 1 if args.strict else 0
    print(f"every metric family the rules read is on {where}")
    return 0


def _absent_warnings(ruleset, present: set[str]) -> list[str]:
    from exporter.rules.page_families import absent_families, suggestions

    lines = []
    for rule in ruleset.rules:
        for name in absent_families(rule, present):
            close = suggestions(name, present)
            hint = f"did you mean {' or '.join(close)}?" if close else "the page has no similar name"
            lines.append(
                f'{rule.expr_source or rule.source}: rule "{rule.name}": warning: metric family '
                f'"{name}" is absent from the page; {hint}'
            )
    return lines


def _redacted(source: str) -> str:
    from exporter.config.settings import redact_url

    return redact_url(source) if "://" in source else source


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
