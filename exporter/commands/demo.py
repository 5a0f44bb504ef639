"""`llm-healthcheck demo` (`make demo`): a simulated TGI and the real sidecar, side by side.

Starts `fake-server --engine tgi --profile demo` (its queue climbs past the seed threshold of
15 and drains again) and `serve` under gunicorn pointed at it, both on loopback ports, then
prints one line per second: time, queue size, decision, HTTP code and latency of a real
GET /health. Stops by itself after DEMO_SECONDS (default 60) and leaves no process behind.
"""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from exporter.config.errors import ConfigError, Problem
from exporter.config.numbers import flag, parse_number

HELP = "Run a simulated TGI and the sidecar against it, printing /health once a second."


def add_arguments(parser) -> None:
    parser.add_argument(
        "--seconds", type=flag(parse_number), default=None, help="how long to run (env DEMO_SECONDS, default 60)"
    )


def run(args) -> int:
    seconds = args.seconds
    if seconds is None:
        text = os.environ.get("DEMO_SECONDS", "60")
        try:
            seconds = parse_number(text)
        except ValueError as err:
            raise ConfigError([Problem("env DEMO_SECONDS", message=f'"{text}" {err}')]) from None
    upstream_port, sidecar_port = _free_port(), _free_port()
    children = []
    try:
        children.append(
            _start(
                [
                    sys.executable,
                    "-m",
                    "exporter",
                    "fake-server",
                    "--engine",
                    "tgi",
                    "--profile",
                    "demo",
                    "--port",
                    str(upstream_port),
                ],
                {},
                quiet=True,
            )
        )
        env = {
            "METRICS_ENDPOINT": f"http://127.0.0.1:{upstream_port}/metrics",
            "APP_PORT": str(sidecar_port),
            "BIND_HOST": "127.0.0.1",
            "SHUTDOWN_DRAIN_SECONDS": "0",
        }
        sidecar = _start([sys.executable, "-m", "exporter", "serve"], env, quiet=False)
        children.append(sidecar)
        threading.Thread(target=_relay_transitions, args=(sidecar,), daemon=True).start()
        print(
            f"simulated TGI on 127.0.0.1:{upstream_port}, sidecar on 127.0.0.1:{sidecar_port}; "
            f"rule: sum(tgi_queue_size) > 15; running {seconds:g}s\n"
        )
        print(f"{'time':>5}  {'queue':>5}  {'running':>7}  {'decision':<9}  {'http':>4}  {'latency':>9}")
        return _watch(upstream_port, sidecar_port, seconds, children)
    except KeyboardInterrupt:
        return 130
    finally:
        _stop_all(children)


def _watch(upstream_port: int, sidecar_port: int, seconds: float, children) -> int:
    started = time.monotonic()
    latencies, codes = [], []
    tick = 0
    while time.monotonic() - started < seconds:
        for child in children:
            if child.poll() is not None:
                print(f"a demo process exited early with code {child.returncode}", file=sys.stderr)
                return 1
        tick += 1
        state = _get_json(upstream_port, "/state")
        code, latency = _probe(sidecar_port)
        queue = "-" if state is None else state.get("queue", "-")
        running = "-" if state is None else state.get("running", "-")
        decision = {200: "ready", 503: "unready"}.get(code, "no answer")
        shown = "-" if latency is None else f"{latency * 1000:.1f} ms"
        print(
            f"{time.monotonic() - started:5.0f}  {queue:>5}  {running:>7}  {decision:<9}  {code or '-':>4}  {shown:>9}",
            flush=True,
        )
        if code:
            codes.append(code)
            latencies.append(latency)
        time.sleep(max(0.0, started + tick - time.monotonic()))
    if latencies:
        print(
            f"\n{len(codes)} probes: {codes.count(200)} x 200, {codes.count(503)} x 503; /health latency "
            f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )
    return 0


def _probe(port: int):
    """A fresh connection per probe, as the kubelet makes."""
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status, time.perf_counter() - started
    except OSError:
        return None, None


def _get_json(port: int, path: str):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        conn.request("GET", path)
        body = conn.getresponse().read()
        conn.close()
        return json.loads(body)
    except (OSError, ValueError):
        return None


def _relay_transitions(sidecar) -> None:
    for line in sidecar.stdout:
        if "readiness ->" in line or "ERROR" in line:
            print("    sidecar: " + line.split(": ", 1)[-1].rstrip(), flush=True)


def _start(argv, env: dict, quiet: bool):
    full_env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
    full_env.update(env)
    return subprocess.Popen(
        argv,
        env=full_env,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else subprocess.STDOUT,
    )


def _stop_all(children) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
