"""The testbed's parts: the replayed requests are the simulator's, the HAProxy config it writes is
valid and says what the scenario says, and HAProxy consumes the sidecar's agent-check answers."""

import socket
import subprocess
from dataclasses import dataclass, replace

import pytest

from exporter.rules.loader import seed_ruleset
from exporter.serve import agent_check
from exporter.sim import haproxy
from exporter.sim.cluster import simulate
from exporter.sim.scenario import SCENARIO_DIR as REPO_SCENARIOS
from exporter.sim.scenario import load_scenario, resolve_scenario
from exporter.sim.workload import planned_requests
from tests.support import FAST, Sidecar, Upstream, free_port, require_tool, wait_until


@pytest.fixture
def haproxy_bin():
    return require_tool("haproxy", "apt-get install haproxy")


def test_replayed_requests_are_the_ones_the_simulator_serves():
    scenario = replace(load_scenario(resolve_scenario("testbed-spill")), duration=30.0)
    planned = planned_requests(scenario)
    result = simulate(scenario, seed_ruleset("tgi_queue_size", 15))
    for r, region in enumerate(result.regions):
        assert sum(region.arrivals) == sum(p.region == r for p in planned) > 0
    # Every request the simulator finished arrived at a planned time, from the planned region.
    planned_at = {(round(p.at, 9), p.region) for p in planned}
    finished = {(round(arrival, 9), origin) for arrival, origin, *_ in result.requests}
    assert finished and finished <= planned_at
    # The lengths are the simulator's draws too: the same seed gives the same list, another seed another.
    assert planned_requests(scenario) == planned
    assert planned_requests(replace(scenario, seed=scenario.seed + 1)) != planned


def _pods(check: bool, agent: bool = False):
    return [
        haproxy.Pod("hot-1", 0, 9001, 9101 if check else None, 9201 if agent else None),
        haproxy.Pod("hot-2", 0, 9002, 9102 if check else None, 9202 if agent else None),
        haproxy.Pod("cool-1", 1, 9003, 9103 if check else None, 9203 if agent else None),
    ]


def test_generated_config_follows_the_scenario_and_haproxy_accepts_it(tmp_path, haproxy_bin):
    scenario = load_scenario(resolve_scenario("testbed-spill"))
    text = haproxy.render_config(
        scenario, _pods(True, True), [8001, 8002], str(tmp_path / "s.sock"), "least_request", 30
    )
    assert "    default-server inter 1000ms fall 2 rise 1" in text  # periodSeconds 1, failureThreshold 2
    assert "    timeout check 1000ms" in text  # timeoutSeconds 1
    assert "    balance leastconn" in text and "    option httpchk GET /health" in text
    hot = text.split("backend be_hot", 1)[1].split("frontend", 1)[0]
    assert "server hot-1 127.0.0.1:9001 check port 9101 weight 100 agent-check agent-port 9201" in hot
    assert "server cool-1 127.0.0.1:9003 check port 9103 weight 100 agent-check agent-port 9203" in hot
    assert hot.count(" backup") == 1 and "agent-port 9203 agent-inter 1000ms backup" in hot
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text + "\n")
    checked = subprocess.run([haproxy_bin, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=20)
    assert checked.returncode == 0, checked.stderr


def test_policy_none_has_no_health_check():
    scenario = load_scenario(resolve_scenario("testbed-busy"))
    text = haproxy.render_config(scenario, _pods(False)[:2], [8001], "/tmp/x.sock", "round_robin", 30)
    assert " check" not in text.replace("option httpchk", "").replace("timeout check", "")


@dataclass
class StandIn:
    """A decision reduced to what the agent answer reads: readiness and a bare load value, set by the test."""

    ready: bool = True
    load: float | None = None


@pytest.mark.parametrize(
    "decision,answer",
    [
        (None, "drain\n"),
        (StandIn(ready=False, load=0.1), "drain\n"),
        (StandIn(load=None), "ready up 100%\n"),
        (StandIn(load=0.25), "ready up 75%\n"),
        (StandIn(load=1.0), "ready up 1%\n"),  # a ready pod never drops to 0 (that is drain)
        (StandIn(load=7.0), "ready up 1%\n"),
        (StandIn(load=float("nan")), "ready up 100%\n"),
    ],
)
def test_agent_answer(decision, answer):
    assert agent_check.agent_answer(decision) == answer


def _stats(sock_path: str) -> dict:
    return {row["svname"]: row for row in haproxy.server_stats(sock_path)}


def test_haproxy_weights_follow_the_agent_answers(tmp_path, haproxy_bin):
    decision = StandIn(load=0.0)
    agent_port = free_port()
    agent_check.listen("127.0.0.1", agent_port)
    settings = type("S", (), {"agent_port": agent_port, "bind_host": "127.0.0.1"})()
    agent_check.start(settings, lambda: decision)
    backend = socket.create_server(("127.0.0.1", 0))  # the server HAProxy would send requests to
    sock_path = str(tmp_path / "stats.sock")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        f"global\n    stats socket {sock_path} mode 600 level admin\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
        f"backend be\n    server pod 127.0.0.1:{backend.getsockname()[1]} weight 100 "
        f"agent-check agent-port {agent_port} agent-inter 100ms\n"
    )
    proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _connects_unix(sock_path), "the stats socket")
        seen = []
        for load, ready, weight, status in [
            (0.25, True, "75", "no check"),  # no health check configured: the agent alone sets the weight
            (0.9, True, "10", "no check"),
            (0.4, False, "60", "DRAIN"),
        ]:
            decision.load, decision.ready = load, ready
            row = wait_until(lambda w=weight, st=status: _shows(sock_path, w, st), f"weight {weight} / {status}")
            seen.append((row["status"], row["weight"]))
        decision.ready, decision.load = True, 0.5
        row = wait_until(lambda: _shows(sock_path, "50", "no check"), "back from drain at weight 50")
        seen.append((row["status"], row["weight"]))
        assert seen[:2] == [("no check", "75"), ("no check", "10")]
        assert seen[2][0] == "DRAIN (agent)" and seen[3] == ("no check", "50")
    finally:
        proc.terminate()
        proc.wait(10)
        backend.close()


def _shows(sock_path: str, weight: str, status: str):
    """The server's stats row once it shows `status` (a prefix: "DRAIN (agent)") and, unless
    drained, `weight`; else None."""
    row = _stats(sock_path)["pod"]
    if not row["status"].startswith(status):
        return None
    return row if status == "DRAIN" or row["weight"] == weight else None


def _connects_unix(path: str) -> bool:
    try:
        haproxy.stats_command(path, "show info")
        return True
    except OSError:
        return False


def _agent_line(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        return sock.recv(100).decode()


def test_sidecar_answers_the_agent_check_from_its_decision():
    upstream = Upstream()
    upstream.body = b"tgi_queue_size 3\n"
    port = free_port()
    sidecar = Sidecar({**FAST, "METRICS_ENDPOINT": upstream.url, "AGENT_PORT": str(port)})
    try:
        sidecar.wait_for(lambda: sidecar.health() == 200, what="ready")
        assert _agent_line(port) == "ready up 100%\n"  # the seed's rule has no score: section, so full weight
        upstream.body = b"tgi_queue_size 30\n"
        sidecar.wait_for(lambda: sidecar.health() == 503, what="unready")
        assert _agent_line(port) == "drain\n"
    finally:
        sidecar.stop()
        upstream.close()


def test_a_taken_agent_port_stops_startup_with_one_line():
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    sidecar = Sidecar({**FAST, "AGENT_PORT": str(port)})
    try:
        assert sidecar.proc.wait(30) == 2
    finally:
        sidecar.stop()  # also reads the rest of its output
        taken.close()
    errors = [line for line in sidecar.output.splitlines() if line.startswith("llm-healthcheck: ")]
    assert errors == [f"llm-healthcheck: agent port 127.0.0.1:{port}: cannot listen: Address already in use"]
    assert "Traceback" not in sidecar.output


def _testbed_cli(*args: str, env: dict | None = None):
    import os
    import sys

    from tests.support import REPO

    return subprocess.run(
        [sys.executable, "-m", "exporter", "testbed", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_missing_haproxy_is_one_line_saying_how_to_install_it(tmp_path):
    proc = _testbed_cli("testbed-busy", "--out", str(tmp_path), env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr == (
        "llm-healthcheck testbed: haproxy not found on PATH; install it with `apt-get install haproxy` "
        "(Debian/Ubuntu: HAProxy 2.6)\n"
    )


def test_a_scenario_haproxy_cannot_express_is_one_line(tmp_path):
    text = (REPO_SCENARIOS / "testbed-spill.yaml").read_text()
    bad = tmp_path / "proportional.yaml"
    bad.write_text(
        text.replace("gateway: {balance: round_robin", "gateway: {spill: proportional, balance: round_robin")
    )
    proc = _testbed_cli(str(bad), "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "llm-healthcheck testbed: the testbed maps spill: none_ready onto HAProxy backup servers; "
        "proportional has no match"
    ]


def test_a_bad_policy_file_is_the_rule_loaders_line(tmp_path):
    proc = _testbed_cli("testbed-busy", "--policy", str(tmp_path / "missing.yaml"), "--out", str(tmp_path))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "missing.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr
