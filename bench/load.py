"""Probe load: wrk when installed (Debian's `wrk`), else a bounded Python generator.

Both report the same figures for one run: requests, throughput, p50/p99 latency and errors.
Non-2xx answers are not errors here: an unready sidecar answers 503 and that is a probe answer.
"""

import http.client
import re
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = Path(__file__).with_name("wrk_report.lua")
_WRK_LINE = re.compile(r"^WRK (.*)$", re.M)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect, read, write, timeout)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def run(port: int, path: str, connections: int, seconds: float, reconnect: bool = False) -> LoadResult:
    """`connections` clients for `seconds`; with `reconnect`, a new connection per request (as
    the kubelet probes: `Connection: close`), else kept alive (as load balancers do)."""
    if shutil.which("wrk"):
        return _run_wrk(port, path, connections, seconds, reconnect)
    return _run_python(port, path, connections, seconds, reconnect)


def _run_wrk(port: int, path: str, connections: int, seconds: float, reconnect: bool) -> LoadResult:
    # One wrk thread drives all connections: on a small machine a second one only steals CPU
    # from the server under test.
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "2s",
        "-s",
        str(_SCRIPT),
        *(["-H", "Connection: close"] if reconnect else []),
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    match = _WRK_LINE.search(out)
    if not match:
        raise RuntimeError(f"wrk printed no report:\n{out}")
    fields = dict(item.split("=") for item in match.group(1).split())
    return LoadResult(
        int(fields["requests"]),
        int(fields["duration_us"]) / 1e6,
        int(fields["p50_us"]) / 1000,
        int(fields["p99_us"]) / 1000,
        int(fields["socket_errors"]),
    )


def _run_python(port: int, path: str, connections: int, seconds: float, reconnect: bool) -> LoadResult:
    """One thread per connection until the deadline; bounded by time."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.monotonic() + seconds

    def drive(index: int):
        conn = None
        while time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
                started = time.perf_counter()
                conn.request("GET", path, headers={"Connection": "close"} if reconnect else {})
                conn.getresponse().read()
                latencies[index].append(time.perf_counter() - started)
                if reconnect:
                    conn.close()
                    conn = None
            except OSError:
                errors[index] += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=drive, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 10)
    elapsed = time.monotonic() - started
    flat = sorted(x for per in latencies for x in per)
    if not flat:
        return LoadResult(0, elapsed, float("nan"), float("nan"), sum(errors))
    p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))]
    return LoadResult(len(flat), elapsed, statistics.median(flat) * 1000, p99 * 1000, sum(errors))
