"""HTTP connections on which one wall-clock deadline bounds everything: resolving the host,
connecting, the TLS handshake, and every read and write after that.

Why not a socket timeout alone: a timeout bounds each read, and http.client reads a status
line, a header line or a chunk size with many reads, so an upstream that sends one byte every
quarter second would keep a scrape alive forever. Here each read is given only what is left of
the scrape's deadline, so the deadline holds whatever the upstream sends.

Why a thread for DNS: getaddrinfo has no timeout of its own (glibc retries for up to
`timeout:5 attempts:2` per nameserver). The lookup runs in a daemon thread that the scrape
waits for until its deadline; a lookup still running when the next scrape starts is waited
for again rather than doubled, so a dead resolver costs one thread, not one per scrape.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time


class DeadlineExceeded(TimeoutError):
    """The scrape's deadline passed (raised where a socket timeout would be)."""


class _Deadline:
    """The deadline a socket's reads and writes are held to; set anew for each scrape."""

    deadline = float("inf")
    clock = staticmethod(time.monotonic)

    def _left(self) -> float:
        left = self.deadline - self.clock()
        if left <= 0:
            raise DeadlineExceeded("scrape timed out")
        return left


class DeadlineSocket(_Deadline, socket.socket):
    def recv_into(self, buffer, nbytes=0, flags=0):
        self.settimeout(self._left())
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize, flags=0):
        self.settimeout(self._left())
        return super().recv(bufsize, flags)

    def sendall(self, data, flags=0):
        self.settimeout(self._left())
        return super().sendall(data, flags)


class DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    def recv_into(self, buffer, nbytes=None, flags=0):
        self.settimeout(self._left())
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen=1024, flags=0):
        self.settimeout(self._left())
        return super().recv(buflen, flags)

    def sendall(self, data, flags=0):
        self.settimeout(self._left())
        return super().sendall(data, flags)


def set_deadline(sock, deadline: float, clock) -> None:
    """Hold every later read and write on `sock` (one of ours) to `deadline` on `clock`."""
    sock.deadline = deadline
    sock.clock = clock


class Resolver:
    """getaddrinfo bounded by a timeout; at most one lookup thread outstanding."""

    def __init__(self):
        self._pending: tuple[str, int, threading.Event, list] | None = None  # host, port, done, [answer]

    def resolve(self, host: str, port: int, timeout: float) -> list:
        literal = _literal_address(host, port)
        if literal is not None:
            return literal
        pending = self._pending
        if pending is None or pending[:2] != (host, port):
            done, answer = threading.Event(), []  # type: tuple[threading.Event, list]
            pending = self._pending = (host, port, done, answer)

            def lookup() -> None:
                try:
                    # Looked up at call time, so a test can put a resolver in its place.
                    answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
                except OSError as err:
                    answer.append(err)
                done.set()

            threading.Thread(target=lookup, name="llm-healthcheck-dns", daemon=True).start()
        _, _, done, answer = pending
        if not done.wait(max(timeout, 0.0)):
            raise DeadlineExceeded(f"resolving {host} timed out")
        self._pending = None
        if isinstance(answer[0], OSError):
            raise answer[0]
        return answer[0]


def _literal_address(host: str, port: int) -> list | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(address), port))]


def open_socket(host: str, port: int, deadline: float, clock, resolver: Resolver) -> DeadlineSocket:
    """A connected DeadlineSocket, every step within `deadline`."""
    probe = _Deadline()
    set_deadline(probe, deadline, clock)
    last_error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in resolver.resolve(host, port, probe._left()):
        sock = DeadlineSocket(family, kind, proto)
        set_deadline(sock, deadline, clock)
        try:
            sock.settimeout(sock._left())
            sock.connect(address)
            return sock
        except OSError as err:  # DeadlineExceeded included: the next address would be too late
            sock.close()
            last_error = err
            if isinstance(err, (DeadlineExceeded, TimeoutError)):
                break
    raise last_error


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.sslsocket_class = DeadlineSSLSocket  # reads after the handshake keep the deadline
    return context


class DeadlineHTTPConnection(http.client.HTTPConnection):
    """http.client's connection, opened and read within the deadline of the current scrape."""

    def __init__(self, host: str, port: int, resolver: Resolver, clock):
        super().__init__(host, port)
        self._resolver = resolver
        self._clock = clock
        self.deadline = float("inf")

    def start(self, deadline: float) -> None:
        """Hold this scrape, from connecting to the last byte of the body, to `deadline`."""
        self.deadline = deadline
        if self.sock is not None:
            set_deadline(self.sock, deadline, self._clock)

    def connect(self) -> None:
        self.sock = open_socket(self.host, self.port, self.deadline, self._clock, self._resolver)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DeadlineHTTPSConnection(DeadlineHTTPConnection):
    default_port = 443

    def __init__(self, host: str, port: int, resolver: Resolver, clock):
        super().__init__(host, port, resolver, clock)
        self._context = tls_context()

    def connect(self) -> None:
        super().connect()
        left = self.deadline - self._clock()
        if left <= 0:
            raise DeadlineExceeded("scrape timed out")
        self.sock.settimeout(left)  # the handshake is one call: it gets what is left
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)
        set_deadline(self.sock, self.deadline, self._clock)
