"""`llm-healthcheck panel`: every shipped scenario x gateway mode x policy, lost requests and waits."""

import argparse
import shlex
import sys
import time
from pathlib import Path

HELP = """Run the decision panel: every shipped scenario, under every gateway mode (the spill
policies none_ready and proportional, and the utilization balancer), against
no sidecar (always ready), the scenario's single threshold (seed), each shipped rule pack
for the scenario's engine (standalone, and +fleet: with the Prometheus fleet view and the
fail-open guard) and any --rules given. Writes panel.md (a table and the acceptance checks)
and panel.csv into --out. Virtual time: the full panel takes a few minutes, --quick under
a minute. --update-doc FILE replaces the part of FILE between the panel markers with the table."""

BEGIN, END = "<!-- panel:begin -->", "<!-- panel:end -->"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a subset of scenarios, for CI (under a minute)")
    parser.add_argument("--out", type=Path, default=Path("panel-output"), help="directory for panel.md and panel.csv")
    parser.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="RULES",
        help="also run these rules (comma-separated files, or seed:METRIC:N); repeatable",
    )
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME", help="only these scenarios")
    parser.add_argument("--workers", type=int, help="processes (default: the cores, at most 2)")
    parser.add_argument("--update-doc", type=Path, metavar="FILE", help=f"write the table into FILE between {BEGIN}")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show the bar")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")


def run(args: argparse.Namespace) -> int:
    from exporter.config.errors import ConfigError
    from exporter.sim import panel
    from exporter.sim.acceptance import checks
    from exporter.sim.panel_report import format_markdown, write_csv
    from exporter.sim.progress import ProgressBar
    from exporter.sim.rules_argument import parse_rules_argument
    from exporter.sim.scenario import load_scenario, resolve_scenario, shipped_scenarios

    if args.workers is not None and args.workers < 1:
        print(f"llm-healthcheck panel: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    names = args.scenario or (list(panel.QUICK_SCENARIOS) if args.quick else shipped_scenarios())
    try:
        scenarios = [load_scenario(resolve_scenario(name)) for name in names]
        extra = [parse_rules_argument(text) for text in args.rules]
        jobs = panel.jobs_for(scenarios, extra, panel.QUICK_MODES if args.quick else None)
        panel.check_policies(sorted({job[2] for job in jobs}, key=lambda p: p.name))
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"llm-healthcheck panel: cannot create {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2

    workers = args.workers or panel.default_workers()
    enabled = args.progress if args.progress is not None else sys.stderr.isatty()
    bar = ProgressBar(sys.stderr, f"panel: {len(jobs)} runs", enabled)
    started = time.monotonic()
    try:
        rows = panel.run_panel(jobs, workers, progress=bar.update)
    finally:
        bar.close()
    took = time.monotonic() - started
    command = "llm-healthcheck panel" + "".join(f" {shlex.quote(a)}" for a in _shown_args(args))
    text = format_markdown(rows, command, took, workers)
    (args.out / "panel.md").write_text(text, encoding="utf-8")
    write_csv(rows, args.out / "panel.csv")
    if args.update_doc is not None:
        problem = _update_doc(args.update_doc, text)
        if problem:
            print(f"llm-healthcheck panel: {problem}", file=sys.stderr)
            return 2
    found = checks(rows)
    held = sum(c.holds for c in found)
    print(f"panel: {len(rows)} runs in {took:.0f}s on {workers} process(es); {held} of {len(found)} checks hold")
    for check in found:
        if not check.holds:
            print(f"  fails: {check.criterion}: {check.where}: {check.detail}")
    for name in ("panel.md", "panel.csv"):
        print(f"wrote {args.out / name}", file=sys.stderr)
    return 0


def _shown_args(args) -> list[str]:
    out = []
    if args.quick:
        out.append("--quick")
    for name in args.scenario:
        out += ["--scenario", name]
    for text in args.rules:
        out += ["--rules", text]
    return out


def _update_doc(path: Path, table: str) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        return f"cannot read {path}: {err.strerror or err}"
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        return f"{path} has no {BEGIN} ... {END} markers to write the table between"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    try:
        path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")
    except OSError as err:
        return f"cannot write {path}: {err.strerror or err}"
    return None
