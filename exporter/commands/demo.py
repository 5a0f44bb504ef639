"""`llm-healthcheck demo` (`make demo`): a simulated TGI and the real sidecar, side by side.

Starts `fake-server --engine tgi --profile demo` (light load, then about 1.7x capacity, then a
lull) and `serve` under gunicorn pointed at it with DEMO_RULES, a rule with a recover band and
a `for`, both on loopback ports. It prints one row per second (time, arrival rate, queue,
decision, HTTP code and latency of a real GET /health) and one `>>` line for each turn of the
story: the load rises, the rule goes pending, the pod goes unready, the load falls, the pod
comes back, each with the rule's value and thresholds as /health?verbose shows them.
Stops by itself after DEMO_SECONDS (default 60) and leaves no process behind.
"""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from exporter.config.errors import ConfigError, Problem

# Out of service once the queue has stayed above 15 for 3 s; back only when it is below 6, so a
# queue hovering around 15 does not flap the pod in and out.
DEMO_RULES = """rules:
  - name: queue_saturated
    expr: sum(tgi_queue_size)
    above: 15
    recover_below: 6
    for: 3s
    description: the demo's rule, a recover band and a for
"""

HELP = "Run a simulated TGI and the sidecar against it, printing /health once a second."


def add_arguments(parser) -> None:
    parser.add_argument(
        "--duration",
        "--seconds",
        dest="seconds",
        default=None,
        help="how long to run, e.g. 90s or 2m (env DEMO_SECONDS, default 60s; --seconds is the older name)",
    )


def run(args) -> int:
    from exporter.config.settings import parse_duration

    raw = args.seconds if args.seconds is not None else os.environ.get("DEMO_SECONDS", "60")
    try:
        seconds = parse_duration(raw)
    except ValueError as err:
        where = "--duration" if args.seconds is not None else "env DEMO_SECONDS"
        raise ConfigError([Problem(where, message=f'"{raw}" {err}')]) from None
    upstream_port, sidecar_port = _free_port(), _free_port()
    children = []
    workdir = tempfile.TemporaryDirectory(prefix="llm-healthcheck-demo-")
    rules = os.path.join(workdir.name, "demo.yaml")
    with open(rules, "w") as handle:
        handle.write(DEMO_RULES)
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
        # TGI prints no metrics before its first request: start the sidecar once the page has
        # some, so the story does not open with "empty body".
        _wait_for_page(upstream_port, children[0], 10.0)
        env = {
            "RULES_PATH": rules,
            "METRICS_ENDPOINT": f"http://127.0.0.1:{upstream_port}/metrics",
            "APP_PORT": str(sidecar_port),
            "BIND_HOST": "127.0.0.1",
            "SHUTDOWN_DRAIN_SECONDS": "0",
        }
        sidecar = _start([sys.executable, "-m", "exporter", "serve"], env, quiet=False)
        children.append(sidecar)
        threading.Thread(target=_relay_transitions, args=(sidecar,), daemon=True).start()
        print(
            f"simulated TGI on 127.0.0.1:{upstream_port}, sidecar on 127.0.0.1:{sidecar_port}; running {seconds:g}s\n"
            "rule queue_saturated: sum(tgi_queue_size) above 15 for 3s takes the pod out; it comes back "
            "below 6 (the recover band)\n"
        )
        print(f"{'time':>5}  {'rate':>5}  {'queue':>5}  {'running':>7}  {'decision':<9}  {'http':>4}  {'latency':>9}")
        return _watch(upstream_port, sidecar_port, seconds, children)
    except KeyboardInterrupt:
        return 130
    finally:
        _stop_all(children)
        workdir.cleanup()


def _watch(upstream_port: int, sidecar_port: int, seconds: float, children) -> int:
    started = time.monotonic()
    latencies, codes = [], []
    story = _Story()
    tick = 0
    while time.monotonic() - started < seconds:
        for child in children:
            if child.poll() is not None:
                print(f"a demo process exited early with code {child.returncode}", file=sys.stderr)
                return 1
        tick += 1
        elapsed = time.monotonic() - started
        state = _get_json(upstream_port, "/state") or {}
        code, latency = _probe(sidecar_port)
        rate, queue, running = (state.get(key, "-") for key in ("rate", "queue", "running"))
        decision = {200: "ready", 503: "unready"}.get(code, "no answer")
        shown = "-" if latency is None else f"{latency * 1000:.1f} ms"
        print(
            f"{elapsed:5.0f}  {rate:>5}  {queue:>5}  {running:>7}  {decision:<9}  {code or '-':>4}  {shown:>9}",
            flush=True,
        )
        for line in story.events(elapsed, state.get("rate"), code, _rule_line(sidecar_port)):
            print(line, flush=True)
        if code:
            codes.append(code)
            latencies.append(latency)
        time.sleep(max(0.0, started + tick - time.monotonic()))
    if latencies:
        print(
            f"\n{len(codes)} probes: {codes.count(200)} x 200, {codes.count(503)} x 503; /health latency "
            f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )
    print(story.summary())
    return 0


class _Story:
    """Turns the per-second samples into the few lines worth reading: load up or down, the
    rule's state changes, the pod leaving and coming back."""

    def __init__(self):
        self.rate = None
        self.rule_state = None
        self.ready = None
        self.left_at = None
        self.back_at = None

    def events(self, t: float, rate, code, rule_line):
        at = f">> {t:4.0f}s"
        if isinstance(rate, (int, float)):
            if self.rate is not None and abs(rate - self.rate) >= 0.5:
                word = "rises" if rate > self.rate else "falls"
                yield f"{at} load {word}: {self.rate:g} -> {rate:g} requests/s"
            self.rate = rate
        state, detail = rule_line
        if state is not None and state != self.rule_state and state in ("pending", "recovering"):
            yield f"{at} rule {detail}"
        if state is not None:
            self.rule_state = state
        if code in (200, 503) and (code == 200) != self.ready:
            ready = code == 200
            if ready and self.ready is None:
                yield f"{at} pod ready: {detail}"
            elif ready:
                self.back_at = self.back_at or t
                yield f"{at} pod ready again: {detail}"
            else:
                self.left_at = self.left_at or t
                yield f"{at} pod unready: {detail}"
            self.ready = ready

    def summary(self) -> str:
        if self.left_at is None:
            return "the queue never stayed above the threshold long enough: the pod stayed ready"
        if self.back_at is None:
            return f"the pod left the Service at {self.left_at:.0f}s and was still out at the end"
        return f"the pod left the Service at {self.left_at:.0f}s and came back at {self.back_at:.0f}s"


def _rule_line(port: int):
    """(state, "name state ...: expr = value vs thresholds") of the demo's rule, from /health?verbose."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        conn.request("GET", "/health?verbose")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return None, ""
    for line in text.splitlines():
        if line[4:].startswith("queue_saturated: "):
            detail = line[4:]
            state = detail.split(": ", 2)[1].split(" ", 1)[0]
            return state, detail
    return None, ""


def _wait_for_page(port: int, child, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and child.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
            conn.request("GET", "/metrics")
            body = conn.getresponse().read()
            conn.close()
            if body.strip():
                return
        except OSError:
            pass
        time.sleep(0.1)


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
        if "ERROR" in line:  # readiness changes are told by the story lines
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
