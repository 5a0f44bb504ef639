"""One case per row of DESIGN.md "Seed parity": what users relied on keeps working, the seed's
bugs do not. Each case runs the real sidecar under gunicorn against a real loopback upstream."""

import json

import pytest

from tests.support import FAST, free_port
from tests.test_sidecar_process import run_serve


def settle(sidecar, expected: int):
    return sidecar.wait_for(lambda: sidecar.health() == expected, 8, f"/health {expected}")


# row, env, upstream body (None: nothing listening), expected /health
ROWS = [
    ("same names and defaults: sum(tgi_queue_size) > 15 trips at 16", {}, b"tgi_queue_size 16\n", 503),
    ("same names and defaults: 15 is not above 15", {}, b"tgi_queue_size 15\n", 200),
    (
        "METRICS_THRESHOLD from the seed's README is honoured, not ignored",
        {"METRICS_THRESHOLD": "3"},
        b"tgi_queue_size 4\n",
        503,
    ),
    ("threshold 0 is valid (the seed turned it into 15)", {"METRIC_THRESHOLD": "0"}, b"tgi_queue_size 1\n", 503),
    ("fractional thresholds and float values", {"METRIC_THRESHOLD": "0.5"}, b"tgi_queue_size 0.75\n", 503),
    (
        "labelled series are summed (the seed read only the first unlabeled line)",
        {"METRIC_THRESHOLD": "10"},
        b'tgi_queue_size{shard="a"} 6\ntgi_queue_size{shard="b"} 6 1700000000000\n',
        503,
    ),
    ("NaN and +Inf parse; NaN never trips", {"METRIC_TO_CHECK": "q"}, b"q NaN\nother +Inf\n", 200),
    ("empty body: Healthy, as the seed answered", {}, b"", 200),
    ("null body: Healthy, as the seed answered", {}, b"null\n", 200),
    ("metric absent: no data, Healthy (the seed answered 500 forever)", {}, b"tgi_batch_current_size 3\n", 200),
    (
        "fetch error: 503 after failure_threshold failed scrapes (the seed answered 500)",
        {"FAILURE_THRESHOLD": "2"},
        None,
        503,
    ),
]


@pytest.mark.parametrize("row, env, body, expected", ROWS, ids=[r[0] for r in ROWS])
def test_parity_row(start_sidecar, upstream, row, env, body, expected):
    url = upstream.url if body is not None else f"http://127.0.0.1:{free_port()}/metrics"
    upstream.body = body or b""
    sidecar = start_sidecar({"METRICS_ENDPOINT": url, **FAST, **env})
    sidecar.wait_ready_to_serve()
    settle(sidecar, expected)
    status, text, headers = sidecar.get("/health")
    assert text == ("Healthy\n" if expected == 200 else "Unhealthy\n")


def test_parity_probes_read_a_cached_decision(start_sidecar, upstream):
    """The seed scraped on every probe; here probes never reach the upstream."""
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "SCRAPE_INTERVAL": "5s", "SHUTDOWN_DRAIN_SECONDS": "0"})
    sidecar.wait_ready_to_serve()
    settle(sidecar, 200)
    before = upstream.requests
    for _ in range(30):
        assert sidecar.health() == 200
    assert upstream.requests - before <= 1  # at most the one scheduled scrape, not one per probe


def test_parity_more_endpoints_than_the_seed(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    sidecar.wait_ready_to_serve()
    settle(sidecar, 200)
    assert sidecar.get("/livez")[0] == 200
    assert "llm_healthcheck_ready 1.0" in sidecar.get("/metrics")[1]
    assert json.loads(sidecar.get("/rules")[1])["rules"][0]["expr"] == "sum(tgi_queue_size)"
    assert sidecar.get("/health?verbose")[1].splitlines()[-1] == "ready: all rules ok"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"METRIC_THRESHOLD": "lots"}, 'env METRIC_THRESHOLD: "lots" is not a number'),
        (
            {"METRIC_THRESHOLD": "4", "METRICS_THRESHOLD": "5"},
            'env METRICS_THRESHOLD: "5" differs from METRIC_THRESHOLD "4"',
        ),
    ],
)
def test_parity_garbage_stops_startup(env, message):
    """The seed silently used 15 for garbage; here startup stops, saying which variable."""
    result = run_serve(env)
    assert result.returncode == 2 and message in result.stderr
