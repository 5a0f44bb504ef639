"""What a policy did to users, in the testbed and in the simulator, in the same terms.

One row per (source, policy): requests sent, lost (429 from a full server, 503 because
no server was up, no answer within the per-request timeout, connection errors), latency
percentiles of the requests that succeeded (end to end, as the client saw them), the
readiness flips the load balancer saw and the pod-seconds it held pods out. The
simulator's figures are counted the same way: a request it finishes later than the
timeout is lost, as the client would have given up on it, and requests still in a
server when the load ends are run to completion (up to the timeout) before counting,
as the testbed waits for them.
"""

import csv
import math
import statistics
from dataclasses import astuple, dataclass, fields

from exporter.sim.cluster import simulate
from exporter.sim.haproxy import lb_up
from exporter.sim.loadgen import ERROR, TIMEOUT
from exporter.sim.report import quantile
from exporter.sim.scenario import Scenario
from exporter.sim.testbed import TestbedRun
from exporter.sim.workload import run_length


@dataclass(frozen=True)
class Row:
    source: str  # testbed | sim
    policy: str
    requests: int
    lost: int
    refused: int  # 429 from a full server
    rejected: int  # 503: no server up
    timeouts: int  # no answer within the timeout (and connection errors, testbed only)
    p50: float  # seconds, successful requests
    p95: float
    p99: float
    flips: int
    unready_seconds: float  # pod-seconds the balancer held pods out
    run: int = 1  # which testbed run of this policy, from 1 (simulator rows: 1; a median of several: 0)

    @property
    def lost_pct(self) -> float:
        return 100.0 * self.lost / self.requests if self.requests else math.nan


def row_from_testbed(run: TestbedRun) -> Row:
    outcomes = run.outcomes
    ok = sorted(o.latency for o in outcomes if o.ok)
    refused = sum(o.status == "429" for o in outcomes)
    rejected = sum(o.status == "503" for o in outcomes)
    timeouts = sum(o.status in (TIMEOUT, ERROR) for o in outcomes)
    flips, unready = _lb_view(run)
    return Row(
        "testbed",
        run.policy.label,
        len(outcomes),
        len(outcomes) - len(ok),
        refused,
        rejected,
        timeouts,
        *(quantile(ok, q) for q in (0.5, 0.95, 0.99)),
        flips,
        unready,
        run.run + 1,
    )


def median_row(rows: list[Row]) -> Row:
    """One row of medians, figure by figure, of several runs (or phase draws) of one policy: what
    a ranking of policies whose single runs overlap can be read from."""
    first = rows[0]
    return Row(
        first.source,
        first.policy,
        first.requests,
        *(
            round(statistics.median(getattr(r, name) for r in rows))
            for name in ("lost", "refused", "rejected", "timeouts")
        ),
        *(statistics.median(getattr(r, name) for r in rows) for name in ("p50", "p95", "p99")),
        round(statistics.median(r.flips for r in rows)),
        statistics.median(r.unready_seconds for r in rows),
        0,
    )


def _lb_view(run: TestbedRun) -> tuple[int, float]:
    """Flips and pod-seconds out, as HAProxy's status of each pod (its home backend) showed them."""
    end = run_length(run.scenario)
    flips, unready = 0, 0.0
    for pod in run.pods:
        samples = [s for s in run.samples if s.pod == pod.name and 0 <= s.t <= end]
        for before, after in zip(samples, samples[1:]):
            up_before, up_after = lb_up(before.lb_status), lb_up(after.lb_status)
            flips += up_before != up_after
            if not up_before:
                unready += after.t - before.t
    return flips, unready


def row_from_sim(scenario: Scenario, ruleset, label: str, timeout: float, phase_draw: int | None = None) -> Row:
    result = simulate(scenario, ruleset, label, phase_draw=phase_draw)
    end = run_length(scenario)
    for pod in result.pods:
        pod.model.advance_to(end + timeout)  # what was in flight finishes, as the testbed waits for it
    e2e = [entry[3] for pod in result.pods for entry in pod.model.log]
    ok = sorted(v for v in e2e if v <= timeout)
    requests = sum(sum(r.arrivals) for r in result.regions)
    refused = sum(sum(r.refused) for r in result.regions)
    rejected = sum(sum(r.rejected) for r in result.regions)
    timeouts = requests - refused - rejected - len(ok)
    step = scenario.step
    unready = sum((len(p.ready) - sum(p.ready)) * step for p in result.pods)
    return Row(
        "sim",
        label,
        requests,
        requests - len(ok),
        refused,
        rejected,
        timeouts,
        *(quantile(ok, q) for q in (0.5, 0.95, 0.99)),
        sum(p.probe.flips for p in result.pods),
        unready,
    )


def _seconds(value: float) -> str:
    if value != value:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


HEADER = ("policy", "requests", "lost %", "429", "503", "timeout", "p50", "p95", "p99", "flips", "unready pod-s")


def cells(row: Row) -> tuple:
    return (
        row.policy,
        str(row.requests),
        f"{row.lost_pct:.1f}%",
        str(row.refused),
        str(row.rejected),
        str(row.timeouts),
        _seconds(row.p50),
        _seconds(row.p95),
        _seconds(row.p99),
        str(row.flips),
        f"{row.unready_seconds:.0f}",
    )


def format_table(rows: list[Row], title: str) -> str:
    return "\n".join([title, *_table(HEADER, [cells(r) for r in rows])])


def format_side_by_side(real: list[Row], sim: list[Row], title: str) -> str:
    """Testbed and simulator per policy, with the differences the acceptance bounds read."""
    header = ("policy", "lost % real", "lost % sim", "diff pp", "p95 real", "p95 sim", "diff", "flips real/sim")
    body = []
    for a, b in zip(real, sim):
        diff = a.lost_pct - b.lost_pct
        rel = (a.p95 - b.p95) / b.p95 * 100 if b.p95 and b.p95 == b.p95 else math.nan
        body.append(
            (
                a.policy,
                f"{a.lost_pct:.1f}%",
                f"{b.lost_pct:.1f}%",
                f"{diff:+.1f}",
                _seconds(a.p95),
                _seconds(b.p95),
                "-" if rel != rel else f"{rel:+.0f}%",
                f"{a.flips}/{b.flips}",
            )
        )
    lines = [title, *_table(header, body)]
    lines.append(f"ranking by lost %: testbed {ranking(real, 'lost')}, sim {ranking(sim, 'lost')}")
    lines.append(f"ranking by p95:    testbed {ranking(real, 'p95')}, sim {ranking(sim, 'p95')}")
    return "\n".join(lines)


def phase_spread(scenario: Scenario, ruleset, label: str, timeout: float, draws: int) -> list[Row]:
    """The simulator's rows for `draws` other probe/sidecar phase draws of the same requests.

    With checks and evaluations both on a fixed period, each pod's lag from a decision to the
    balancer's next check is set once by the two phases; with a few pods, lost % and the time
    out move with those few draws. One testbed run is one such draw, taken by the clock."""
    return [row_from_sim(scenario, ruleset, label, timeout, phase_draw=k) for k in range(draws)]


def format_spread(spreads: list[list[Row]], real: list[list[Row]], title: str) -> str:
    """Per policy: the simulator's min / median / max over phase draws, and the testbed's runs
    (one figure, or min / median / max of several)."""
    header = ("policy", "lost % sim min/med/max", "lost % real", "p95 sim min/med/max", "p95 real")
    body = []
    for rows, runs in zip(spreads, real):
        body.append(
            (
                runs[0].policy,
                _range([r.lost_pct for r in rows], _pct),
                _range([r.lost_pct for r in runs], _pct),
                _range([r.p95 for r in rows], _seconds),
                _range([r.p95 for r in runs], _seconds),
            )
        )
    return "\n".join([title, *_table(header, body)])


def _range(values: list[float], show) -> str:
    if len(values) == 1:
        return show(values[0])
    return " / ".join(show(v) for v in (min(values), statistics.median(values), max(values)))


def _pct(value: float) -> str:
    return f"{value:.1f}%"


def ranking(rows: list[Row], key: str) -> str:
    """Policies best first by lost % or p95 ("a < b" when better, "a = b" when tied)."""
    value = (lambda r: round(r.lost_pct, 1)) if key == "lost" else (lambda r: r.p95)
    ordered = sorted(rows, key=value)
    out = ordered[0].policy if ordered else ""
    for prev, row in zip(ordered, ordered[1:]):
        out += (" = " if value(prev) == value(row) else " < ") + row.policy
    return out


def _table(header: tuple, rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in [header, *rows]
    ]


def write_rows_csv(rows: list[Row], path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f.name for f in fields(Row)] + ["lost_pct"])
        for row in rows:
            writer.writerow(list(astuple(row)) + [f"{row.lost_pct:.3f}"])


def write_requests_csv(runs: list[TestbedRun], path) -> None:
    """Every request of every policy's run: when it was due, what came back, from which pod."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["policy", "run", "at", "region", "status", "latency_seconds", "server", "lag_seconds"])
        for run in runs:
            names = run.scenario.regions
            for o in run.outcomes:
                writer.writerow(
                    [run.policy.label, run.run + 1, f"{o.at:.4f}", names[o.region].name, o.status]
                    + [f"{o.latency:.4f}", o.server, f"{o.lag:.4f}"]
                )


def write_timeline_csv(runs: list[TestbedRun], path) -> None:
    """The monitor's samples: each sidecar's /health status and HAProxy's view of its pod."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["policy", "run", "t", "pod", "sidecar_status", "haproxy_status", "haproxy_weight"])
        for run in runs:
            for s in run.samples:
                writer.writerow(
                    [run.policy.label, run.run + 1, f"{s.t:.3f}", s.pod, s.sidecar, s.lb_status, s.lb_weight]
                )
