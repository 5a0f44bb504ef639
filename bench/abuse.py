"""Probe latency while hostile clients hold connections (issue 14, abuse scenarios 1-3).

The kubelet's probe (one connection, a new one per probe) is measured against the real sidecar
with no abuse, then while each abuse runs beside it, bounded in count and time:
1. silent HTTP/1.0 clients: each sends `GET /health HTTP/1.0`, never reads, never closes; a
   new one every 50 ms, the last 40 held open;
2. idle connections: 1,000 connections that send nothing, reopened as the server closes them
   (up to 1,000 a second);
3. partial pipelined requests: a complete request then the start of another, from 12 clients
   (three times the request threads), reopened as the server times them out.
The target: probe p99 under each abuse within 2x the no-abuse figure.
"""

import resource
import socket
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path

from bench import load, procs
from bench.health import start_sidecar

# Idle connections reopened per 100 ms tick (1,000 a second) once the first thousand are open:
# hostile, yet below the rate at which the load generator and the abuser alone would saturate
# this machine's two cores, which would measure the machine rather than the sidecar.
REOPEN_PER_TICK = 100
PARTIAL = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /livez HTTP/1.1\r\nHost: x\r\nX-Wait: "


@dataclass(frozen=True)
class AbuseRow:
    scenario: str
    baseline: load.LoadResult  # the same probe load with no abuse, measured just before
    abused: load.LoadResult
    held: int  # abusive connections open when the run ended

    @property
    def p99_ratio(self) -> float:
        return self.abused.p99_ms / self.baseline.p99_ms if self.baseline.p99_ms else float("nan")


def measure(capture: Path, seconds: float = 3.0, rounds: int = 3) -> list[AbuseRow]:
    _raise_fd_limit(4096)
    up_port = procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(up_port), str(capture)])
    procs.wait_until(upstream, up_port, "/-/count", lambda s: s == 200)
    sidecar, port = start_sidecar(f"http://127.0.0.1:{up_port}/metrics")
    try:
        procs.wait_until(sidecar, port, "/health", lambda s: s == 200, timeout=30, step=0.1)
        rows = []
        for name, abuse in SCENARIOS:
            baselines, abused, held = [], [], 0
            for _ in range(rounds):
                baselines.append(load.run(port, "/health", 1, seconds, reconnect=True))
                with _Running(abuse, port) as running:
                    running.started.wait(10)
                    abused.append(load.run(port, "/health", 1, seconds, reconnect=True))
                    held = max(held, running.held)
            rows.append(AbuseRow(name, _median(baselines), _median(abused), held))
        return rows
    finally:
        procs.stop(sidecar)
        procs.stop(upstream)


class _Running:
    """Runs one abuse in a thread until the block ends (and at most 60 s), then closes all."""

    def __init__(self, abuse, port: int):
        self.abuse, self.port = abuse, port
        self.stop, self.started = threading.Event(), threading.Event()
        self.held = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self._thread.join(30)

    def _run(self):
        clients: list[socket.socket] = []
        try:
            self.abuse(self, clients)
        finally:
            for client in clients:
                client.close()

    def open(self, first_bytes: bytes) -> socket.socket | None:
        try:
            client = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            client.setblocking(False)
            if first_bytes:
                client.send(first_bytes)
            return client
        except OSError:
            return None


def _silent_http10(run: _Running, clients: list) -> None:
    for _ in range(1200):  # 60 s at most
        client = run.open(b"GET /health HTTP/1.0\r\n\r\n")
        if client is not None:
            clients.append(client)
        while len(clients) > 40:
            clients.pop(0).close()
        run.held = len(clients)
        if len(clients) >= 10:
            run.started.set()
        if run.stop.wait(0.05):
            return


def _idle(run: _Running, clients: list) -> None:
    for tick in range(600):  # 60 s at most
        clients[:] = [c for c in clients if not _closed(c)]
        for _ in range(1000 - len(clients) if tick == 0 else min(REOPEN_PER_TICK, 1000 - len(clients))):
            client = run.open(b"")
            if client is None:
                break
            clients.append(client)
        run.held = len(clients)
        run.started.set()
        if run.stop.wait(0.1):
            return


def _partial_pipelined(run: _Running, clients: list) -> None:
    for _ in range(600):  # 60 s at most
        clients[:] = [c for c in clients if not _closed(c, drain=True)]
        while len(clients) < 12:
            client = run.open(PARTIAL)
            if client is None:
                break
            clients.append(client)
        run.held = len(clients)
        run.started.set()
        if run.stop.wait(0.1):
            return


def _closed(client: socket.socket, drain: bool = False) -> bool:
    """Whether the server closed it (reading and dropping any answer it sent)."""
    try:
        while True:
            data = client.recv(65536)
            if not data:
                client.close()
                return True
            if not drain:
                return False
    except BlockingIOError:
        return False
    except OSError:
        client.close()
        return True


SCENARIOS = (
    ("1. silent HTTP/1.0 clients (40 held)", _silent_http10),
    ("2. 1,000 idle connections, reopened", _idle),
    ("3. partial pipelined requests (12 clients)", _partial_pipelined),
)


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _median(results: list[load.LoadResult]) -> load.LoadResult:
    return load.LoadResult(
        requests=int(statistics.median(r.requests for r in results)),
        seconds=statistics.median(r.seconds for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
    )
