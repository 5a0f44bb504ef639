"""gunicorn settings and hooks: one gthread worker, the evaluator started inside it.

Why one worker: hysteresis state lives in memory; several workers would scrape the inference
server several times per interval and could give the kubelet different answers.

Why ProbeFirstWorker rather than plain gthread: gthread hands every accepted connection to
one of its few threads at once, and that thread then waits (up to 5 s for a first byte, and
for as long as bytes trickle in after that) for a whole request. A handful of slow or idle
clients, the classic slowloris, thus takes every thread and /health stops answering. This
worker keeps a connection in the poller until its request head has arrived, so threads only
ever run complete requests. And the plain probe, `GET|HEAD /health` with nothing unusual about
it, is answered right there from the app's current answer (ProbeFastPath.probe_answer): the
kubelet's probe then never waits behind other requests for a thread.

Signals:
- SIGTERM (master or worker): /health turns 503 at once; the worker keeps answering for
  `shutdown_drain` seconds so load balancers see the drain, then exits gracefully.
- SIGHUP (master): forwarded to the worker as a rules reload. gunicorn's own SIGHUP would
  replace the worker and lose every rule's state.
"""

import collections
import errno
import gc
import math
import os
import re
import selectors
import signal
import sys
import threading
import time
from functools import partial

from gunicorn.util import http_date
from gunicorn.workers import gthread

from exporter.settings import WORKERS_MESSAGE

WORKER_CLASS = "exporter.gunicorn_config.ProbeFirstWorker"
HEAD_TIMEOUT_SECONDS = 5.0  # a request head must arrive whole within this, or the connection closes
HEAD_LIMIT_BYTES = 64 * 1024  # a longer request head is refused (gunicorn would read 800 KB)
_HEADERS_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
                      b"Content-Length: 0\r\n\r\n")


def options(settings) -> dict:
    opts = {
        "bind": [f"{_host(settings.bind_host)}:{settings.port}"],
        "workers": 1,
        "worker_class": WORKER_CLASS,
        "threads": settings.threads,
        "graceful_timeout": max(1, math.ceil(settings.graceful_timeout)),
        "timeout": 30,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "control_socket_disable": True,
        "proc_name": "llm-healthcheck",
        # Build the app in the master so the worker shares its code and rules copy-on-write.
        # `serve` builds it there anyway; this makes the plain gunicorn command do the same.
        "preload_app": True,
        "on_starting": on_starting,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
    }
    if os.path.isdir("/dev/shm"):
        opts["worker_tmp_dir"] = "/dev/shm"  # works with a read-only root filesystem
    return opts


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def on_starting(server) -> None:
    if server.cfg.workers != 1:
        print(f"llm-healthcheck: workers={server.cfg.workers} {WORKERS_MESSAGE}", file=sys.stderr)
        sys.exit(2)
    server.handle_hup = lambda: _forward_hup(server)
    # Everything loaded so far (modules, compiled rules) lives as long as the process. Moving
    # it out of the collector's reach keeps the worker's garbage collections short (they run
    # on whichever thread allocates, request threads included, so they show in probe p99) and
    # stops them from writing into pages the worker shares with the master.
    gc.freeze()


def _forward_hup(server) -> None:
    for pid in list(server.WORKERS):
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            pass


def post_worker_init(worker) -> None:
    from exporter.runtime import current

    runtime = current()
    evaluator = runtime.evaluator
    evaluator.start()

    def on_term(signum, frame):
        evaluator.terminate()
        drain = runtime.settings.shutdown_drain
        timer = threading.Timer(drain, worker.handle_exit, args=(signum, frame))
        timer.daemon = True
        timer.start()

    def on_hup(signum, frame):
        evaluator.request_reload()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    signal.siginterrupt(signal.SIGTERM, False)
    signal.siginterrupt(signal.SIGHUP, False)


def worker_exit(server, worker) -> None:
    from exporter.runtime import current

    runtime = current(required=False)
    if runtime is not None:
        runtime.evaluator.stop(timeout=2.0)


class ProbeFirstWorker(gthread.ThreadWorker):
    """gthread whose threads only receive connections that have sent a whole request head.

    New and kept-alive connections wait in the poller (the worker's main thread) while their
    head arrives, read without blocking; a head that does not complete within
    HEAD_TIMEOUT_SECONDS is dropped. The bytes read are handed to gunicorn's own parser, so
    limits, errors and answers are gunicorn's. TLS and HTTP/2 connections, which the sidecar
    does not configure, keep gthread's behaviour.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._waiting = collections.deque()  # connections reading their head, oldest first
        plain_http1 = not self.cfg.is_ssl and "h2" not in getattr(self.cfg, "http_protocols", ())
        self._head_first = plain_http1
        # gunicorn's limits (0 = unlimited), plus the line ending
        self._request_line_limit = (self.cfg.limit_request_line or HEAD_LIMIT_BYTES) + 2
        self._field_limit = (self.cfg.limit_request_field_size or HEAD_LIMIT_BYTES) + 2

    def accept(self, listener):
        if not self._head_first:
            return super().accept(listener)
        try:
            sock, client = listener.accept()
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        self._wait_for_head(gthread.TConn(self.cfg, sock, client, listener.getsockname()))

    def on_client_socket_readable(self, conn, client):
        if not self._head_first:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._wait_for_head(conn)

    def handle(self, conn):
        head = getattr(conn, "head", b"")
        if head:
            conn.head = b""
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(head)
        return super().handle(conn)

    def murder_keepalived(self, force=False):
        super().murder_keepalived(force)
        now = time.monotonic()
        while self._waiting and (force or self._waiting[0].head_deadline <= now):
            self._drop(self._waiting.popleft(), registered=True)

    def _wait_for_head(self, conn):
        conn.head = b""
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT_SECONDS
        conn.sock.setblocking(False)
        state = self._read_head(conn)
        if state == "more":
            self._waiting.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))
        else:
            self._finish_head(conn, state, registered=False)

    def _on_head_readable(self, conn, client):
        state = self._read_head(conn)
        if state != "more":
            self._waiting.remove(conn)
            self._finish_head(conn, state, registered=True)

    def _finish_head(self, conn, state: str, registered: bool):
        if state == "complete":
            if registered:
                self.poller.unregister(conn.sock)
            if not self._answer_probe(conn):
                self._run(conn)
            return
        if state == "too_large":
            try:  # best effort: the socket is non-blocking and the client may be gone
                conn.sock.send(_HEADERS_TOO_LARGE)
            except OSError:
                pass
        self._drop(conn, registered)

    def _read_head(self, conn) -> str:
        """"complete", "more", "closed" or "too_large" after reading what has arrived."""
        try:
            data = conn.sock.recv(HEAD_LIMIT_BYTES)
        except (BlockingIOError, InterruptedError):
            return "more"
        except OSError:
            return "closed"
        if not data:
            return "closed"
        head = conn.head = conn.head + data
        if b"\r\n\r\n" in head or b"\n\n" in head:
            return "complete"
        line_start = head.rfind(b"\n") + 1
        if line_start == 0:
            # Still the request line: past its limit gunicorn answers 414 without more bytes.
            return "complete" if len(head) > self._request_line_limit else "more"
        # gunicorn would wait for the end of the headers before judging their size, holding
        # a thread; refuse here instead, with the status it would give.
        if len(head) - line_start > self._field_limit or len(head) >= HEAD_LIMIT_BYTES:
            return "too_large"
        return "more"

    def _answer_probe(self, conn) -> bool:
        """Answer a plain probe from the poller; False leaves the request to gunicorn."""
        answer = getattr(self.wsgi, "probe_answer", None)
        if answer is None or not self.alive:
            return False
        keep_alive = plain_probe(conn.head, self.cfg.limit_request_fields, self.cfg.limit_request_field_size)
        if keep_alive is None:
            return False
        status, headers, body = answer()
        data = self._probe_bytes(status, headers, b"" if conn.head.startswith(b"HEAD") else body, keep_alive)
        conn.head = b""
        try:
            sent = conn.sock.send(data)  # non-blocking: a client that does not read is dropped
        except OSError:
            sent = -1
        if sent != len(data) or not keep_alive:
            self._drop(conn, registered=False)
            return True
        conn.set_timeout()  # back to the poller as a kept-alive connection, as gthread does
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))
        return True

    def _probe_bytes(self, status: str, headers: tuple, body: bytes, keep_alive: bool) -> bytes:
        # gunicorn's own framing (Server, Date, Connection, then the app's headers), rebuilt
        # only when the second or the answer changes.
        now = int(time.time())
        key = (now, status, headers, body, keep_alive)
        cached = getattr(self, "_probe_cache", None)
        if cached is None or cached[0] != key:
            lines = [f"HTTP/1.1 {status}", "Server: gunicorn", f"Date: {http_date(now)}",
                     f"Connection: {'keep-alive' if keep_alive else 'close'}",
                     *(f"{name}: {value}" for name, value in headers)]
            self._probe_cache = cached = (key, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return cached[1]

    def _run(self, conn):
        conn.data_ready = True  # gthread must not wait for a first byte again
        self.enqueue_req(conn)

    def _drop(self, conn, registered: bool):
        if registered:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self.nr_conns -= 1
        conn.close()


_PROBE_LINE = re.compile(rb"(?:GET|HEAD) /health HTTP/1\.1")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[\x20-\x7e\t]*")
_NOT_PLAIN = (b"transfer-encoding", b"expect", b"upgrade", b"http2-settings")


def plain_probe(head: bytes, max_fields: int = 100, max_field_size: int = 8190) -> bool | None:
    """For a request head that is exactly a plain probe, whether the connection stays open
    after the answer; None for anything else (a body, pipelined bytes, HTTP/1.0, a query
    string, a JSON Accept, an odd header, gunicorn's limits reached), which gunicorn and the
    app then handle."""
    if len(head) > 8192 or head.find(b"\r\n\r\n") != len(head) - 4:
        return None
    request_line, _, fields = head[:-4].partition(b"\r\n")
    if not _PROBE_LINE.fullmatch(request_line):
        return None
    lines = fields.split(b"\r\n") if fields else []
    if max_fields and len(lines) > max_fields:
        return None
    keep_alive = True
    for line in lines:
        if max_field_size and len(line) > max_field_size:
            return None
        name, colon, value = line.partition(b":")
        value = value.strip(b" \t")
        if not colon or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            return None
        name = name.lower()
        if name in _NOT_PLAIN or (name == b"content-length" and value != b"0"):
            return None
        if name == b"accept" and b"application/json" in value:
            return None
        if name == b"connection":
            tokens = {token.strip(b" \t").lower() for token in value.split(b",")}
            if tokens - {b"close", b"keep-alive", b""}:
                return None
            keep_alive = keep_alive and b"close" not in tokens
    return keep_alive
