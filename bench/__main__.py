"""`make bench`: the sidecar's costs on this machine, beside the targets of issue 7.

    python -m bench [--only cycle,health,status,memory,startup,abuse,worst-memory] [--quick] [--markdown]

Prints the machine, one table per measurement and a summary of the targets. Nothing here is
a test: numbers vary with the machine and its load, so the summary says "met" or by how much
a target was missed, and the exit status is 0 either way (1 only if a measurement failed).
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import abuse, cycle, health, load, memory, startup, status_page, synthetic, worst_memory
from bench.procs import REPO

FIXTURES = REPO.parent / "shared" / "fixtures"
TGI = "tgi-datadog-integrations-core-3.3.5.prom"
SECTIONS = ("cycle", "health", "status", "memory", "startup", "abuse", "worst-memory")

CYCLE_RATIO_TARGET = 0.05
PSS_TARGET_MIB = 64
FLAT_LIMIT_MIB = 1.0  # PSS growth allowed once the history window has filled
STARTUP_TARGET_S = 1.5
ABUSE_P99_RATIO = 2.0  # probe p99 under each abuse, against the same probes without it (issue 14)
MEMORY_MARGIN = 0.25  # the worst case must leave this much of the limit free


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    only = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [name for name in only if name not in SECTIONS]
    if unknown:
        print(f"bench: unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    table = _Table(args.markdown)
    captures = sorted(FIXTURES.glob("*.prom"))
    if not captures:
        print(f"bench: no captures in {FIXTURES}", file=sys.stderr)
        return 2
    tgi = FIXTURES / TGI
    _print_machine(table)
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        big = synthetic.write(tgi, Path(tmp))
        if "cycle" in only:
            verdicts += _cycle(table, captures + [big], 60 if args.quick else 300)
    if "health" in only:
        verdicts += _health(table, tgi, 1 if args.quick else args.seconds, 1 if args.quick else args.rounds)
    if "status" in only:
        verdicts += _status(table, tgi, 1 if args.quick else args.seconds, 1 if args.quick else args.rounds)
    if "memory" in only:
        verdicts += _memory(table, tgi, 2_000 if args.quick else 10_000)
    if "startup" in only:
        verdicts += _startup(table, tgi, 3 if args.quick else 7)
    if "abuse" in only:
        verdicts += _abuse(table, tgi, 1 if args.quick else args.seconds, 1 if args.quick else 3)
    if "worst-memory" in only:
        verdicts += _worst_memory(table)
    table.title("Targets (issues 7 and 14)")
    table.rows(["target", "measured", "verdict"], verdicts)
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="fewer cycles, rounds and seconds (a smoke run)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables (for docs/performance.md)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per load run (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="load runs per app and setting (default 5)")
    return parser


def _print_machine(table):
    cpu = _first_line("/proc/cpuinfo", "model name").split(":", 1)[-1].strip() or platform.processor()
    mem_kib = int(_first_line("/proc/meminfo", "MemTotal").split()[1] or 0)
    generator = load.generator_name()
    if generator == "wrk":
        generator = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    table.title("Machine")
    table.rows(
        ["nproc", "cpu", "memory", "python", "load generator", "load average"],
        [
            [
                str(os.cpu_count()),
                cpu,
                f"{mem_kib / 1048576:.1f} GiB",
                platform.python_version(),
                generator,
                " ".join(f"{x:.2f}" for x in os.getloadavg()),
            ]
        ],
    )


def _first_line(path: str, prefix: str) -> str:
    try:
        return next((line for line in Path(path).read_text().splitlines() if line.startswith(prefix)), "")
    except OSError:
        return ""


def _cycle(table, captures, cycles):
    results = cycle.measure(captures, cycles=cycles)
    table.title(f"Evaluation cycle CPU (scrape + select + parse + evaluate; median of {cycles} cycles)")
    table.rows(
        ["capture", "bytes", "rule pack", "samples kept", "cycle ms", "full parse ms", "ratio"],
        [
            [
                r.capture,
                f"{r.size:,}",
                r.pack,
                str(r.samples),
                f"{r.cycle_ms:.3f}",
                f"{r.full_parse_ms:.2f}",
                f"{r.ratio:.3f}",
            ]
            for r in results
        ],
    )
    tgi = next(r for r in results if r.capture == TGI)
    return [
        _verdict(
            f"cycle / full parse on the TGI page <= {CYCLE_RATIO_TARGET}",
            f"{tgi.ratio:.3f} ({tgi.cycle_ms:.2f} ms / {tgi.full_parse_ms:.1f} ms)",
            tgi.ratio <= CYCLE_RATIO_TARGET,
            f"{tgi.ratio / CYCLE_RATIO_TARGET:.2f}x the target",
        )
    ]


def _health(table, capture, seconds, rounds):
    rows = health.measure(capture, seconds=seconds, rounds=rounds)
    table.title(f"/health under load (median of {rounds} runs of {max(1, round(seconds))} s each; latency in ms)")
    table.rows(
        [
            "upstream",
            "clients",
            "sidecar says",
            "bare req/s",
            "sidecar req/s",
            "x",
            "bare p50",
            "sidecar p50",
            "bare p99",
            "sidecar p99",
            "x",
            "errors",
        ],
        [
            [
                r.state,
                _clients(r),
                str(r.sidecar_status),
                f"{r.bare.throughput:,.0f}",
                f"{r.sidecar.throughput:,.0f}",
                f"{r.throughput_ratio:.2f}",
                f"{r.bare.p50_ms:.2f}",
                f"{r.sidecar.p50_ms:.2f}",
                f"{r.bare.p99_ms:.2f}",
                f"{r.sidecar.p99_ms:.2f}",
                f"{r.p99_ratio:.2f}",
                str(r.sidecar.errors),
            ]
            for r in rows
        ],
    )
    worst_tp = min(rows, key=lambda r: r.throughput_ratio)
    worst_p99 = max(rows, key=lambda r: r.p99_ratio)
    errors = sum(r.sidecar.errors for r in rows)
    return [
        _verdict(
            "sidecar throughput >= 1.0x bare Falcon, every state",
            f"lowest {worst_tp.throughput_ratio:.2f}x ({worst_tp.state}, {_clients(worst_tp)})",
            worst_tp.throughput_ratio >= 1.0,
            f"{(1 - worst_tp.throughput_ratio) * 100:.0f}% below",
        ),
        _verdict(
            "sidecar p99 <= 1.0x bare Falcon, every state",
            f"highest {worst_p99.p99_ratio:.2f}x ({worst_p99.state}, {_clients(worst_p99)})",
            worst_p99.p99_ratio <= 1.0,
            f"{(worst_p99.p99_ratio - 1) * 100:.0f}% above",
        ),
        _verdict("no probe lost (socket errors)", str(errors), errors == 0, f"{errors} errors"),
    ]


def _status(table, capture, seconds, rounds):
    run = status_page.measure(capture, seconds=seconds, rounds=rounds)
    render_ms, rules, full_bytes = status_page.render_cost_ms(capture)
    table.title(
        f"/health p99 with the status page fetched in a tight loop (1 probe connection, new per probe; "
        f"median of {rounds} runs of {max(1, round(seconds))} s; latency in ms)"
    )
    table.rows(
        [
            "probe p50 alone",
            "probe p99 alone",
            "p50 with page loop",
            "p99 with page loop",
            "x",
            "p99 with /health loop (reference)",
            "pages/s",
            "page bytes",
        ],
        [
            [
                f"{run.alone.p50_ms:.2f}",
                f"{run.alone.p99_ms:.2f}",
                f"{run.with_page.p50_ms:.2f}",
                f"{run.with_page.p99_ms:.2f}",
                f"{run.ratio:.2f}",
                f"{run.with_probe_loop.p99_ms:.2f}" if run.with_probe_loop else "-",
                f"{run.page_requests_per_second:,.0f}",
                f"{run.page_bytes:,}",
            ]
        ],
    )
    table.title("Status page rendering on the evaluator thread (once per cycle, chart window full)")
    table.rows(["rules", "CPU ms per cycle", "page bytes"], [[str(rules), f"{render_ms:.2f}", f"{full_bytes:,}"]])
    limit = run.limit_ms
    return [
        _verdict(
            f"probe p99 with the page in a loop <= {status_page.RATIO_TARGET}x alone + {status_page.SLACK_MS:g} ms",
            f"{run.with_page.p99_ms:.2f} ms vs {run.alone.p99_ms:.2f} ms alone (limit {limit:.2f} ms)",
            run.with_page.p99_ms <= limit,
            f"{run.with_page.p99_ms - limit:.2f} ms over",
        )
    ]


def _clients(row) -> str:
    return f"{row.connections}, {'new connection per probe' if row.reconnect else 'kept alive'}"


def _memory(table, capture, cycles):
    run = memory.measure(capture, cycles=cycles)
    mib = 1024
    table.title(
        f"Memory of master + worker over {cycles:,} cycles at a 20 ms interval ({run.failed_scrapes} scrapes timed out)"
    )
    table.rows(
        ["cycles", "RSS MiB", "PSS MiB", "master PSS MiB", "worker PSS MiB"],
        [
            [
                f"{p.cycles:,}",
                f"{p.rss_kib / mib:.1f}",
                f"{p.pss_kib / mib:.1f}",
                f"{p.master_pss_kib / mib:.1f}",
                f"{p.worker_pss_kib / mib:.1f}",
            ]
            for p in run.points
        ],
    )
    pss = run.last.pss_kib / mib
    window = 6_000  # cycles until the 2-minute history window is full at 20 ms
    growth = run.growth_kib(window) / mib
    verdicts = [
        _verdict(
            f"PSS after {cycles:,} cycles <= {PSS_TARGET_MIB} MiB",
            f"{pss:.1f} MiB",
            pss <= PSS_TARGET_MIB,
            f"{pss - PSS_TARGET_MIB:.1f} MiB over",
        )
    ]
    if cycles > window:
        verdicts.append(
            _verdict(
                f"flat: PSS growth after the history window filled <= {FLAT_LIMIT_MIB} MiB",
                f"{growth:+.1f} MiB from {window:,} cycles on",
                growth <= FLAT_LIMIT_MIB,
                f"{growth - FLAT_LIMIT_MIB:.1f} MiB over",
            )
        )
    return verdicts


def _startup(table, capture, runs):
    times = startup.measure(capture, runs=runs)
    table.title(f"Start to first decision ({runs} starts; spawn to the first /health 200)")
    table.rows(
        ["median s", "min s", "max s"], [[f"{startup.median(times):.3f}", f"{min(times):.3f}", f"{max(times):.3f}"]]
    )
    median = startup.median(times)
    return [
        _verdict(
            f"start to first decision <= {STARTUP_TARGET_S} s",
            f"{median:.3f} s (median)",
            median <= STARTUP_TARGET_S,
            f"{median - STARTUP_TARGET_S:.2f} s over",
        )
    ]


def _abuse(table, capture, seconds, rounds):
    rows = abuse.measure(capture, seconds=seconds, rounds=rounds)
    table.title(f"/health at 1 connection (new one per probe) while clients abuse the sidecar (median of {rounds})")
    table.rows(
        ["abuse", "p99 ms without", "p99 ms with", "x", "p50 ms with", "probes", "abusive conns", "errors"],
        [
            [
                r.scenario,
                f"{r.baseline.p99_ms:.2f}",
                f"{r.abused.p99_ms:.2f}",
                f"{r.p99_ratio:.2f}",
                f"{r.abused.p50_ms:.2f}",
                f"{r.abused.requests:,}",
                str(r.held),
                str(r.abused.errors),
            ]
            for r in rows
        ],
    )
    worst = max(rows, key=lambda r: r.p99_ratio)
    errors = sum(r.abused.errors for r in rows)
    return [
        _verdict(
            f"probe p99 under each abuse <= {ABUSE_P99_RATIO:.0f}x without",
            f"highest {worst.p99_ratio:.2f}x ({worst.scenario})",
            worst.p99_ratio <= ABUSE_P99_RATIO,
            f"{worst.p99_ratio / ABUSE_P99_RATIO:.2f}x the target",
        ),
        _verdict("no probe lost under abuse", str(errors), errors == 0, f"{errors} errors"),
    ]


def _worst_memory(table):
    run = worst_memory.measure()
    limit = worst_memory.manifest_limit_mib()  # the shipped manifests' limit for the sidecar
    mib = 1024
    table.title(
        f"Worst-case memory at the default caps ({run.series:,} series x {run.label_bytes_per_series:,} label bytes, "
        f"{run.body_bytes / 1048576:.1f} MiB pages, {run.scrapes} scrapes, {run.failed_scrapes} failed)"
    )
    table.rows(
        ["peak RSS MiB (master + worker)", "RSS MiB at end", "PSS MiB at end", "limit MiB"],
        [[f"{run.peak_rss_kib / mib:.1f}", f"{run.end_rss_kib / mib:.1f}", f"{run.end_pss_kib / mib:.1f}", str(limit)]],
    )
    ceiling = limit * (1 - MEMORY_MARGIN)
    peak = run.peak_rss_kib / mib
    return [
        _verdict(
            f"worst-case peak RSS <= {ceiling:.0f} MiB ({limit} Mi limit, {MEMORY_MARGIN:.0%} margin)",
            f"{peak:.1f} MiB ({1 - peak / limit:.0%} margin)",
            peak <= ceiling and run.failed_scrapes == 0,
            f"{peak - ceiling:.1f} MiB over" if peak > ceiling else f"{run.failed_scrapes} scrapes failed",
        )
    ]


def _verdict(target: str, measured: str, met: bool, miss: str) -> list[str]:
    return [target, measured, "met" if met else f"MISSED: {miss}"]


class _Table:
    """Aligned plain-text tables, or markdown ones for the docs."""

    def __init__(self, markdown: bool):
        self.markdown = markdown

    def title(self, text: str):
        print(f"\n### {text}\n" if self.markdown else f"\n{text}")

    def rows(self, header: list[str], rows: list[list[str]]):
        if self.markdown:
            print("| " + " | ".join(header) + " |")
            print("|" + "|".join("---" for _ in header) + "|")
            for row in rows:
                print("| " + " | ".join(row) + " |")
        else:
            widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
            for row in [header, *rows]:
                print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
