"""Summaries and the per-step CSV of a simulation run."""

import csv
import math
from dataclasses import dataclass

from exporter.sim.cluster import SimResult


@dataclass(frozen=True)
class PodSummary:
    name: str
    region: str
    flips: int  # readiness changes the gateway saw (kubelet probe transitions)
    sidecar_flips: int  # decision changes inside the sidecar
    unready_seconds: float
    served: int
    wait_p95: float


@dataclass(frozen=True)
class Summary:
    scenario: str
    rules: str
    duration: float
    pods: tuple[PodSummary, ...]
    arrivals: int
    finished: int
    spilled: int
    rejected: int
    refused: int
    wait: tuple[float, float, float]  # p50, p95, p99 seconds in the queue
    ttft: tuple[float, float, float]
    wall_seconds: float
    evaluations: int

    @property
    def flips(self) -> int:
        return sum(p.flips for p in self.pods)

    @property
    def unready_seconds(self) -> float:
        return sum(p.unready_seconds for p in self.pods)


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks; NaN for no values."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(result: SimResult) -> Summary:
    step = result.scenario.step
    names = [r.name for r in result.regions]
    pods = []
    for pod in result.pods:
        waits = sorted(entry[1] for entry in pod.model.log)
        unready = (len(pod.ready) - sum(pod.ready)) * step
        pods.append(
            PodSummary(
                pod.name,
                names[pod.region],
                pod.probe.flips,
                pod.sidecar.flips,
                unready,
                pod.model.arrived,
                quantile(waits, 0.95),
            )
        )
    waits = sorted(r[3] for r in result.requests)
    ttfts = sorted(r[4] for r in result.requests)
    qs = (0.5, 0.95, 0.99)
    return Summary(
        scenario=result.scenario.name,
        rules=result.rules_label,
        duration=result.times[-1] if result.times else 0.0,
        pods=tuple(pods),
        arrivals=sum(sum(r.arrivals) for r in result.regions),
        finished=len(result.requests),
        spilled=sum(sum(r.spilled) for r in result.regions),
        rejected=sum(sum(r.rejected) for r in result.regions),
        refused=sum(sum(r.refused) for r in result.regions),
        wait=tuple(quantile(waits, q) for q in qs),
        ttft=tuple(quantile(ttfts, q) for q in qs),
        wall_seconds=result.wall_seconds,
        evaluations=result.evaluations,
    )


def _seconds(value: float) -> str:
    if value != value:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.1f}s"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _totals(s: Summary) -> list[tuple[str, str]]:
    return [
        ("rules", s.rules),
        ("readiness flips (all pods)", str(s.flips)),
        ("most flips on one pod", str(max((p.flips for p in s.pods), default=0))),
        (
            "time unready (pod-seconds)",
            f"{s.unready_seconds:.0f} ({_pct(int(s.unready_seconds), int(s.duration * len(s.pods)))})",
        ),
        ("requests", str(s.arrivals)),
        ("spilled to another region", f"{s.spilled} ({_pct(s.spilled, s.arrivals)})"),
        ("no ready pod (rejected)", f"{s.rejected} ({_pct(s.rejected, s.arrivals)})"),
        ("refused by a full server (429)", f"{s.refused} ({_pct(s.refused, s.arrivals)})"),
        ("queue wait p50 / p95 / p99", " / ".join(_seconds(v) for v in s.wait)),
        ("TTFT p50 / p95 / p99", " / ".join(_seconds(v) for v in s.ttft)),
    ]


def format_summary(s: Summary) -> str:
    lines = [
        f"scenario {s.scenario}: {_clock(s.duration)} simulated, {len(s.pods)} pods, "
        f"{s.evaluations} rule evaluations in {s.wall_seconds:.1f}s"
    ]
    header = ("pod", "region", "flips", "unready", "served", "wait p95")
    rows = [
        (p.name, p.region, str(p.flips), _clock(p.unready_seconds), str(p.served), _seconds(p.wait_p95)) for p in s.pods
    ]
    lines += _table(header, rows)
    lines.append("")
    width = max(len(k) for k, _ in _totals(s))
    lines += [f"{k:<{width}}  {v}" for k, v in _totals(s)]
    return "\n".join(lines)


def format_comparison(a: Summary, b: Summary) -> str:
    """The two runs' totals side by side (same scenario, same seeded requests)."""
    left, right = _totals(a), _totals(b)
    header = ("", "A", "B")
    rows = [(k, va, vb) for (k, va), (_, vb) in zip(left, right)]
    lines = [f"scenario {a.scenario}: the same {a.arrivals} requests against two rule sets"]
    lines += _table(header, rows, left=3)
    return "\n".join(lines)


def _table(header: tuple, rows: list[tuple], left: int = 2) -> list[str]:
    """Columns padded to their widest cell; the first `left` columns flush left, numbers right."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
    return out


def per_step_wait_p95(result: SimResult) -> list[float]:
    """p95 queue wait of the finished requests that arrived in each step (NaN: none)."""
    step = result.scenario.step
    buckets: list[list[float]] = [[] for _ in result.times]
    last = len(buckets) - 1
    for arrival, _, _, wait, _, _ in result.requests:
        k = min(max(int(math.ceil(arrival / step)) - 1, 0), last)
        buckets[k].append(wait)
    return [quantile(sorted(b), 0.95) for b in buckets]


def write_csv(result: SimResult, path) -> None:
    """One row per step: region traffic, per-pod queue/running/KV/readiness, p95 queue wait."""
    regions, pods = result.regions, result.pods
    header = ["time"]
    for r in regions:
        header += [
            f"{r.name}_arrivals",
            f"{r.name}_served",
            f"{r.name}_spilled",
            f"{r.name}_rejected",
            f"{r.name}_refused",
        ]
    for p in pods:
        header += [f"{p.name}_queue", f"{p.name}_running", f"{p.name}_kv_usage", f"{p.name}_ready"]
    header.append("wait_p95_seconds")
    waits = per_step_wait_p95(result)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for k, t in enumerate(result.times):
            row = [f"{t:g}"]
            for r in regions:
                row += [r.arrivals[k], r.served[k], r.spilled[k], r.rejected[k], r.refused[k]]
            for p in pods:
                row += [p.queue[k], p.running[k], f"{p.kv[k]:.4f}", p.ready[k]]
            row.append("" if waits[k] != waits[k] else f"{waits[k]:.4f}")
            writer.writerow(row)
