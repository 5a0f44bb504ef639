"""/health latency and throughput of the real sidecar beside a bare Falcon app, per upstream state.

Both run under the same gunicorn settings on loopback; the sidecar scrapes a loopback upstream
serving the real TGI capture, which is switched between healthy, 2 s slow and hung. Runs of the
two apps alternate (bare first in even rounds, sidecar first in odd ones) so drift in the
machine's load falls on both alike; each figure is the median over the rounds.
"""

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench import load, procs

STATES = ("healthy", "slow", "hung")
# (connections, new connection per probe): the kubelet, and a storm of kept-alive health checks
LOADS = ((1, True), (8, False))


@dataclass(frozen=True)
class HealthRow:
    state: str
    connections: int
    reconnect: bool
    bare: load.LoadResult
    sidecar: load.LoadResult
    sidecar_status: int  # what the sidecar's /health answered in this state

    @property
    def throughput_ratio(self) -> float:
        return self.sidecar.throughput / self.bare.throughput if self.bare.throughput else float("nan")

    @property
    def p99_ratio(self) -> float:
        return self.sidecar.p99_ms / self.bare.p99_ms if self.bare.p99_ms else float("nan")


def measure(capture: Path, seconds: float = 3.0, rounds: int = 3) -> list[HealthRow]:
    up_port, bare_port = procs.free_port(), procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(up_port), str(capture)])
    bare = procs.start(["-m", "bench.bare_app", str(bare_port)])
    sidecar, side_port = start_sidecar(f"http://127.0.0.1:{up_port}/metrics")
    try:
        procs.wait_until(upstream, up_port, "/-/count", lambda s: s == 200)
        procs.wait_until(bare, bare_port, "/health", lambda s: s == 200)
        rows = []
        for state in STATES:
            procs.get(up_port, f"/-/mode/{state}", method="PUT")
            want = 200 if state == "healthy" else 503
            procs.wait_until(sidecar, side_port, "/health", lambda s, want=want: s == want, timeout=30, step=0.1)
            for connections, reconnect in LOADS:
                runs = {"bare": [], "sidecar": []}
                for round_ in range(rounds):
                    order = [("bare", bare_port), ("sidecar", side_port)]
                    for name, port in order if round_ % 2 == 0 else order[::-1]:
                        runs[name].append(load.run(port, "/health", connections, seconds, reconnect))
                rows.append(
                    HealthRow(
                        state,
                        connections,
                        reconnect,
                        _median(runs["bare"]),
                        _median(runs["sidecar"]),
                        procs.get(side_port, "/health")[0],
                    )
                )
        procs.get(up_port, "/-/mode/healthy", method="PUT")
        return rows
    finally:
        for proc in (sidecar, bare, upstream):
            procs.stop(proc)


def start_sidecar(endpoint: str, extra_env: dict | None = None):
    port = procs.free_port()
    env = {
        "APP_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "METRICS_ENDPOINT": endpoint,
        "RULES_PATH": str(procs.REPO / "rules" / "tgi.yaml"),
        "SHUTDOWN_DRAIN_SECONDS": "0",
        "LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    proc = procs.start(["-m", "exporter", "serve"], env)
    procs.wait_until(proc, port, "/livez", lambda s: s == 200)
    return proc, port


def _median(results: list[load.LoadResult]) -> load.LoadResult:
    return load.LoadResult(
        requests=int(statistics.median(r.requests for r in results)),
        seconds=statistics.median(r.seconds for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
    )
