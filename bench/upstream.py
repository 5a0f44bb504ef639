"""A loopback inference-server stand-in for benchmarks: serves /metrics bodies, keep-alive.

    python -m bench.upstream PORT BODY_FILE [BODY_FILE...]

GET /metrics serves the first file, GET /files/<name> any of them by base name, and
GET /-/count says how many bodies were served. `PUT /-/mode/healthy|slow|hung` switches how
bodies are answered: at once, after 2 s, or not at all until the mode changes (each hung
request is released after at most 60 s).
"""

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SLOW_SECONDS = 2.0
HANG_LIMIT_SECONDS = 60.0
MODES = ("healthy", "slow", "hung")


class _State:
    def __init__(self, bodies: dict[str, bytes], default: str):
        self.bodies = bodies
        self.default = default
        self.served = 0
        self.mode = "healthy"
        self.released = threading.Event()


def _handler(state: _State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path == "/-/count":
                self._answer(200, f"{state.served}\n".encode(), "text/plain")
                return
            name = state.default if self.path == "/metrics" else self.path.removeprefix("/files/")
            body = state.bodies.get(name)
            if body is None:
                self._answer(404, b"no such body\n", "text/plain")
                return
            if state.mode == "hung":
                state.released.wait(HANG_LIMIT_SECONDS)
            elif state.mode == "slow":
                time.sleep(SLOW_SECONDS)
            state.served += 1
            self._answer(200, body, "text/plain; version=0.0.4; charset=utf-8")

        def do_PUT(self):
            mode = self.path.rsplit("/", 1)[-1]
            if not self.path.startswith("/-/mode/") or mode not in MODES:
                self._answer(404, b"unknown mode\n", "text/plain")
                return
            state.mode = mode
            if mode == "hung":
                state.released.clear()
            else:
                state.released.set()
            self._answer(200, f"mode {mode}\n".encode(), "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str):
            # Status line, headers and body in one write, as real servers send a small page:
            # separate writes would meet Nagle and delayed ACKs and add 40 ms to each scrape.
            head = (
                f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            try:
                self.wfile.write(head.encode("latin-1") + body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the scraper gave up on a slow or hung answer

        def log_message(self, *args):
            pass

    return Handler


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m bench.upstream PORT BODY_FILE [BODY_FILE...]", file=sys.stderr)
        return 2
    bodies = {os.path.basename(name): Path(name).read_bytes() for name in argv[1:]}
    state = _State(bodies, os.path.basename(argv[1]))
    server = ThreadingHTTPServer(("127.0.0.1", int(argv[0])), _handler(state))
    server.daemon_threads = True
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
