"""A simulated inference server over HTTP: the model advanced to wall-clock time.

The model never runs in the background; each request first advances it to "now"
(seconds since the server started), which is exact because the model is event
driven, and then reads it. A lock serialises the advance-and-read, so concurrent
scrapes see consistent pages; rendering is cached per model instant.
"""

import json
import random
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exporter.sim.arrivals import Arrivals
from exporter.sim.model import ModelConfig, ServerModel
from exporter.sim.pages import build_engine
from exporter.sim.profiles import RateFn

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class SimulatedServer:
    """Model + arrivals + engine page, advanced by an injected clock."""

    def __init__(
        self,
        engine: str,
        rate: RateFn,
        config: ModelConfig | None = None,
        seed: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ):
        config = config or ModelConfig()
        self.engine = build_engine(engine, config)
        self.model = ServerModel(config, random.Random(f"{seed}:lengths"), self.engine.histograms)
        self._arrivals = Arrivals(rate, random.Random(f"{seed}:arrivals"))
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._page: tuple[float, bytes] | None = None

    def _advance(self) -> None:
        t = self._clock() - self._started
        model = self.model
        for at in self._arrivals.take_until(t):
            model.arrive(at)
        model.advance_to(t)

    def metrics_page(self) -> bytes:
        with self._lock:
            self._advance()
            if self._page is None or self._page[0] != self.model.now:
                self._page = (self.model.now, self.engine.render(self.model).encode())
            return self._page[1]

    def state(self) -> dict:
        with self._lock:
            self._advance()
            state = self.model.state()
            state["rate"] = round(self._arrivals.rate_now(), 3)
            state["engine"] = self.engine.name
            return state


class _Handler(BaseHTTPRequestHandler):
    server_version = "llm-healthcheck-fake-server"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        sim: SimulatedServer = self.server.simulated  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, TEXT_FORMAT, sim.metrics_page(), send_body)
        elif path == "/state":
            self._send(200, "application/json", (json.dumps(sim.state()) + "\n").encode(), send_body)
        elif path == "/health":
            self._send(200, "text/plain; charset=utf-8", b"", send_body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /state\n", send_body)

    def _send(self, status: int, content_type: str, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass  # quiet: the demo prints its own lines, nothing per request


class FakeServerHTTP(ThreadingHTTPServer):
    daemon_threads = True
    # Scrapers reconnect often; let a restarted server take its port back at once.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulated: SimulatedServer):
        super().__init__(address, _Handler)
        self.simulated = simulated

    def handle_error(self, request, client_address) -> None:
        # A scraper hanging up mid-answer is normal; anything else gets one line, not a traceback.
        err = sys.exc_info()[1]
        if not isinstance(err, ConnectionError):
            print(f"fake-server: error answering {client_address[0]}: {err!r}", file=sys.stderr, flush=True)


def serve(host: str, port: int, simulated: SimulatedServer) -> FakeServerHTTP:
    """Bind (port 0 picks a free port) and return the server; call serve_forever to run it."""
    return FakeServerHTTP((host, port), simulated)
