"""The gunicorn worker: gthread whose threads only ever run complete requests.

Why not plain gthread: gthread hands every accepted connection to one of its few threads at
once, and that thread then waits (up to 5 s for a first byte, and for as long as bytes
trickle in after that) for a whole request. A handful of slow or idle clients, the classic
slowloris, thus takes every thread and /health stops answering. This worker keeps a
connection in the poller until its request head has arrived, so threads only ever run
complete requests. And the plain probe (exporter.serve.plain_probe) is answered right there
from the app's current answer (probe_answer): the kubelet's probe then never waits behind
other requests for a thread. A plain request for the status page or its JSON is answered the
same way from pre-rendered bytes (page_answer), so someone watching the page takes no thread
from the probes either.
"""

import collections
import errno
import selectors
import time
from functools import partial

from gunicorn.util import http_date
from gunicorn.workers import gthread

from exporter.serve.plain_probe import plain_page, plain_probe

HEAD_TIMEOUT_SECONDS = 5.0  # a request head must arrive whole within this, or the connection closes
PAGE_SEND_TIMEOUT_SECONDS = 10.0  # the rest of a status page a client reads too slowly
HEAD_LIMIT_BYTES = 64 * 1024  # a longer request head is refused (gunicorn would read 800 KB)
_HEADERS_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


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
        """ "complete", "more", "closed" or "too_large" after reading what has arrived."""
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
        """Answer a plain probe, or a plain request for the status page (pre-rendered bytes),
        from the poller; False leaves the request to gunicorn."""
        if not self.alive:
            return False
        found = self._plain_answer(conn.head)
        if found is None:
            return False
        (status, headers, body), keep_alive, page = found
        body = b"" if conn.head.startswith(b"HEAD") else body
        if page:  # a new body each cycle: framed here, not through the probe's one-entry cache
            data = self._frame(int(time.time()), status, headers, keep_alive) + body
        else:
            data = self._probe_bytes(status, headers, body, keep_alive)
        conn.head = b""
        try:
            sent = conn.sock.send(data)  # non-blocking: a client that does not read is dropped
        except OSError:
            sent = -1
        if page and 0 <= sent < len(data):
            self._send_rest(conn, data[sent:])  # a page larger than the socket buffer
            return True
        if sent != len(data) or not keep_alive:
            self._drop(conn, registered=False)
            return True
        conn.set_timeout()  # back to the poller as a kept-alive connection, as gthread does
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))
        return True

    def _plain_answer(self, head: bytes):
        """((status, headers, body), keep_alive, is_page) for a plain probe or page request, else None."""
        limits = (self.cfg.limit_request_fields, self.cfg.limit_request_field_size)
        probe = getattr(self.wsgi, "probe_answer", None)
        if probe is not None:
            keep_alive = plain_probe(head, *limits)
            if keep_alive is not None:
                return probe(), keep_alive, False
        page = getattr(self.wsgi, "page_answer", None)
        if page is not None and getattr(self.wsgi, "status", None) is not None:
            found = plain_page(head, *limits)
            if found is not None:
                path, query, keep_alive = found
                return page(path, query), keep_alive, True
        return None

    def _send_rest(self, conn, rest: bytes):
        """The rest of a page goes out from a thread (blocking, bounded by PAGE_SEND_TIMEOUT_SECONDS),
        so a slow reader never holds the poller; the connection closes after it."""

        def send():
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(PAGE_SEND_TIMEOUT_SECONDS)
                conn.sock.sendall(rest)
            finally:
                conn.close(graceful=True)  # FIN, then drain: a reset could cut the page's tail

        future = self.tpool.submit(send)
        future.add_done_callback(lambda _: self.method_queue.defer(self._closed))

    def _closed(self):
        self.nr_conns -= 1

    def _probe_bytes(self, status: str, headers: tuple, body: bytes, keep_alive: bool) -> bytes:
        # gunicorn's own framing (Server, Date, Connection, then the app's headers), rebuilt
        # only when the second or the answer changes.
        now = int(time.time())
        key = (now, status, headers, body, keep_alive)
        cached = getattr(self, "_probe_cache", None)
        if cached is None or cached[0] != key:
            self._probe_cache = cached = (key, self._frame(now, status, headers, keep_alive) + body)
        return cached[1]

    @staticmethod
    def _frame(now: int, status: str, headers: tuple, keep_alive: bool) -> bytes:
        lines = [
            f"HTTP/1.1 {status}",
            "Server: gunicorn",
            f"Date: {http_date(now)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

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
