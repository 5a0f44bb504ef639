"""Whole-sidecar memory (gunicorn master + worker, RSS and PSS) over many evaluation cycles.

The sidecar runs as in production but with a 20 ms scrape interval, so 10,000 cycles of the
real TGI capture and the shipped TGI rules pass in under four minutes; the upstream counts the
scrapes, one per cycle. Memory is read from /proc/PID/smaps_rollup at checkpoints, so growth
shows as a slope rather than one number.

The history keeps samples for the longest range (1 m) plus 60 s, so at 20 ms it holds 50 times
the samples it holds at the production 1 s interval: the figure is an upper bound, and it can
only be flat once that window has filled (6,000 cycles). Growth is read after that point.
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


def measure(
    capture: Path, cycles: int = 10_000, interval: str = "20ms", timeout: str = "15ms", checkpoints: int = 8
) -> "MemoryRun":
    up_port = procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(up_port), str(capture)])
    procs.wait_until(upstream, up_port, "/-/count", lambda s: s == 200)
    sidecar, port = start_sidecar(
        f"http://127.0.0.1:{up_port}/metrics", {"SCRAPE_INTERVAL": interval, "SCRAPE_TIMEOUT": timeout}
    )
    try:
        marks = sorted({max(1, cycles * i // checkpoints) for i in range(1, checkpoints + 1)})
        points = []
        deadline = time.monotonic() + 120.0 + cycles * 0.1
        for mark in marks:
            while _scrapes(up_port) < mark:
                if time.monotonic() > deadline or sidecar.poll() is not None:
                    raise RuntimeError(f"sidecar did not reach {mark} cycles")
                time.sleep(0.2)
            points.append(_point(sidecar.pid, _scrapes(up_port)))
        return MemoryRun(points, _failed_scrapes(port))
    finally:
        procs.stop(sidecar)
        procs.stop(upstream)


@dataclass(frozen=True)
class MemoryRun:
    points: list
    failed_scrapes: int  # cycles whose scrape failed (timed out at the short interval)

    @property
    def last(self) -> MemoryPoint:
        return self.points[-1]

    def growth_kib(self, after_cycles: int) -> int:
        """PSS change from the first checkpoint at or past `after_cycles` to the last one."""
        later = [p for p in self.points if p.cycles >= after_cycles] or self.points[-1:]
        return later[-1].pss_kib - later[0].pss_kib


def _failed_scrapes(port: int) -> int:
    text = procs.get(port, "/metrics")[1].decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("llm_healthcheck_scrape_failures_total{")
        )
    )


def _scrapes(port: int) -> int:
    return int(procs.get(port, "/-/count")[1])


def _point(pid: int, cycles: int) -> MemoryPoint:
    tree = procs.tree_memory_kib(pid)
    workers = tree["workers"]
    return MemoryPoint(cycles, tree["rss"], tree["pss"], tree["master"][1], sum(w[1] for w in workers))
