"""Probe latency while someone has the status page open, and what rendering the page costs.

The real sidecar (TGI rule pack) scrapes a loopback upstream serving the real TGI capture.
Probe load is the kubelet's shape: one connection, a new one per probe. Each round measures it
alone and then with a second client fetching `GET /` in a tight loop on a kept-alive
connection (wrk when installed, else a Python thread), rotating the order per round so
drift in the machine's load falls on both alike; figures are medians over the rounds. A third
setting, the same loop fetching `/health` instead, is printed beside them for reference.

Rendering cost is measured in-process: the CPU time of StatusPublisher.observe (record the
points, build the status object, render HTML and JSON) for the TGI rule pack's decision after
the chart window has filled, the work the evaluator thread adds to each cycle.
"""

import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import health, load, procs

RATIO_TARGET, SLACK_MS = 1.5, 2.0


@dataclass(frozen=True)
class PageRun:
    alone: load.LoadResult
    with_page: load.LoadResult
    page_requests_per_second: float
    page_bytes: int
    # For reference, not a target: the same tight loop fetching the plain probe `/health`, the
    # cheapest request there is. What exceeds this is the page's own cost; what is in both is
    # a client hammering the server on a small machine.
    with_probe_loop: load.LoadResult | None = None

    @property
    def limit_ms(self) -> float:
        return RATIO_TARGET * self.alone.p99_ms + SLACK_MS

    @property
    def ratio(self) -> float:
        return self.with_page.p99_ms / self.alone.p99_ms if self.alone.p99_ms else float("nan")


def measure(capture: Path, seconds: float = 2.0, rounds: int = 5) -> PageRun:
    up_port = procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(up_port), str(capture)])
    sidecar = None
    try:
        procs.wait_until(upstream, up_port, "/-/count", lambda s: s == 200)
        sidecar, port = health.start_sidecar(f"http://127.0.0.1:{up_port}/metrics")
        procs.wait_until(sidecar, port, "/health", lambda s: s == 200, timeout=30, step=0.1)
        page_bytes = len(procs.get(port, "/")[1])
        runs: dict = {None: [], "/": [], "/health": []}
        rates = []
        for round_ in range(rounds):
            order = [None, "/", "/health"]
            for loop_path in order[round_ % 3 :] + order[: round_ % 3]:  # rotated: drift falls on all
                if loop_path is None:
                    runs[None].append(load.run(port, "/health", 1, seconds, reconnect=True))
                    continue
                with _PageLoop(port, seconds, loop_path) as loop:
                    runs[loop_path].append(load.run(port, "/health", 1, seconds, reconnect=True))
                if loop_path == "/":
                    rates.append(loop.rate)
        return PageRun(
            health._median(runs[None]),
            health._median(runs["/"]),
            statistics.median(rates),
            page_bytes,
            health._median(runs["/health"]),
        )
    finally:
        for proc in (sidecar, upstream):
            if proc is not None:
                procs.stop(proc)


class _PageLoop:
    """A client fetching `path` (the page) back to back for a bounded time, started before the probes."""

    def __init__(self, port: int, seconds: float, path: str = "/"):
        self.port, self.seconds, self.path = port, seconds + 1.0, path  # outlasts the probe run
        self.rate = 0.0

    def __enter__(self):
        if shutil.which("wrk"):
            cmd = ["wrk", "-t1", "-c1", f"-d{round(self.seconds)}s", f"http://127.0.0.1:{self.port}{self.path}"]
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = None
        else:
            self._proc = None
            self._result = {}
            self._thread = threading.Thread(target=self._python_loop, daemon=True)
            self._thread.start()
        time.sleep(0.3)  # the loop is running when the probes start
        return self

    def _python_loop(self):
        self._result["run"] = load.run(self.port, self.path, 1, self.seconds)

    def __exit__(self, *exc):
        if self._proc is not None:
            out, _ = self._proc.communicate(timeout=self.seconds + 30)
            self.rate = _wrk_rate(out)
        else:
            self._thread.join(self.seconds + 30)
            self.rate = self._result["run"].throughput if "run" in self._result else 0.0
        return False


def _wrk_rate(out: str) -> float:
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return 0.0


def render_cost_ms(capture: Path, cycles: int = 400) -> tuple[float, int, int]:
    """(median CPU ms of one StatusPublisher.observe, rules, page bytes) with a full chart window."""
    from bench.cycle import _StepClock
    from exporter.config.settings import load_settings
    from exporter.serve.evaluator import Evaluator
    from exporter.serve.status import StatusPublisher

    port = procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(port), str(capture)])
    try:
        procs.wait_until(upstream, port, "/-/count", lambda s: s == 200)
        settings = load_settings(
            {"METRICS_ENDPOINT": f"http://127.0.0.1:{port}/metrics", "RULES_PATH": str(procs.REPO / "rules/tgi.yaml")}
        )
        clock = _StepClock()
        evaluator = Evaluator(settings, clock=clock)
        publisher = StatusPublisher()
        costs = []
        for _ in range(cycles):
            clock.step(1.0)
            decision = evaluator.cycle()
            started = time.thread_time()
            publisher.observe(decision)
            costs.append((time.thread_time() - started) * 1000)
        evaluator.stop()
        page = publisher.current.html_head + publisher.current.html_rest
        return statistics.median(costs[-100:]), len(decision.rules), len(page)
    finally:
        procs.stop(upstream)
