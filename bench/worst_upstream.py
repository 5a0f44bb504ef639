"""An upstream for the worst-case memory run: serves the given bodies in turn, one per request.

    python -m bench.worst_upstream PORT BODY_FILE [BODY_FILE...]

GET /metrics answers the next body (round robin), GET /-/count how many were served.
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m bench.worst_upstream PORT BODY_FILE [BODY_FILE...]", file=sys.stderr)
        return 2
    bodies = [Path(name).read_bytes() for name in argv[1:]]
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path == "/-/count":
                body = f"{served[0]}\n".encode()
            else:
                body = bodies[served[0] % len(bodies)]
                served[0] += 1
            head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
            try:
                self.wfile.write(head.encode("latin-1"))
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", int(argv[0])), Handler)
    server.daemon_threads = True
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
