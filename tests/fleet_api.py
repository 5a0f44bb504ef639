"""A loopback HTTP server that answers /api/v1/query as Prometheus does, from answers the test sets
per query text: for the fleet view's own tests, where a real Prometheus cannot be told what to
answer (tests/test_fleet_prometheus.py runs the real one)."""

import json
import threading
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
