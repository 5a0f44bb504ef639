"""Start to first decision: from launching `llm-healthcheck serve` to /health answering 200.

The upstream is healthy and serves the real TGI capture, the rules are the shipped TGI pack,
so the first 200 means the worker booted, scraped, parsed, evaluated and published. Polled
every 2 ms from the moment the process is spawned.
"""

import statistics
import time
from pathlib import Path

from bench import procs


def measure(capture: Path, runs: int = 5) -> list[float]:
    up_port = procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(up_port), str(capture)])
    try:
        procs.wait_until(upstream, up_port, "/-/count", lambda s: s == 200)
        return [_one(up_port) for _ in range(runs)]
    finally:
        procs.stop(upstream)


def _one(up_port: int) -> float:
    port = procs.free_port()
    env = {
        "APP_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "METRICS_ENDPOINT": f"http://127.0.0.1:{up_port}/metrics",
        "RULES_PATH": str(procs.REPO / "rules" / "tgi.yaml"),
        "SHUTDOWN_DRAIN_SECONDS": "0",
    }
    started = time.monotonic()
    proc = procs.start(["-m", "exporter", "serve"], env)
    try:
        ready_at = procs.wait_until(proc, port, "/health", lambda s: s == 200, timeout=30)
        return ready_at - started
    finally:
        procs.stop(proc)


def median(values: list[float]) -> float:
    return statistics.median(values)
