"""The scrape timeout is a wall-clock deadline whatever the upstream sends (issue 14, items 5, 8
and 9): a status line, headers or chunk sizes dripped a byte at a time, a body shorter than its
Content-Length, and a host name whose lookup never returns. Real sockets on loopback."""

import socket
import ssl
import subprocess
import threading

import pytest

from exporter.core import scrape
from exporter.core.scrape import Scraper
from tests.support import FAST, RawUpstream, http_answer, require_tool, scrape_failures

BODY = b"tgi_queue_size 1\n"
QUEUE = frozenset({"tgi_queue_size"})
DRIP_BYTES = 80  # at 0.1 s a byte, 8 s: far past any deadline used here


def dripping(prefix: bytes, drip: bytes, rest: bytes = b""):
    """An answer that sends `prefix` at once, then `drip` one byte every 0.1 s, then `rest`;
    records in `finished` whether it got to the end (the scraper did not give up first)."""
    finished = []

    def answer(conn):
        conn.sendall(prefix)
        for byte in drip:
            if not _still_open(conn):
                finished.append(False)
                return False
            conn.sendall(bytes([byte]))
            if RELEASE.wait(0.1):
                break
        conn.sendall(rest)
        finished.append(True)
        return False

    return answer, finished


RELEASE = threading.Event()  # never set: the drip runs its course unless the scraper hangs up


def _still_open(conn) -> bool:
    # The scraper closing its end shows as readable-with-EOF (or a reset) here.
    conn.setblocking(False)
    try:
        return conn.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        conn.setblocking(True)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY)
CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
CASES = {
    "status line": (b"", HEAD, BODY),
    "header lines": (b"HTTP/1.1 200 OK\r\n", b"X-Pad: " + b"p" * (DRIP_BYTES - 9) + b"\r\n", HEAD[17:] + BODY),
    "chunk size": (CHUNKED, b"0" * (DRIP_BYTES - 3) + b"11\r\n", BODY + b"\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_dripped_response_times_out_at_the_deadline(case):
    prefix, drip, rest = CASES[case]
    answer, finished = dripping(prefix, drip, rest)
    upstream = RawUpstream(answer)
    try:
        result = Scraper(upstream.url, 0.5, 1 << 20).scrape(frozenset({"tgi_queue_size"}))
        assert not result.ok and result.reason == scrape.TIMEOUT, result
        for _ in range(50):  # the upstream notices the hang-up before its next byte
            if finished or RELEASE.wait(0.1):
                break
        assert finished == [False], "the scrape waited for the whole dripped answer"
    finally:
        upstream.close()


def test_a_dripping_upstream_is_shown_as_failed_scrapes(start_sidecar):
    # Before: the scrape never ended, /health kept 200 on stale data and /livez turned 503.
    answer, _ = dripping(b"", b"HTTP/1.1 200 OK\r\n" + b"X" * 200)
    upstream = RawUpstream(answer)
    try:
        sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
        sidecar.wait_ready_to_serve()
        sidecar.wait_for(lambda: scrape_failures(sidecar.get("/metrics")[1]).get("timeout", 0) >= 3, 15, "timeouts")
        assert sidecar.health() == 503
        assert sidecar.get("/livez")[0] == 200
    finally:
        upstream.close()


def test_a_body_shorter_than_its_content_length_is_a_failed_scrape():
    def short(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + BODY)
        return False  # closes the connection 83 bytes early

    upstream = RawUpstream(short)
    try:
        result = Scraper(upstream.url, 2.0, 1 << 20).scrape(None)
        assert not result.ok and result.reason == scrape.CONNECTION
        assert "83 bytes short" in result.error
    finally:
        upstream.close()


def test_a_complete_body_is_still_read_when_the_upstream_closes_after_it():
    def complete(conn):
        http_answer(BODY)(conn)
        return False

    upstream = RawUpstream(complete)
    try:
        result = Scraper(upstream.url, 2.0, 1 << 20).scrape(None)
        assert result.ok and result.samples == (((("__name__", "tgi_queue_size"),), 1.0),)
    finally:
        upstream.close()


def test_a_lookup_that_never_returns_is_cut_at_the_deadline(monkeypatch):
    upstream = RawUpstream(http_answer(BODY))
    released = threading.Event()
    real = socket.getaddrinfo
    lookups = []

    def hanging(host, *args, **kwargs):
        if host == "metrics.invalid":
            lookups.append(host)
            released.wait(5)  # a resolver that does not answer (bounded so the thread ends)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        scraper = Scraper(f"http://metrics.invalid:{upstream.port}/metrics", 0.3, 1 << 20)
        first = scraper.scrape(None)
        assert not first.ok and first.reason == scrape.TIMEOUT
        assert "resolving metrics.invalid timed out" in first.error
        # The next scrape waits for the same lookup instead of starting another thread.
        second = scraper.scrape(None)
        assert not second.ok and second.reason == scrape.TIMEOUT
        assert lookups == ["metrics.invalid"]
    finally:
        released.set()
        upstream.close()


def test_a_failed_lookup_is_a_connection_failure(monkeypatch):
    def failing(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    result = Scraper("http://metrics.invalid:9/metrics", 1.0, 1 << 20).scrape(None)
    assert not result.ok and result.reason == scrape.CONNECTION
    assert "name or service not known" in result.error


def _self_signed(tmp_path):
    require_tool("openssl", "apt-get install openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
    )
    return key, cert


def test_the_deadline_holds_over_tls_too(tmp_path, monkeypatch):
    key, cert = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the scraper trusts this certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    finished = []

    def serve():
        for _ in range(2):  # one good answer, then a dripped one
            raw, _ = listener.accept()
            with context.wrap_socket(raw, server_side=True) as conn:
                conn.settimeout(10)
                conn.recv(65536)
                if not finished:
                    conn.sendall(HEAD + BODY)
                    finished.append("answered")
                    continue
                try:
                    for byte in HEAD:
                        conn.sendall(bytes([byte]))
                        RELEASE.wait(0.1)
                    finished.append("dripped whole")
                except OSError:
                    finished.append("cut")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        url = f"https://localhost:{listener.getsockname()[1]}/metrics"
        good = Scraper(url, 2.0, 1 << 20).scrape(QUEUE)
        assert good.ok and good.samples == (((("__name__", "tgi_queue_size"),), 1.0),)
        dripped = Scraper(url, 0.5, 1 << 20).scrape(QUEUE)
        assert not dripped.ok and dripped.reason == scrape.TIMEOUT
        thread.join(15)
        assert finished == ["answered", "cut"]
    finally:
        listener.close()
