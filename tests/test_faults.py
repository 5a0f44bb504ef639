"""The fault matrix: a real gunicorn sidecar scraping a real loopback upstream that misbehaves in
every way an inference server (or the network in front of it) can.

For each fault: the sidecar does not crash, reaches the decision its policy promises within a
couple of scrape cycles, keeps answering every probe within the kubelet's 1 s timeout, counts
the right reason in llm_healthcheck_scrape_failures_total, and recovers when the upstream does.
Cycles are counted (failures counted, upstream requests served), never timed.
"""

import random
import socket
import struct
import time
from dataclasses import dataclass, field

import pytest

from tests.support import FAST as SUPPORT_FAST
from tests.support import RawUpstream, http_answer, scrape_failures

FAILURE_THRESHOLD = 2
FAST = {**SUPPORT_FAST, "FAILURE_THRESHOLD": str(FAILURE_THRESHOLD), "ON_FAILURE": "unready"}
PROBE_TIMEOUT = 1.0  # the kubelet's default timeoutSeconds
MIB = 1024 * 1024

HEALTHY = b"# HELP tgi_queue_size Requests waiting.\n# TYPE tgi_queue_size gauge\ntgi_queue_size 1\n"
SATURATED = b"# TYPE tgi_queue_size gauge\ntgi_queue_size 20\n"  # the seed rule trips above 15
OPENMETRICS_SATURATED = (
    b"# TYPE tgi_queue_size gauge\n# HELP tgi_queue_size Requests waiting.\n"
    b'tgi_queue_size{model="llama"} 20 1700000000.250\n'
    b'# TYPE tgi_request counter\ntgi_request_total 5 # {trace_id="abc"} 1.0 1700000000.1\n'
    b"tgi_request_created 1.7e9\n# EOF\n"
)


def _reset_mid_body(conn) -> bool:
    body = HEALTHY * 200
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body[: len(body) // 2]
    )
    # Linger 0: close() sends RST instead of FIN, the way a crashed server's kernel does.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return False


def _hang(upstream):
    def answer(conn) -> bool:
        upstream.released.wait(30)
        return False

    return answer


def _slow(upstream, seconds: float):
    def answer(conn) -> bool:
        upstream.released.wait(seconds)
        return http_answer(HEALTHY)(conn)

    return answer


def _huge(with_length: bool):
    """64 MiB of exposition text, announced by Content-Length or streamed until the close."""
    line = b"filler_metric_with_a_long_name 1\n"
    chunk = line * (65536 // len(line))
    total = 64 * MIB

    def answer(conn) -> bool:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
        head += b"Content-Length: %d\r\n\r\n" % total if with_length else b"Connection: close\r\n\r\n"
        conn.sendall(head)
        sent = 0
        while sent < total:  # bounded; ends early when the scraper hangs up
            conn.sendall(chunk)
            sent += len(chunk)
        return False

    return answer


@dataclass(frozen=True)
class Fault:
    name: str
    make_answer: object  # upstream -> answer, or None when the fault is an action (refused)
    reason: str | None  # failure reason counted; None when the body is a valid answer
    baseline: bytes = HEALTHY
    expected: int = 503
    env: dict = field(default_factory=dict)


FAULTS = [
    Fault("connection refused", None, "refused"),
    Fault("reset mid-body", lambda up: _reset_mid_body, "connection"),
    Fault("hang", _hang, "timeout"),
    Fault("2 s slow", lambda up: _slow(up, 2.0), "timeout"),
    Fault("HTTP 500", lambda up: http_answer(b"internal error\n", "500 Internal Server Error"), "http_status"),
    Fault("HTTP 404", lambda up: http_answer(b"not found\n", "404 Not Found"), "http_status"),
    Fault("empty body", lambda up: http_answer(b""), None, baseline=SATURATED, expected=200),
    Fault("null body", lambda up: http_answer(b"null"), None, baseline=SATURATED, expected=200),
    Fault("random bytes", lambda up: http_answer(random.Random(7).randbytes(4096)), "unparsable"),
    Fault(
        "truncated exposition",
        lambda up: http_answer(b'# TYPE tgi_queue_size gauge\ntgi_queue_size{model="lla'),
        "unparsable",
    ),
    Fault("64 MiB body with Content-Length", lambda up: _huge(True), "too_large"),
    # Read up to the 4 MiB cap before refusing: a longer timeout so a loaded machine still
    # reads the cap within the deadline and the reason is the size, not the clock.
    Fault(
        "64 MiB body streamed without length",
        lambda up: _huge(False),
        "too_large",
        env={"SCRAPE_INTERVAL": "1s", "SCRAPE_TIMEOUT": "900ms"},
    ),
    Fault(
        "wrong content type, exposition body",
        lambda up: http_answer(SATURATED, content_type="text/html; charset=utf-8"),
        None,
    ),
    Fault(
        "JSON body", lambda up: http_answer(b'{"tgi_queue_size": 20}', content_type="application/json"), "unparsable"
    ),
    Fault(
        "OpenMetrics body",
        lambda up: http_answer(
            OPENMETRICS_SATURATED, content_type="application/openmetrics-text; version=1.0.0; charset=utf-8"
        ),
        None,
    ),
]


@pytest.fixture
def raw_upstream():
    upstream = RawUpstream(http_answer(HEALTHY))
    yield upstream
    upstream.close()


def probe(sidecar) -> int:
    """One probe as the kubelet sends it; a slower answer raises (socket timeout)."""
    return sidecar.get("/health", timeout=PROBE_TIMEOUT)[0]


def probe_until(sidecar, expected: int, seconds: float) -> list[int]:
    """Probe every 50 ms until `expected`; every probe must be answered within the timeout."""
    statuses = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert sidecar.proc.poll() is None, f"sidecar exited:\n{sidecar.output}"
        statuses.append(probe(sidecar))
        if statuses[-1] == expected:
            return statuses
        time.sleep(0.05)
    raise AssertionError(f"/health never answered {expected} (saw {sorted(set(statuses))}):\n{sidecar.output}")


def failures(sidecar) -> dict:
    status, text, _ = sidecar.get("/metrics", timeout=PROBE_TIMEOUT)
    assert status == 200
    return scrape_failures(text)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault(fault, start_sidecar, raw_upstream):
    raw_upstream.answer = http_answer(fault.baseline)
    sidecar = start_sidecar({"METRICS_ENDPOINT": raw_upstream.url, **FAST, **fault.env})
    sidecar.wait_ready_to_serve()
    baseline = 200 if fault.baseline == HEALTHY else 503
    probe_until(sidecar, baseline, 10)
    assert set(failures(sidecar).values()) == {0}, "the baseline must scrape cleanly"

    served_before = raw_upstream.requests
    if fault.make_answer is None:
        raw_upstream.refuse()
    else:
        raw_upstream.answer = fault.make_answer(raw_upstream)
    probe_until(sidecar, fault.expected, 15)

    counted = failures(sidecar)
    assert set(counted) >= {"refused", "timeout", "http_status", "too_large", "unparsable", "connection"}
    if fault.reason is None:
        assert set(counted.values()) == {0}, counted
        # The scrape in flight may still be the baseline; the next one decides; the probe may
        # notice a cycle or two later on a busy machine.
        assert raw_upstream.requests - served_before <= 4
    else:
        others = {reason: n for reason, n in counted.items() if reason != fault.reason}
        assert set(others.values()) == {0}, counted
        # Unready only after FAILURE_THRESHOLD failures, and not many cycles after that.
        assert FAILURE_THRESHOLD <= counted[fault.reason] <= FAILURE_THRESHOLD + 3, counted

    # Still serving: liveness does not depend on the upstream, and every probe is answered.
    assert sidecar.get("/livez", timeout=PROBE_TIMEOUT)[0] == 200
    for _ in range(5):
        assert probe(sidecar) == fault.expected

    # Recovery: the upstream behaves again and the pod returns to its baseline answer.
    if fault.make_answer is None:
        raw_upstream.listen_again()
    raw_upstream.answer = http_answer(fault.baseline)
    raw_upstream.released.set()
    probe_until(sidecar, baseline, 15)
    assert sidecar.proc.poll() is None
    assert "Traceback" not in sidecar.output


def test_verbose_health_names_the_failure(start_sidecar, raw_upstream):
    """An operator asking why the pod is out reads the failure, not just Unhealthy."""
    sidecar = start_sidecar({"METRICS_ENDPOINT": raw_upstream.url, **FAST})
    sidecar.wait_ready_to_serve()
    probe_until(sidecar, 200, 10)
    raw_upstream.answer = http_answer(b"upstream exploded\n", "500 Internal Server Error")
    probe_until(sidecar, 503, 10)
    text = sidecar.get("/health?verbose", timeout=PROBE_TIMEOUT)[1]
    assert "HTTP 500" in text, text
