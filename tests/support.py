"""Real parts for tests: a loopback upstream serving /metrics bodies, a gunicorn sidecar process,
a fake clock, and the shared captures."""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exporter.config.scrape_config import ScrapeConfig
from exporter.core import policy

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


# A sidecar that scrapes five times a second and exits at once: integration tests stay short.
FAST = {"SCRAPE_INTERVAL": "0.2s", "SCRAPE_TIMEOUT": "0.15s", "SHUTDOWN_DRAIN_SECONDS": "0"}


def capture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def all_captures() -> list[Path]:
    found = sorted(FIXTURES.glob("*.prom"))
    assert found, f"no captures found in {FIXTURES}"
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeClock:
    """Wall and monotonic time that move only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


class Upstream:
    """A real HTTP server on 127.0.0.1 whose /metrics answer the test changes while it runs."""

    def __init__(self):
        self.body = b""
        self.status = 200
        self.content_type = "text/plain; version=0.0.4; charset=utf-8"
        self.delay = 0.0  # seconds before answering
        self.hang = threading.Event()  # set: requests block until released
        self.requests = 0
        self.accept_headers = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                upstream.requests += 1
                upstream.accept_headers.append(self.headers.get("Accept"))
                if upstream.hang.is_set():
                    upstream._released.wait(30)
                if upstream.delay:
                    time.sleep(upstream.delay)
                body = upstream.body
                self.send_response(upstream.status)
                self.send_header("Content-Type", upstream.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._released = threading.Event()

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients that hang up mid-answer are part of the tests

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def set_hung(self, hung: bool) -> None:
        if hung:
            self._released.clear()
            self.hang.set()
        else:
            self.hang.clear()
            self._released.set()

    def close(self) -> None:
        self.set_hung(False)
        self.server.shutdown()
        self.server.server_close()


class Sidecar:
    """`python -m exporter serve` as a real gunicorn process tree on a loopback port."""

    def __init__(self, env: dict, args=(), port: int | None = None):
        self.port = port or free_port()  # given when another process must know it first
        full_env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
        full_env.update({"APP_PORT": str(self.port), "BIND_HOST": "127.0.0.1"})
        full_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "serve", *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._output = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._output.append(line)

    @property
    def output(self) -> str:
        return "".join(self._output)

    def get(self, path: str, headers=None, timeout: float = 5.0, method: str = "GET"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read().decode(), dict(resp.getheaders())
        finally:
            conn.close()

    def wait_for(self, predicate, timeout: float = 15.0, what: str = "condition"):
        """Poll until predicate() is truthy; bounded. Returns its value."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sidecar exited with {self.proc.returncode}:\n{self.output}")
            try:
                value = predicate()
                if value:
                    return value
            except OSError as err:
                last_error = err
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what} (last error {last_error}):\n{self.output}")

    def wait_ready_to_serve(self, timeout: float = 15.0):
        return self.wait_for(lambda: self.get("/livez")[0] == 200, timeout, "/livez 200")

    def health(self) -> int:
        return self.get("/health")[0]

    def metric(self, name: str) -> float | None:
        """One unlabeled (or fully spelled) sample of its /metrics, or None if absent."""
        text = self.get("/metrics")[1]
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return None if found is None else float(found.group(1))

    def signal(self, signum=signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(2)
        return self.proc.returncode


class RawUpstream:
    """A loopback TCP server whose answers the test writes byte by byte: resets mid-body, streams,
    hangs, refusals. `answer(sock)` runs for each request after its head is read and returns
    whether the connection stays open for another request."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = 0
        self.released = threading.Event()  # set: hanging answers return
        self._conns = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self._open = True
        threading.Thread(target=self._accept_loop, args=(self._listener,), daemon=True).start()

    def _accept_loop(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # listener closed
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            buffer = b""
            for _ in range(10_000):  # requests on one connection, bounded
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    if len(buffer) > 1 << 20:
                        return
                _, buffer = buffer.split(b"\r\n\r\n", 1)
                self.requests += 1
                if not self.answer(conn):
                    return
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def refuse(self) -> None:
        """Stop listening and drop every connection: new connects are refused."""
        try:  # wakes the thread blocked in accept(); close() alone leaves the port listening
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def listen_again(self) -> None:
        """Listen on the same port again after refuse()."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept_loop, args=(self._listener,), daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.refuse()


def http_answer(body: bytes, status: str = "200 OK", content_type: str = "text/plain; version=0.0.4; charset=utf-8"):
    """An answer for RawUpstream: a complete response, connection kept alive."""
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode()

    def answer(conn):
        conn.sendall(head + body)
        return True

    return answer


def scrape_failures(metrics_text: str) -> dict:
    """{reason: count} from the sidecar's llm_healthcheck_scrape_failures_total."""
    found = {}
    for line in metrics_text.splitlines():
        if line.startswith("llm_healthcheck_scrape_failures_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            found[reason] = float(line.rsplit(" ", 1)[1])
    return found


def ready_on_a_good_page(statuses) -> bool:
    """What the sidecar would answer for these rule statuses after a good scrape."""
    return policy.decide(statuses, policy.FRESH_PAGE, ScrapeConfig(), previous_ready=True).ready


def require_tool(name: str, install: str) -> str:
    """The one policy for tests that need an outside tool: .ci/run installs every such tool,
    so in CI (CI=true) a missing one fails the test as a broken setup; elsewhere the test
    skips and says how to install it. The tool is looked for beside this interpreter first
    (tools that come as Python packages), then on PATH."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.is_file() else shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing in CI, where .ci/run installs it ({install})")
        pytest.skip(f"{name} is not installed ({install})")
    return path


def wait_until(predicate, what: str, timeout: float = 15.0, step: float = 0.05):
    """Poll predicate() until it is truthy and return its value; bounded, so a test that waits
    for a real process fails with `what` instead of hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def set_queues(upstreams: list, peers: float, subject: float) -> None:
    """Fleet tests: every upstream but the last prints `peers` queued, the last (the subject's) `subject`."""
    for upstream in upstreams[:-1]:
        upstream.body = f"tgi_queue_size {peers}\n".encode()
    upstreams[-1].body = f"tgi_queue_size {subject}\n".encode()
