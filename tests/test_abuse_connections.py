"""Clients that hold connections in ways the probe-first worker must absorb (issue 14, items 1-3):
silent HTTP/1.0 clients at close, a thousand idle connections, a partial pipelined request. Each
runs against the real gunicorn sidecar on loopback; the kubelet's probes (1 s timeout, a new
connection each) and /livez must keep answering throughout."""

import resource
import socket

from exporter.serve.probe_worker import IDLE_LIMIT
from tests.test_abuse import PROBE_TIMEOUT, closed_by_server, open_clients, probes_answered


def close_all(clients):
    for client in clients:
        client.close()


def test_silent_http10_clients_do_not_hold_up_probes(sidecar):
    # HTTP/1.0 goes to a request thread; its answer closes the connection, and the close waits
    # for the client's FIN. Ten clients that never read nor close must not delay other probes.
    clients = open_clients(sidecar.port, 10, b"GET /health HTTP/1.0\r\n\r\n")
    try:
        assert set(probes_answered(sidecar, 10)) == {200}
        # The close still lingers for the client: its answer is there to read, then EOF.
        answer = b""
        clients[0].settimeout(5)
        while chunk := clients[0].recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"Healthy\n")
    finally:
        close_all(clients)


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def test_a_thousand_idle_connections_do_not_keep_probes_out(sidecar):
    _raise_fd_limit(1200)
    clients = []
    try:
        for _ in range(2):  # a client that keeps reopening: a second thousand after the first
            clients += open_clients(sidecar.port, 1000, b"")
            assert set(probes_answered(sidecar, 5)) == {200}
        # Beyond the bound, the oldest idle connections were closed to make room.
        assert all(closed_by_server(client, 2) for client in clients[:100])
        # ... and the newest ones, within the bound, are still open.
        assert not any(closed_by_server(client, 0.05) for client in clients[-IDLE_LIMIT // 2 :])
    finally:
        close_all(clients)
    assert set(probes_answered(sidecar, 3)) == {200}


def test_a_partial_pipelined_request_costs_no_thread(sidecar):
    # A complete request, then the start of a second one that never ends: more such clients than
    # the sidecar has request threads (4).
    clients = open_clients(
        sidecar.port, 12, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /livez HTTP/1.1\r\nHost: x\r\nX-Wait: "
    )
    try:
        for client in clients:  # each first request is answered
            client.settimeout(5)
            answer = b""
            while not answer.endswith(b"ok\n"):
                chunk = client.recv(4096)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
        for _ in range(5):  # /livez needs a request thread; none is held by the partial requests
            assert sidecar.get("/livez", timeout=PROBE_TIMEOUT)[0] == 200
            assert sidecar.get("/rules", timeout=PROBE_TIMEOUT)[0] == 200
        # The partial request times out like any unfinished head.
        assert all(closed_by_server(client, 10) for client in clients)
    finally:
        close_all(clients)


def test_pipelined_requests_are_all_answered(sidecar):
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as client:
        client.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while answer.count(b"HTTP/1.1 200") < 2:
            chunk = client.recv(4096)
            assert chunk, answer
            answer += chunk
