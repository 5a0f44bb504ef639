"""The gunicorn worker: gthread whose threads only ever run complete requests.

Why not plain gthread: gthread hands every accepted connection to one of its few threads at
once, and that thread then waits (up to 5 s for a first byte, and for as long as bytes
trickle in after that) for a whole request. A handful of slow or idle clients, the classic
slowloris, thus takes every thread and /health stops answering. This worker keeps a
connection in the poller until its request head has arrived, so threads only ever run
complete requests. And the plain probe (exporter.serve.plain_probe) is answered right there
from the app's current answer (probe_answer): the kubelet's probe then never waits behind
other requests for a thread.

Three more things a hostile or broken client could otherwise do to the one thread that
answers probes (the poller), handled here:
- Closing a connection lingers (RFC 9112 9.6: FIN first, then read what the client still
  sends, so that it sees the whole answer and no RST) for up to LINGER_SECONDS. gunicorn does
  that on the poller thread, blocking; here the lingering socket waits in the poller instead.
- Idle connections (reading a head, kept alive, lingering) are bounded by IDLE_LIMIT: a new
  connection is always accepted and the oldest idle one closed to make room, so no number of
  idle clients keeps a new probe out.
- Bytes pipelined behind a request go back to the poller like a new head: a partial second
  request waits there, never in a thread, and times out like any other head.
other requests for a thread. A plain request for the status page or its JSON is answered the
same way from pre-rendered bytes (page_answer), so someone watching the page takes no thread
from the probes either.
"""

import collections
import errno
import selectors
import socket
import time
from functools import partial

from gunicorn.util import http_date
from gunicorn.workers import gthread

from exporter.serve.plain_probe import plain_page, plain_probe

HEAD_TIMEOUT_SECONDS = 5.0  # a request head must arrive whole within this, or the connection closes
PAGE_SEND_TIMEOUT_SECONDS = 10.0  # the rest of a status page a client reads too slowly
HEAD_LIMIT_BYTES = 64 * 1024  # a longer request head is refused (gunicorn would read 800 KB)
# The sidecar's clients are the kubelet and a few balancers: a hundred idle connections is
# plenty, and each costs a file descriptor and a poller entry, never a thread.
IDLE_LIMIT = 100
# Connections accepted per poller wake-up: several, so a backlog drains quickly, yet few enough
# that a new connection's head is read (one wake-up later) before 2 x this many newer ones
# could push it out as the oldest of IDLE_LIMIT.
ACCEPTS_PER_WAKEUP = 16
LINGER_SECONDS = 2.0  # how long a closing connection is read for the client's FIN (gunicorn's figure)
LINGER_DRAIN_BYTES = 64 * 1024  # a client that keeps sending while we close is cut off after this
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
        self._lingering = collections.deque()  # closed for writing, read until the client's FIN
        if plain_http1:
            # Busy connections are at most `threads` and idle ones at most IDLE_LIMIT, so
            # gthread never stops accepting: the oldest idle connection goes instead.
            self.worker_connections = IDLE_LIMIT + self.cfg.threads + 1

    def accept(self, listener):
        if not self._head_first:
            return super().accept(listener)
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                sock, client = listener.accept()
            except OSError as err:
                if err.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    return
                raise
            self._make_room()
            self.nr_conns += 1
            self._wait_for_head(gthread.TConn(self.cfg, sock, client, listener.getsockname()))

    def finish_request(self, conn, fs):
        """gthread's, except that closing never blocks and pipelined bytes wait in the poller."""
        if not self._head_first:
            return super().finish_request(conn, fs)
        try:
            keep_alive = fs.result() if not fs.cancelled() else False
            if keep_alive is gthread._DEFER:  # not expected: _run marks the data ready
                keep_alive = self.alive
            if not keep_alive:
                self.nr_conns -= 1
                self._linger(conn)
                return
            conn.sock.setblocking(False)
            pipelined = conn.parser.unreader.take_buffered()
            if pipelined:
                self._wait_for_head(conn, pipelined)
                return
            conn.set_timeout()
            if not self.alive:
                conn.timeout = min(conn.timeout, time.monotonic() + gthread.STOP_KEEPALIVE_LINGER)
            self.keepalived_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))
        except Exception:
            self.nr_conns -= 1
            conn.close()

    def _make_room(self) -> None:
        """Close idle connections, oldest first, until one more fits within IDLE_LIMIT."""
        while len(self._waiting) + len(self.keepalived_conns) + len(self._lingering) >= IDLE_LIMIT:
            if self._lingering:
                self._end_linger(self._lingering.popleft())
            elif self.keepalived_conns and (
                not self._waiting or self.keepalived_conns[0].timeout <= self._waiting[0].head_deadline
            ):
                conn = self.keepalived_conns.popleft()
                self._drop(conn, registered=True)
            else:
                self._drop(self._waiting.popleft(), registered=True)

    def _linger(self, conn) -> None:
        """Close as gunicorn does (FIN, then read until the client's FIN), from the poller."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
            conn.linger_deadline = time.monotonic() + LINGER_SECONDS
            conn.drained = 0
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_linger_readable, conn))
        except (OSError, ValueError, KeyError):
            conn.close()
            return
        self._lingering.append(conn)

    def _on_linger_readable(self, conn, client):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_DRAIN_BYTES:
            self._lingering.remove(conn)
            self._end_linger(conn)

    def _end_linger(self, conn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        conn.close()

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
        while self._lingering and (force or self._lingering[0].linger_deadline <= now):
            self._end_linger(self._lingering.popleft())

    def _wait_for_head(self, conn, pipelined: bytes = b""):
        conn.head = b""
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT_SECONDS
        conn.sock.setblocking(False)
        state = self._take(conn, pipelined) if pipelined else self._read_head(conn)
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
        return self._take(conn, data)

    def _take(self, conn, data: bytes) -> str:
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
        if page and sent == len(data) and not keep_alive:
            self.nr_conns -= 1
            self._linger(conn)  # FIN, then wait for the client's: the page's tail is not cut by a reset
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
