"""Clients that misbehave against the real gunicorn sidecar: slowloris, idle connections, a probe
storm, oversized request lines and headers, garbage. /health must keep answering every probe
within the kubelet's 1 s timeout, and bad requests get gunicorn's 4xx, not a hang."""

import http.client
import socket
import threading
import time

import pytest

from tests.support import FAST

PROBE_TIMEOUT = 1.0
SLOW_CLIENTS = 50


def probes_answered(sidecar, count: int = 20) -> list[int]:
    """Kubelet-style probes, one connection each; a probe slower than the timeout raises."""
    statuses = []
    for _ in range(count):
        statuses.append(sidecar.get("/health", timeout=PROBE_TIMEOUT)[0])
        time.sleep(0.02)
    return statuses


def open_clients(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        if first_bytes:
            client.sendall(first_bytes)
        clients.append(client)
    return clients


def closed_by_server(client: socket.socket, seconds: float) -> bool:
    client.settimeout(seconds)
    try:
        return client.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slowloris_does_not_starve_health(sidecar):
    clients = open_clients(sidecar.port, SLOW_CLIENTS, b"GET /health HTTP/1.1\r\nHo")
    stop = threading.Event()

    def trickle():
        # One more byte of a header per client every 100 ms; never the blank line that ends it.
        for _ in range(60):
            if stop.is_set():
                return
            for client in clients:
                try:
                    client.sendall(b"x")
                except OSError:
                    pass
            stop.wait(0.1)

    dripper = threading.Thread(target=trickle, daemon=True)
    dripper.start()
    try:
        assert set(probes_answered(sidecar)) == {200}
    finally:
        stop.set()
        dripper.join(10)
    # The server gives up on heads that never complete, so the connections do not pile up.
    assert all(closed_by_server(client, 15) for client in clients)
    for client in clients:
        client.close()
    assert set(probes_answered(sidecar, 5)) == {200}


def test_idle_connections_do_not_starve_health(sidecar):
    clients = open_clients(sidecar.port, SLOW_CLIENTS, b"")
    try:
        assert set(probes_answered(sidecar)) == {200}
    finally:
        for client in clients:
            client.close()


def test_probe_storm_leaves_room_for_the_kubelet(sidecar):
    results = {"ok": 0, "other": []}
    lock = threading.Lock()

    def storm(keep_alive: bool):
        conn = None
        for _ in range(150):  # bounded: 16 clients x 150 requests
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=5)
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                with lock:
                    if response.status == 200:
                        results["ok"] += 1
                    else:
                        results["other"].append(response.status)
            except OSError as err:
                with lock:
                    results["other"].append(repr(err))
                conn = None
            if not keep_alive and conn is not None:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=storm, args=(i % 2 == 0,), daemon=True) for i in range(16)]
    for thread in threads:
        thread.start()
    try:
        kubelet = probes_answered(sidecar, 10)
    finally:
        for thread in threads:
            thread.join(60)
    assert set(kubelet) == {200}
    assert results["other"] == []
    assert results["ok"] == 16 * 150


def raw_request(port: int, data: bytes) -> bytes:
    """Send raw bytes; return the status line of the answer (or what ended the wait)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        try:
            client.sendall(data)
        except OSError:
            pass  # refused mid-send: the answer may still be readable
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = client.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
    return answer.split(b"\r\n", 1)[0]


LONG_PATH = b"/health?" + b"a" * 5000


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GET " + LONG_PATH + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET " + LONG_PATH, b"414"),  # refused before the line even ends
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", b"431"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000, b"431"),  # before the headers end
        (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n", b"431"),
        (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 8000) for i in range(9)), b"431"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400"),  # a TLS hello on a plain port
        (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", b"400"),
    ],
    ids=[
        "request line",
        "unfinished request line",
        "header field",
        "unfinished header field",
        "too many headers",
        "head over 64 KiB",
        "TLS hello",
        "bad version",
    ],
)
def test_oversized_and_garbled_requests_are_refused(sidecar, data, status):
    line = raw_request(sidecar.port, data)
    assert line.startswith(b"HTTP/1.1 " + status), line
    assert set(probes_answered(sidecar, 3)) == {200}


def test_request_line_at_the_limit_is_served(sidecar):
    filler = b"a" * (4094 - len(b"GET /health?x= HTTP/1.1"))
    line = raw_request(sidecar.port, b"GET /health?x=" + filler + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert line == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("ready", [True, False])
def test_the_fast_probe_answer_is_the_apps_answer(start_sidecar, upstream, method, ready):
    """Plain probes are answered before Falcon's routing; the answer must be the one the Falcon
    resource gives (reached here through a query string the fast path leaves alone)."""
    upstream.body = b"tgi_queue_size 1\n" if ready else b"tgi_queue_size 99\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    sidecar.wait_ready_to_serve()
    expected = 200 if ready else 503
    sidecar.wait_for(lambda: sidecar.health() == expected, 10, f"/health {expected}")

    def answer(path):
        status, body, headers = sidecar.get(path, method=method)
        return status, body, {k.lower(): v for k, v in headers.items() if k.lower() != "date"}

    fast = answer("/health")
    routed = answer("/health?probe=1")
    assert fast == routed
    assert fast[0] == expected
    assert fast[1] == ("" if method == "HEAD" else "Healthy\n" if ready else "Unhealthy\n")
    assert fast[2]["cache-control"] == "no-store"
    assert fast[2]["content-type"] == "text/plain; charset=utf-8"


def read_responses(client: socket.socket, count: int) -> list[tuple[bytes, dict, bytes]]:
    """Read `count` final HTTP responses (status line, headers, body) from one connection;
    interim 1xx answers are skipped."""
    buffer, out = b"", []
    client.settimeout(5)
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = client.recv(65536)
            assert chunk, f"connection closed after {len(out)} answers"
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status, *fields = head.split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(b":") for f in fields)}
        if status.split(b" ")[1].startswith(b"1"):
            continue
        length = int(headers.get(b"content-length", b"0"))
        while len(buffer) < length:
            buffer += client.recv(65536)
        body, buffer = buffer[:length], buffer[length:]
        out.append((status, headers, body))
    return out


PROBE = b"GET /health HTTP/1.1\r\nHost: 10.0.0.7:8081\r\nUser-Agent: kube-probe/1.31\r\nAccept: */*\r\n"


@pytest.mark.parametrize(
    "name, request_bytes, answers",
    [
        ("keep-alive, one after another", None, 3),
        ("pipelined in one write", (PROBE + b"\r\n") * 3, 3),
        ("with a body", b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd" + PROBE + b"\r\n", 2),
        ("HTTP/1.0 then 1.1", b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + PROBE + b"\r\n", 2),
        (
            "expect 100-continue",
            b"GET /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
            1,
        ),
    ],
)
def test_probes_on_one_connection_are_all_answered(sidecar, name, request_bytes, answers):
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as client:
        if request_bytes is None:
            got = []
            for _ in range(answers):
                client.sendall(PROBE + b"\r\n")
                got += read_responses(client, 1)
        else:
            client.sendall(request_bytes)
            got = read_responses(client, answers)
    assert [status.split(b" ", 1)[1] for status, _, _ in got] == [b"200 OK"] * answers
    assert all(body == b"Healthy\n" for _, _, body in got)


def test_connection_close_probe_is_answered_then_closed(sidecar):
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as client:
        client.sendall(PROBE + b"Connection: close\r\n\r\n")
        ((status, headers, body),) = read_responses(client, 1)
        assert (status, headers[b"connection"], body) == (b"HTTP/1.1 200 OK", b"close", b"Healthy\n")
        assert client.recv(1024) == b""


def test_json_accept_gets_the_json_answer(sidecar):
    status, body, headers = sidecar.get("/health", headers={"Accept": "application/json"})
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert '"ready": true' in body
