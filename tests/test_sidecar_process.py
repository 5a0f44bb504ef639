"""The real thing: `llm-healthcheck serve` under gunicorn on a loopback port, scraping a real
loopback upstream that serves the shared captures and bodies the test changes while it runs."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import FAST as SUPPORT_FAST
from tests.support import all_captures, capture

FAST = {**SUPPORT_FAST, "SHUTDOWN_DRAIN_SECONDS": "0.5"}


def health_within(sidecar, expected: int, seconds: float):
    return sidecar.wait_for(lambda: sidecar.health() == expected, seconds, f"/health {expected}")


def test_health_flips_within_two_intervals_each_way(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    sidecar.wait_ready_to_serve()
    health_within(sidecar, 200, 5)
    for body, expected in [(b"tgi_queue_size 16\n", 503), (b"tgi_queue_size 2\n", 200)]:
        scrapes_before = upstream.requests
        upstream.body = body
        health_within(sidecar, expected, 10)
        # Counted in scrape cycles, not seconds: the scrape in flight may still see the old body,
        # the next one decides, and the polling probe may notice one cycle later.
        assert upstream.requests - scrapes_before <= 3


def test_every_capture_is_scraped_and_judged(start_sidecar, upstream):
    """Seed rule over each real capture: the sidecar's value equals an independent sum."""
    upstream.body = b""
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, "METRIC_TO_CHECK": "tgi_queue_size", **FAST})
    sidecar.wait_ready_to_serve()
    for path in all_captures():
        body = path.read_bytes()
        expected = sum(
            s.value
            for line in body.decode().splitlines()
            if line.startswith("tgi_queue_size")
            for f in text_string_to_metric_families(line + "\n")
            for s in f.samples
        )
        has_metric = any(line.startswith("tgi_queue_size") for line in body.decode().splitlines())
        upstream.body = body

        def judged(expected=expected, has_metric=has_metric):
            doc = json.loads(sidecar.get("/rules")[1])
            rule = doc["rules"][0]
            if doc["scrape"]["ok"] and doc["scrape"]["empty"] is False:
                return rule if (rule["value"] == expected if has_metric else rule["value"] is None) else None
            return None

        rule = sidecar.wait_for(judged, 5, f"value from {path.name}")
        assert rule["state"] == "ok", path.name
        assert sidecar.health() == 200, path.name


def test_a_saturated_capture_goes_unready(start_sidecar, upstream):
    body = capture("tgi-datadog-integrations-core-3.3.5.prom").replace(
        b"\ntgi_queue_size 0\n", b"\ntgi_queue_size 17\n"
    )
    assert b"tgi_queue_size 17" in body
    upstream.body = body
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    sidecar.wait_ready_to_serve()
    health_within(sidecar, 503, 5)
    # 503 comes first from "starting" (no scrape yet); the rule's line follows the first scrape
    line = r"^\[-\] tgi_queue_size: firing for [\d.]+s: sum\(tgi_queue_size\) = 17 > 15$"
    sidecar.wait_for(lambda: re.search(line, sidecar.get("/health?verbose")[1], re.M), 5, "the firing rule line")


def test_hung_upstream_does_not_slow_health(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST, "FAILURE_THRESHOLD": "3"})
    sidecar.wait_ready_to_serve()
    health_within(sidecar, 200, 5)
    upstream.set_hung(True)
    # Every probe is answered (client timeout 1s) while scrapes hang; after 3 timed-out scrapes: 503.
    codes = []
    for _ in range(20):
        status, _, _ = sidecar.get("/health", timeout=1.0)
        codes.append(status)
        time.sleep(0.1)
    assert set(codes) <= {200, 503} and codes[-1] == 503
    assert "scrape timed out" in sidecar.get("/health?verbose", timeout=1.0)[1]
    upstream.set_hung(False)
    health_within(sidecar, 200, 10)


def test_sigterm_turns_unready_then_exits_cleanly(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST, "SHUTDOWN_DRAIN_SECONDS": "2"})
    sidecar.wait_ready_to_serve()
    health_within(sidecar, 200, 5)
    sidecar.signal(signal.SIGTERM)
    status, body, _ = sidecar.wait_for(
        lambda: (lambda r: r if r[0] == 503 else None)(sidecar.get("/health")), 2, "503 after SIGTERM"
    )
    assert body == "Unhealthy\n"
    assert sidecar.get("/health?verbose")[1].startswith("[-] shutdown: terminating")
    assert sidecar.proc.wait(20) == 0


def test_exactly_one_worker_process(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 1\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    sidecar.wait_ready_to_serve()
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(sidecar.proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(children) == 1


def run_serve(env: dict, *args):
    full = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
    full.update({"APP_PORT": "1", "BIND_HOST": "127.0.0.1", **env})
    return subprocess.run(
        [sys.executable, "-m", "exporter", "serve", *args], env=full, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "env, args, needle",
    [
        (
            {},
            ("--workers", "2"),
            "llm-healthcheck: --workers: 2 workers requested; llm-healthcheck runs exactly one worker",
        ),
        (
            {"WEB_CONCURRENCY": "3"},
            (),
            "llm-healthcheck: env WEB_CONCURRENCY: 3 workers requested; llm-healthcheck runs exactly one",
        ),
        ({"GUNICORN_CMD_ARGS": "--workers 4"}, (), "llm-healthcheck: env GUNICORN_CMD_ARGS: 4 workers requested"),
    ],
)
def test_more_workers_are_refused_with_the_reason(env, args, needle):
    result = run_serve({"APP_PORT": "18099", **env}, *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "hysteresis" in result.stderr
    assert "Traceback" not in result.stderr


def test_garbage_env_stops_startup_with_one_line():
    result = run_serve({"APP_PORT": "8081", "METRIC_THRESHOLD": "fifteen"})
    assert result.returncode == 2
    assert result.stderr == 'llm-healthcheck: env METRIC_THRESHOLD: "fifteen" is not a number\n'


def test_port_out_of_range_stops_startup():
    result = run_serve({"APP_PORT": "99999"})
    assert result.returncode == 2
    assert result.stderr == 'llm-healthcheck: env APP_PORT: "99999" is out of range (1-65535)\n'
