"""A loopback HTTP server that answers /api/v1/query as Prometheus does, from answers the test sets
per query text: for the fleet view's own tests, where a real Prometheus cannot be told what to
answer (tests/test_fleet_prometheus.py runs the real one)."""

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def vector(*samples) -> dict:
    """A success document: samples are (labels dict, value) pairs."""
    result = [{"metric": labels, "value": [1700000000.0, _text(value)]} for labels, value in samples]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def scalar(value) -> dict:
    return {"status": "success", "data": {"resultType": "scalar", "result": [1700000000.0, _text(value)]}}


def _text(value) -> str:
    return value if isinstance(value, str) else repr(float(value))


class FleetAPI:
    def __init__(self):
        self.answers: dict[str, object] = {}  # query text -> document (dict) or raw bytes
        self.status = 200
        self.headers: dict[str, str] = {}
        self.requests: list[dict] = []  # {"path", "query", "timeout", "authorization"}
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                api.requests.append(
                    {
                        "path": parts.path,
                        "query": params.get("query"),
                        "timeout": params.get("timeout"),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                answer = api.answers.get(params.get("query"), vector())
                body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(api.status)
                self.send_header("Content-Type", "application/json")
                for name, value in api.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/v1/query"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrometheusProxy:
    """A loopback HTTP hop in front of a real Prometheus, as a Service or an auth proxy sits in front
    of it in a cluster, that a test turns bad: `slow` answers after `delay` seconds, `garbage`
    cuts Prometheus' real answer in half, and with Prometheus stopped every connection is closed
    without an answer."""

    def __init__(self, prometheus_port: int, delay: float = 2.0):
        self.mode = "pass"
        self.delay = delay
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if proxy.mode == "slow":
                    time.sleep(proxy.delay)
                conn = http.client.HTTPConnection("127.0.0.1", prometheus_port, timeout=10)
                try:
                    conn.request("GET", self.path, headers={"Accept": self.headers.get("Accept", "*/*")})
                    response = conn.getresponse()
                    status, body = response.status, response.read()
                except OSError:
                    self.close_connection = True  # nothing behind us: hang up, as a dead backend does
                    return
                finally:
                    conn.close()
                if proxy.mode == "garbage":
                    body = body[: len(body) // 2]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # the sidecar hangs up on slow answers: that is the point

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api/v1/query"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
