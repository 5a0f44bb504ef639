"""The fleet view against a real Prometheus scraping real sidecars on loopback.

Four sidecars (real gunicorn, each scraping its own loopback upstream) form the fleet; a real
`prometheus` scrapes all four every second. The subject sidecar queries that Prometheus through
a loopback hop (tests/fleet_api.PrometheusProxy) that can be made slow or garbled; for "down"
the Prometheus process itself is stopped and started again. Every wait is bounded and polls
the subject's own answers; nothing asserts how long anything took."""

import re
import subprocess

import pytest

from tests.fleet_api import PrometheusProxy
from tests.support import Sidecar, Upstream, free_port, require_tool, set_queues

PEERS = 3
SIDECAR_ENV = {"SCRAPE_INTERVAL": "0.5s", "SCRAPE_TIMEOUT": "0.4s", "SHUTDOWN_DRAIN_SECONDS": "0"}
WAIT = 45.0  # Prometheus scrapes every 1s and the subject asks every 1s: a few seconds of lag at most

SUBJECT_RULES = """
fleet:
  url: {url}
  interval: 1s
  timeout: 500ms
  max_unready_fraction: 0.5
  queries:
    - name: pods
      expr: count(llm_healthcheck_ready{{job="fleet"}})
    - name: unready
      expr: count(llm_healthcheck_ready{{job="fleet"}} == 0)
    - name: peer_queue
      expr: max(llm_healthcheck_rule_value{{job="fleet", rule="tgi_queue_size"}})
rules:
  - name: queue_high
    expr: sum(tgi_queue_size)
    above: 15
  - name: stalled
    expr: sum(tgi_queue_size) > 1000
    hard_failure: true
  - name: peers_busy
    expr: fleet:peer_queue
    above: 15
    severity: warn
"""


class Prometheus:
    def __init__(self, binary: str, port: int, tmp_path, targets: list[int]):
        self.binary, self.port = binary, port
        self.config = tmp_path / "prometheus.yml"
        self.data = tmp_path / "data"
        listed = ", ".join(f"'127.0.0.1:{p}'" for p in targets)
        self.config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
            f"scrape_configs:\n  - job_name: fleet\n    static_configs:\n      - targets: [{listed}]\n"
        )
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    binary = require_tool("prometheus", "apt-get install prometheus")
    tmp = tmp_path_factory.mktemp("fleet")
    prometheus_port = free_port()
    proxy = PrometheusProxy(prometheus_port)
    upstreams = [Upstream() for _ in range(PEERS + 1)]
    for upstream in upstreams:
        upstream.body = b"tgi_queue_size 1\n"
    rules = tmp / "subject.yaml"
    rules.write_text(SUBJECT_RULES.format(url=proxy.url))
    peers = [Sidecar({"METRICS_ENDPOINT": u.url, **SIDECAR_ENV}) for u in upstreams[:PEERS]]
    subject = Sidecar({"METRICS_ENDPOINT": upstreams[PEERS].url, "RULES_PATH": str(rules), **SIDECAR_ENV})
    sidecars = [*peers, subject]
    prometheus = Prometheus(binary, prometheus_port, tmp, [s.port for s in sidecars])

    class Fleet:
        pass

    world = Fleet()
    world.proxy, world.prometheus, world.subject, world.upstreams = proxy, prometheus, subject, upstreams
    try:
        for sidecar in sidecars:
            sidecar.wait_ready_to_serve()
        yield world
    finally:
        prometheus.stop()
        for sidecar in sidecars:
            sidecar.stop()
        for upstream in upstreams:
            upstream.close()
        proxy.close()


def wait_fleet(world, unready: int):
    """Until the subject's view shows all four pods and `unready` of them unready."""
    subject = world.subject
    return subject.wait_for(
        lambda: (
            subject.metric("llm_healthcheck_fleet_query_success") == 1.0
            and subject.metric("llm_healthcheck_fleet_pods") == PEERS + 1
            and subject.metric("llm_healthcheck_fleet_unready") == unready
        ),
        WAIT,
        f"the fleet view to show {PEERS + 1} pods, {unready} unready",
    )


def hold_in(world):
    """Peers saturated (out), the subject saturated too: the guard must hold the subject in."""
    world.proxy.mode = "pass"
    set_queues(world.upstreams, peers=20, subject=1)
    wait_fleet(world, unready=PEERS)
    set_queues(world.upstreams, peers=20, subject=20)
    world.subject.wait_for(lambda: world.subject.metric("llm_healthcheck_fail_open") == 1.0, WAIT, "fail_open 1")


def test_the_view_reads_the_fleet_from_prometheus(fleet):
    fleet.proxy.mode = "pass"
    set_queues(fleet.upstreams, peers=7, subject=1)
    wait_fleet(fleet, unready=0)
    subject = fleet.subject
    # fleet:peer_queue is the peers' own exported rule value, read back through Prometheus.
    subject.wait_for(
        lambda: subject.metric('llm_healthcheck_rule_value{rule="peers_busy",severity="warn"}') == 7.0,
        WAIT,
        "peer queue 7",
    )
    verbose = subject.get("/health?verbose")[1]
    assert "[+] fleet: ok: 4 pods, 0 unready" in verbose
    assert "[+] fail-open guard: armed (max_unready_fraction 0.5): 0 of 4 pods unready" in verbose
    assert "fleet query ok from http://127.0.0.1:" in subject.output


def test_the_guard_holds_a_pod_in_while_the_fleet_is_mostly_unready(fleet):
    hold_in(fleet)
    subject = fleet.subject
    status, body, _ = subject.get("/health?verbose")
    assert status == 200
    assert re.search(r"^\[-\] queue_high: firing for \d+s: sum\(tgi_queue_size\) = 20 > 15$", body, re.M), body
    assert "ready: fail-open: 4 of 4 pods would be unready, more than max_unready_fraction 0.5" in body
    # The peers drain and Prometheus sees them ready again: now going out helps, so the pod goes.
    set_queues(fleet.upstreams, peers=1, subject=20)
    subject.wait_for(lambda: subject.health() == 503, WAIT, "503 once the peers have room")
    assert subject.metric("llm_healthcheck_fail_open") == 0.0
    # A hard failure takes the pod out even while the rest of the fleet is out.
    hold_in(fleet)
    set_queues(fleet.upstreams, peers=20, subject=5000)
    subject.wait_for(lambda: subject.health() == 503, WAIT, "503 on the hard failure")
    assert subject.metric("llm_healthcheck_fail_open") == 0.0
    assert subject.metric("llm_healthcheck_fleet_query_success") == 1.0


@pytest.mark.parametrize("fault", ["down", "slow", "garbage"])
def test_a_failing_prometheus_means_standalone_until_it_answers_again(fleet, fault):
    hold_in(fleet)
    subject = fleet.subject
    failures_before = subject.output.count("fleet query failing")
    if fault == "down":
        fleet.prometheus.stop()
    else:
        fleet.proxy.mode = fault
    # Standalone: the busy rule takes the pod out, visibly.
    subject.wait_for(lambda: subject.health() == 503, WAIT, f"standalone 503 with Prometheus {fault}")
    assert subject.metric("llm_healthcheck_fleet_query_success") == 0.0
    assert subject.metric("llm_healthcheck_fail_open") == 0.0
    verbose = subject.get("/health?verbose")[1]
    assert "[+] fleet: not in use, deciding standalone: query failed: " in verbose
    assert "[+] fail-open guard: inactive: no fleet view" in verbose
    assert subject.output.count("fleet query failing") > failures_before
    reason = {"down": "connection", "slow": "timeout", "garbage": "unparsable"}[fault]
    assert subject.metric(f'llm_healthcheck_fleet_query_failures_total{{reason="{reason}"}}') >= 1.0
    # Prometheus answers again: the view and the guard come back.
    if fault == "down":
        fleet.prometheus.start()
    fleet.proxy.mode = "pass"
    subject.wait_for(lambda: subject.health() == 200, WAIT, "held in again once Prometheus answers")
    assert subject.metric("llm_healthcheck_fail_open") == 1.0
