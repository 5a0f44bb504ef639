"""How the real gunicorn sidecar serves `/` and `/api/v1/status`: from the poller for plain
requests, through the app for the rest, the same bytes either way; a page larger than the
socket buffers reaches a slow reader whole while probes keep being answered."""

import json
import socket

import pytest

from exporter.serve.plain_probe import plain_page
from tests.support import FAST
from tests.test_abuse import read_responses


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ("/", "", True)),
        (b"HEAD /api/v1/status HTTP/1.1\r\nAccept: application/json\r\n\r\n", ("/api/v1/status", "", True)),
        (b"GET /?refresh=5 HTTP/1.1\r\nConnection: close\r\n\r\n", ("/", "refresh=5", False)),
        (b"GET /?refresh=5&x=1 HTTP/1.1\r\n\r\n", None),  # any other query: the app
        (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", None),
        (b"GET / HTTP/1.0\r\n\r\n", None),
        (b"GET /index.html HTTP/1.1\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n", None),  # pipelined
    ],
)
def test_which_requests_the_poller_answers(head, expected):
    assert plain_page(head) == expected


@pytest.fixture
def sidecar(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    running = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    running.wait_for(lambda: running.health() == 200, 15, "/health 200")
    return running


def _exchange(port: int, request: bytes, answers: int = 1):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(request)
        return read_responses(client, answers)


def _comparable(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k not in (b"date", b"connection")}


@pytest.mark.parametrize("path", ["/", "/api/v1/status"])
def test_poller_and_app_give_the_same_answer(sidecar, path):
    # HTTP/1.0 is never answered by the poller: it goes through a thread and the WSGI app.
    # The page changes every cycle, so compare until two answers describe the same cycle.
    def same_cycle():
        ((s1, h1, fast),) = _exchange(sidecar.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        ((s2, h2, routed),) = _exchange(sidecar.port, f"GET {path} HTTP/1.0\r\n\r\n".encode())
        one = (s1.split(b" ", 1)[1], _comparable(h1), fast)
        return one if one == (s2.split(b" ", 1)[1], _comparable(h2), routed) else None

    status, headers, body = sidecar.wait_for(same_cycle, 15, "two answers from one cycle")
    assert status == b"200 OK" and int(headers[b"content-length"]) == len(body)
    assert b"content-security-policy" in headers


def test_keep_alive_page_then_probe_then_json_on_one_connection(sidecar):
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as client:
        got = []
        for one in request.split(b"\r\n\r\n")[:3]:  # one after another, not pipelined
            client.sendall(one + b"\r\n\r\n")
            got += read_responses(client, 1)
    (_, page_headers, page), (_, _, probe), (_, _, doc) = got
    assert page.startswith(b"<!DOCTYPE html>") and page_headers[b"content-type"].startswith(b"text/html")
    assert probe == b"Healthy\n"
    assert json.loads(doc)["ready"] is True


def test_head_gives_headers_only(sidecar):
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as client:
        client.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: " in head.lower() and body == b""


def test_large_page_reaches_a_slow_reader_whole_and_probes_keep_answering(start_sidecar, upstream, tmp_path):
    # Over 4 MiB (Linux's largest TCP send buffer, net.ipv4.tcp_wmem): the poller's
    # non-blocking send cannot take it whole, so the rest goes out from a thread.
    rules = tmp_path / "rules.d"
    rules.mkdir()
    description = "a long description " * 2500
    for k in range(6):  # rule files are capped at 1 MiB each
        (rules / f"r{k}.yaml").write_text(
            "rules:\n"
            + "".join(
                f"  - name: rule_{k}_{i}\n    description: {description}\n"
                f"    expr: sum(tgi_queue_size)\n    above: {i}\n"
                for i in range(20)
            )
        )
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(rules), **FAST})
    sidecar.wait_for(lambda: sidecar.get("/api/v1/status")[0] == 200, 15, "the status page")
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # far smaller than the page
    slow.settimeout(10)
    slow.connect(("127.0.0.1", sidecar.port))
    try:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # The page is not read yet: the sidecar must not be stuck sending it.
        assert [sidecar.get("/health", timeout=1.0)[0] for _ in range(5)] == [503] * 5  # rule_0_0 fires
        data = b""
        while chunk := slow.recv(65536):
            data += chunk
    finally:
        slow.close()
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
    )
    assert length > 4_500_000 and len(body) == length and body.endswith(b"</html>\n")
