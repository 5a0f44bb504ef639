"""`llm-healthcheck simulate`: what your rules do to a fleet under load, in virtual time."""

import argparse
import sys
from pathlib import Path

from exporter.config.numbers import flag, parse_whole

HELP = """Simulate regions of inference pods behind a gateway, each with the real rule engine.

SCENARIO is a scenario file or the name of a shipped one (diurnal, flash-crowd,
hovering, sick-tgi, sick-vllm, slow-ramp, spillover). Writes a per-second CSV and
a PNG plot into --out and prints a summary: readiness flips, time unready, queue
wait and TTFT percentiles, spilled and rejected requests. --compare A B runs the
same seeded requests against two rule sets (files, or seed:METRIC:THRESHOLD for the
seed's single threshold) and prints the summaries side by side."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario file, or a shipped scenario name")
    parser.add_argument(
        "--out", type=Path, default=Path("sim-output"), help="directory for CSV and PNG (default sim-output)"
    )
    parser.add_argument(
        "--rules",
        metavar="RULES",
        help="rule file(s) instead of the scenario's (comma-separated, or seed:METRIC:THRESHOLD)",
    )
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="run against two rule sets and compare")
    parser.add_argument(
        "--balance",
        choices=("round_robin", "random", "least_request", "utilization"),
        help="override the scenario's gateway.balance (utilization: GKE's waterfall on the rules' load score)",
    )
    parser.add_argument("--seed", type=flag(parse_whole), help="override the scenario's seed")
    parser.add_argument("--duration", metavar="DURATION", help="override the scenario's duration (e.g. 10m)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="simulate the fleet view from Prometheus and the fail-open guard (the rule file's fleet: block, "
        "else the scenario's fleet: settings)",
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="always show the progress bar"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from exporter.config.errors import ConfigError
    from exporter.sim.rules_argument import parse_rules_argument
    from exporter.sim.scenario import load_scenario, resolve_scenario

    try:
        scenario = load_scenario(resolve_scenario(args.scenario))
        if args.seed is not None:
            scenario = replace(scenario, seed=args.seed)
        if args.balance:
            scenario = replace(scenario, balance=args.balance)
        if args.duration:
            scenario = replace(scenario, duration=_duration(args.duration))
        if args.compare:
            specs = [parse_rules_argument(text) for text in args.compare]
        elif args.rules:
            specs = [parse_rules_argument(args.rules)]
        else:
            specs = [scenario.rules]
        rulesets = [_load(spec) for spec in specs]
    except ConfigError as err:
        for problem in err.problems:
            print(f"llm-healthcheck: {problem}", file=sys.stderr)
        return 2

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"llm-healthcheck: --out: cannot create {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    if len(specs) == 1:
        from exporter.sim.report import format_summary

        summary, written = _run_one(scenario, specs[0], rulesets[0], args, "", show_progress=True)
        print(format_summary(summary))
        _print_written(written)
        return 0

    from exporter.sim.report import format_comparison

    runs = _run_pair(scenario, specs, rulesets, args)
    for _, written in runs:
        _print_written(written)
    print(format_comparison(runs[0][0], runs[1][0]))
    return 0


def _print_written(paths) -> None:
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)


def _run_pair(scenario, specs, rulesets, args):
    """Both runs of --compare; in two processes when the machine has two cores to give."""
    import multiprocessing
    import os

    jobs = list(zip(specs, rulesets, ["-a", "-b"]))
    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [
            _run_one(scenario, spec, rules, args, suffix, show_progress=i == 0)
            for i, (spec, rules, suffix) in enumerate(jobs)
        ]
    # Forked, so the scenario (with its rate functions) need not be pickled; only the
    # small summary comes back. The first run draws the progress bar for both.
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    spec, rules, suffix = jobs[1]
    child = ctx.Process(target=_child, args=(sender, scenario, spec, rules, args, suffix), daemon=True)
    child.start()
    sender.close()
    try:
        spec, rules, suffix = jobs[0]
        first = _run_one(scenario, spec, rules, args, suffix, show_progress=True)
        try:
            outcome = receiver.recv()
        except EOFError:
            outcome = ("error", "the second run ended without a result")
    finally:
        child.join(timeout=30)
        receiver.close()
    if outcome[0] == "error":
        raise RuntimeError(outcome[1])
    return [first, outcome[1]]


def _child(sender, scenario, spec, rules, args, suffix) -> None:
    try:
        sender.send(("ok", _run_one(scenario, spec, rules, args, suffix, show_progress=False)))
    except BaseException as err:  # reported by the parent, which owns the terminal
        sender.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        sender.close()


def _run_one(scenario, spec, ruleset, args, suffix, show_progress=True):
    from exporter.sim.cluster import simulate
    from exporter.sim.progress import ProgressBar
    from exporter.sim.report import summarize, write_csv

    # A bar only where it helps: on a terminal, for runs that take more than a moment.
    work = scenario.replicas * scenario.duration / scenario.step
    enabled = args.progress if args.progress is not None else (sys.stderr.isatty() and work > 20_000)
    enabled = enabled and show_progress
    bar = ProgressBar(sys.stderr, f"{scenario.name}{suffix}", enabled)
    try:
        result = simulate(scenario, ruleset, spec.label, progress=bar.update, fleet=_fleet(scenario, ruleset, args))
    finally:
        bar.close()
    base = args.out / f"{scenario.name}{suffix}"
    written = [base.with_suffix(".csv")]
    write_csv(result, written[0])
    # plot.py imports matplotlib inside plot_run, so importing the module proves nothing:
    # ask for matplotlib itself before drawing.
    if not args.no_plot and _can_plot(show_progress):
        from exporter.sim.plot import plot_run

        png = base.with_suffix(".png")
        plot_run(result, png, _queue_thresholds(scenario, ruleset))
        written.append(png)
    return summarize(result), written


def _fleet(scenario, ruleset, args):
    """The fleet view to simulate with --fleet (a rule file's own fleet: block is used as it is)."""
    return scenario.fleet if getattr(args, "fleet", False) else None


def _can_plot(say_why: bool) -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        return True
    if say_why:  # once per command, not once per run of --compare
        print(
            "llm-healthcheck simulate: no plot, matplotlib is not installed: "
            "pip install 'llm-healthcheck[sim]' for the PNG (or pass --no-plot)",
            file=sys.stderr,
        )
    return False


def _load(spec):
    from exporter.rules.loader import load_rules, seed_ruleset

    if spec.files:
        return load_rules(list(spec.files))
    return seed_ruleset(spec.metric, spec.threshold)


def _queue_thresholds(scenario, ruleset) -> list[tuple[float, float | None]]:
    """(trip, recover_below) of the rules that read the plotted queue metric, to draw on the plot.
    A rule that applies only with another condition (`... and on() (slow)`) draws no line: its
    threshold is not where the plotted queue alone takes the pod out."""
    from exporter.sim.plot import QUEUE_METRIC

    metric = QUEUE_METRIC[scenario.engine]
    return sorted(
        {
            (rule.above, rule.recover_below)
            for rule in ruleset.rules
            if rule.above is not None
            and rule.severity == "unready"
            and metric in rule.expr_text
            and " and " not in rule.expr_text
        },
        key=lambda pair: (pair[0], pair[1] if pair[1] is not None else pair[0]),
    )


def _duration(text: str) -> float:
    from exporter.config.durations import parse_duration
    from exporter.config.errors import ConfigError, Problem

    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise ConfigError([Problem("--duration", message=str(err))]) from None
    if seconds <= 0:
        raise ConfigError([Problem("--duration", message=f'"{text}" must be above 0')])
    return seconds
