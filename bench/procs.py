"""Child processes for benchmarks: start, wait until they answer, stop by pid, measure memory."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    """`python -m ...` from the repository; output discarded, so a full pipe never blocks it."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def get(port: int, path: str, timeout: float = 2.0, method: str = "GET") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_until(
    proc: subprocess.Popen, port: int, path: str, want=lambda status: True, timeout: float = 20.0, step: float = 0.002
) -> float:
    """Poll until `path` answers a status `want` accepts; returns the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if want(get(port, path, timeout=1.0)[0]):
                return time.monotonic()
        except OSError:
            pass
        time.sleep(step)
    raise RuntimeError(f"{proc.args}: no suitable answer on {path} within {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found.extend(int(x) for x in task.read_text().split())
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB, from /proc/PID/smaps_rollup."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def tree_memory_kib(pid: int) -> dict:
    """RSS and PSS of a gunicorn master and its workers, each and summed."""
    out = {"master": memory_kib(pid), "workers": [memory_kib(c) for c in children(pid)]}
    out["rss"] = out["master"][0] + sum(w[0] for w in out["workers"])
    out["pss"] = out["master"][1] + sum(w[1] for w in out["workers"])
    return out
