"""Whole-sidecar memory (gunicorn master + worker, RSS and PSS) over many evaluation cycles.

The sidecar runs as in production but with a short scrape interval, so 10,000 cycles of the
real TGI capture and the shipped TGI rules pass in a couple of minutes; the upstream counts the
scrapes, one per cycle. Memory is read from /proc/PID/smaps_rollup at checkpoints, so growth
shows as a slope rather than one number.
"""

import time
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.health import start_sidecar


@dataclass(frozen=True)
class MemoryPoint:
    cycles: int
    rss_kib: int
    pss_kib: int
    master_pss_kib: int
    worker_pss_kib: int


def measure(capture: Path, cycles: int = 10_000, interval: str = "10ms", timeout: str = "9ms",
            checkpoints: int = 5) -> list[MemoryPoint]:
    up_port = procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(up_port), str(capture)])
    procs.wait_until(upstream, up_port, "/-/count", lambda s: s == 200)
    sidecar, port = start_sidecar(f"http://127.0.0.1:{up_port}/metrics",
                                  {"SCRAPE_INTERVAL": interval, "SCRAPE_TIMEOUT": timeout})
    try:
        marks = sorted({max(1, cycles * i // checkpoints) for i in range(1, checkpoints + 1)} | {100})
        points = []
        deadline = time.monotonic() + max(600.0, cycles * 0.1)
        for mark in marks:
            while _scrapes(up_port) < mark:
                if time.monotonic() > deadline or sidecar.poll() is not None:
                    raise RuntimeError(f"sidecar did not reach {mark} cycles")
                time.sleep(0.2)
            points.append(_point(sidecar.pid, _scrapes(up_port)))
        return points
    finally:
        procs.stop(sidecar)
        procs.stop(upstream)


def _scrapes(port: int) -> int:
    return int(procs.get(port, "/-/count")[1])


def _point(pid: int, cycles: int) -> MemoryPoint:
    tree = procs.tree_memory_kib(pid)
    workers = tree["workers"]
    return MemoryPoint(cycles, tree["rss"], tree["pss"], tree["master"][1],
                       sum(w[1] for w in workers))
