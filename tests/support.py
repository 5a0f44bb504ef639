"""Real parts for tests: a loopback upstream serving /metrics bodies, a gunicorn sidecar process,
a fake clock, and the shared captures."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


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

    def __init__(self, env: dict, args=()):
        self.port = free_port()
        full_env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
        full_env.update({"APP_PORT": str(self.port), "BIND_HOST": "127.0.0.1"})
        full_env.update(env)
        self.proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", *args], env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
