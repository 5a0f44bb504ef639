"""The shipped TGI pack with its shipped fleet view (rules/fleet/tgi.yaml), against a real
Prometheus scraping four fake TGI pages and four real sidecars on loopback.

What a user of the pack notices: a pod whose queue is past the pack's threshold stays in while
the fleet's median pod is as busy (there is nowhere better to send its traffic), and goes out as
soon as its peers have room; with Prometheus gone it decides standalone and goes out. The fleet
file is used as shipped except for its URL and a 1 s interval; its {app="tgi"} selectors match
the labels this Prometheus gives its targets. Every wait is bounded and polls the subject."""

import re
from pathlib import Path

import pytest

from tests.real_prometheus import real_prometheus
from tests.support import Sidecar, Upstream, free_port, set_queues

ROOT = Path(__file__).resolve().parent.parent
PEERS = 3
SIDECAR_ENV = {"SCRAPE_INTERVAL": "0.5s", "SCRAPE_TIMEOUT": "0.4s", "SHUTDOWN_DRAIN_SECONDS": "0"}
WAIT = 45.0
# Peers that never drain, so the fail-open guard (3 of 4 out) cannot be what keeps the subject in.
PEER_RULES = "rules:\n  - {name: queue_seen, expr: sum(tgi_queue_size), above: 1000, severity: warn}\n"


def _fleet_file(url: str) -> str:
    text = (ROOT / "rules" / "fleet" / "tgi.yaml").read_text()
    text, urls = re.subn(r"url: \S+", f"url: {url}", text)
    text, intervals = re.subn(r"interval: 15s", "interval: 1s", text)
    assert urls == intervals == 1
    return text


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet-pack")
    upstreams = [Upstream() for _ in range(PEERS + 1)]
    peer_rules = tmp / "peer.yaml"
    peer_rules.write_text(PEER_RULES)
    peers = [
        Sidecar({"METRICS_ENDPOINT": u.url, "RULES_PATH": str(peer_rules), **SIDECAR_ENV}) for u in upstreams[:PEERS]
    ]
    subject_port = free_port()
    ports = [p.port for p in peers] + [subject_port]
    labels = [{"app": "tgi", "pod": f"tgi-{i}"} for i in range(PEERS + 1)]
    targets = {
        "tgi": [(u.port, label) for u, label in zip(upstreams, labels)],
        "llm-healthcheck": list(zip(ports, labels)),
    }
    subject = None
    try:
        with real_prometheus(tmp, targets) as prometheus:
            # Both files in one directory, as in a rules ConfigMap.
            rules = tmp / "rules"
            rules.mkdir()
            (rules / "tgi.yaml").write_text((ROOT / "rules" / "tgi.yaml").read_text())
            (rules / "tgi-fleet.yaml").write_text(_fleet_file(f"http://127.0.0.1:{prometheus.port}/api/v1/query"))
            env = {"METRICS_ENDPOINT": upstreams[PEERS].url, "RULES_PATH": str(rules), **SIDECAR_ENV}
            subject = Sidecar(env, port=subject_port)
            for sidecar in (*peers, subject):
                sidecar.wait_ready_to_serve()

            class World:
                pass

            w = World()
            w.prometheus, w.subject, w.upstreams = prometheus, subject, upstreams
            yield w
    finally:
        for sidecar in (*peers, *([subject] if subject else [])):
            sidecar.stop()
        for upstream in upstreams:
            upstream.close()


def peer_median(world, value: float):
    """Until Prometheus and then the subject's fleet view show the median queue at `value`."""
    world.prometheus.wait_for(
        lambda p: (
            [float(r["value"][1]) for r in p.query('quantile(0.5, sum by (pod) (tgi_queue_size{app="tgi"}))')]
            == [value]
        ),
        f"a median queue of {value}",
    )
    world.subject.wait_for(
        lambda: "fleet: ok: 4 pods" in world.subject.get("/health?verbose")[1], WAIT, "the subject's fleet view"
    )


def test_a_busy_pod_stays_in_while_the_whole_fleet_is_busy_and_goes_when_its_peers_have_room(world):
    subject = world.subject
    set_queues(world.upstreams, peers=30, subject=30)
    peer_median(world, 30.0)
    # Past the pack's threshold (15), but the median pod is as full: nowhere better, so it stays in.
    subject.wait_for(lambda: subject.metric("llm_healthcheck_fleet_query_success") == 1.0, WAIT, "query ok")
    status, body, _ = subject.get("/health?verbose")
    assert status == 200, body
    assert subject.metric("llm_healthcheck_fail_open") == 0.0  # the rule, not the guard
    # The peers empty their queues: now its traffic has somewhere better to go, so it goes out.
    set_queues(world.upstreams, peers=0, subject=30)
    subject.wait_for(lambda: subject.health() == 503, WAIT, "503 once the peers have room")
    status, body, _ = subject.get("/health?verbose")
    assert 'rule "tgi_queue_saturated" firing' in body, body


def test_without_prometheus_the_pack_decides_standalone(world):
    subject = world.subject
    set_queues(world.upstreams, peers=30, subject=30)
    peer_median(world, 30.0)
    subject.wait_for(lambda: subject.health() == 200, WAIT, "in while the fleet is busy")
    world.prometheus.proc.terminate()
    world.prometheus.proc.wait(20)
    # No fleet view: the queue threshold alone decides, visibly.
    subject.wait_for(lambda: subject.health() == 503, WAIT, "standalone 503 with Prometheus down")
    assert subject.metric("llm_healthcheck_fleet_query_success") == 0.0
    assert "deciding standalone" in subject.output
