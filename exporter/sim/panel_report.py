"""panel.md and panel.csv: the decision panel's rows, and which acceptance checks hold."""

import csv
import math

from exporter.sim.acceptance import checks

COLUMNS = (
    ("lost %", lambda o: f"{o.lost_pct:.2f}"),
    ("p50 wait", lambda o: _s(o.wait[0])),
    ("p95 wait", lambda o: _s(o.wait[1])),
    ("p99 wait", lambda o: _s(o.wait[2])),
    ("p95 TTFT", lambda o: _s(o.ttft_p95)),
    ("flips", lambda o: str(o.flips)),
    ("unready pod-s", lambda o: f"{o.unready_seconds:.0f}"),
    ("spilled %", lambda o: f"{o.spilled_pct:.1f}"),
    ("fail-open pod-s", lambda o: f"{o.fail_open_seconds:.0f}"),
)

CSV_FIELDS = (
    "scenario",
    "gateway_mode",
    "policy",
    "held_out",
    "requests",
    "lost_pct",
    "rejected",
    "refused",
    "failed",
    "dropped",
    "timed_out",
    "wait_p50_s",
    "wait_p95_s",
    "wait_p99_s",
    "ttft_p95_s",
    "flips",
    "unready_pod_seconds",
    "spilled_pct",
    "fail_open_pod_seconds",
)


def _s(value: float) -> str:
    return "-" if value != value else f"{value:.1f}s"


def _f(value: float) -> str:
    return "" if isinstance(value, float) and math.isnan(value) else f"{value:.4f}"


def write_csv(rows, path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for row in rows:
            o = row.outcome
            writer.writerow(
                [
                    row.scenario,
                    row.mode,
                    row.policy.name,
                    int(row.held_out),
                    o.arrivals,
                    f"{o.lost_pct:.4f}",
                    o.rejected,
                    o.refused,
                    o.failed,
                    o.dropped,
                    o.timed_out,
                    _f(o.wait[0]),
                    _f(o.wait[1]),
                    _f(o.wait[2]),
                    _f(o.ttft_p95),
                    o.flips,
                    f"{o.unready_seconds:.0f}",
                    f"{o.spilled_pct:.4f}",
                    f"{o.fail_open_seconds:.0f}",
                ]
            )


def format_markdown(rows, command: str, took: float, workers: int) -> str:
    lines = [
        f"Made by `{command}` in {took:.0f} s on {workers} process{'es' if workers > 1 else ''} "
        "(virtual time; seeds fixed, so the figures are the same on every machine).",
        "",
    ]
    header = "| scenario | gateway | policy | " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "---|" * (3 + len(COLUMNS))
    for title, wanted in (("Tuned on", False), ("Held out (not tuned on)", True)):
        part = [r for r in rows if r.held_out == wanted]
        if not part:
            continue
        lines += [f"### {title}", "", header, rule]
        for row in part:
            cells = " | ".join(fn(row.outcome) for _, fn in COLUMNS)
            lines.append(f"| {row.scenario} | {row.mode} | {row.policy.name} | {cells} |")
        lines.append("")
    found = checks(rows)
    failing = [c for c in found if not c.holds]
    lines += [f"### Acceptance: {len(found) - len(failing)} of {len(found)} checks hold", ""]
    if failing:
        lines += ["| check | where | figures |", "|---|---|---|"]
        lines += [f"| {c.criterion} | {c.where} | {c.detail} |" for c in failing]
    else:
        lines.append("Every check holds.")
    lines.append("")
    return "\n".join(lines)
