"""A simulated inference server over HTTP: the model advanced to wall-clock time.

The model never runs in the background; each request first advances it to "now"
(seconds since the server started), which is exact because the model is event
driven, and then reads it. Inference requests (POST /v1/completions, /generate) enter
the same model and are held until it finishes them (exporter.sim.serving); POST
/control changes the arrival rate, the KV-cache capacity and faults at run time. A
lock serialises the advance-and-read, so concurrent scrapes see consistent pages;
rendering is cached per model instant.
"""

import json
import random
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exporter.sim.arrivals import Arrivals
from exporter.sim.inference_api import (
    INFERENCE_PATHS,
    MAX_BODY_BYTES,
    OVERLOADED,
    BadRequest,
    answer_body,
    parse_request,
    timing_headers,
)
from exporter.sim.model import ModelConfig, ServerModel
from exporter.sim.pages import build_engine
from exporter.sim.profiles import RateFn
from exporter.sim.serving import ControlError, RequestDesk

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
MAX_HOLD_SECONDS = 600.0  # a stalled server answers 504 after this instead of holding a thread forever


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
        self.base_rate, self.seed = rate, seed  # the control endpoint can return to them
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

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            return self._json(413 if length.isdigit() else 411, {"error": "a Content-Length up to 1 MiB is required"})
        body = self.rfile.read(int(length))
        if path in INFERENCE_PATHS:
            self._infer(path, body)
        elif path == "/control":
            self._control(body)
        else:
            self._json(404, {"error": "not found: POST /v1/completions, /generate or /control"})

    def _infer(self, path: str, body: bytes) -> None:
        server: FakeServerHTTP = self.server  # type: ignore[assignment]
        try:
            prompt, output = parse_request(path, body)
        except BadRequest as err:
            return self._json(err.status, {"error": str(err), "error_type": "validation"})
        req = server.desk.submit(prompt, output)
        if req is None:
            return self._json(429, OVERLOADED)
        if not server.desk.wait(req, server.max_hold):
            return self._json(504, {"error": f"not finished within {server.max_hold:g}s", "error_type": "timeout"})
        server.answered += 1
        self._json(200, answer_body(path, req, server.simulated.model.config.model_name, server.answered), req)

    def _control(self, body: bytes) -> None:
        server: FakeServerHTTP = self.server  # type: ignore[assignment]
        try:
            state = server.desk.control(json.loads(body or b"{}"))
        except (ValueError, ControlError) as err:
            message = str(err) if isinstance(err, ControlError) else "the body is not JSON"
            return self._json(400, {"error": message})
        self._json(200, state)

    def _json(self, status: int, data: dict, req=None) -> None:
        body = (json.dumps(data) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", self.server.name)  # type: ignore[attr-defined]
        for key, value in (timing_headers(req) if req is not None else {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, send_body: bool) -> None:
        sim: SimulatedServer = self.server.simulated  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, TEXT_FORMAT, sim.metrics_page(), send_body)
        elif path == "/state":
            self._send(200, "application/json", (json.dumps(sim.state()) + "\n").encode(), send_body)
        elif path == "/control":
            desk = self.server.desk  # type: ignore[attr-defined]
            self._send(200, "application/json", (json.dumps(desk.state()) + "\n").encode(), send_body)
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

    # Held inference connections are one thread each; the default backlog (5) would refuse
    # a burst of them at connect.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], simulated: SimulatedServer, name: str = "fake-server"):
        super().__init__(address, _Handler)
        self.simulated = simulated
        self.name = name
        self.desk = RequestDesk(simulated)
        self.max_hold = MAX_HOLD_SECONDS
        self.answered = 0

    def server_close(self) -> None:
        self.desk.close()
        super().server_close()

    def handle_error(self, request, client_address) -> None:
        # A scraper hanging up mid-answer is normal; anything else gets one line, not a traceback.
        err = sys.exc_info()[1]
        if not isinstance(err, ConnectionError):
            print(f"fake-server: error answering {client_address[0]}: {err!r}", file=sys.stderr, flush=True)


def serve(host: str, port: int, simulated: SimulatedServer, name: str = "fake-server") -> FakeServerHTTP:
    """Bind (port 0 picks a free port) and return the server; call serve_forever to run it."""
    return FakeServerHTTP((host, port), simulated, name)
