"""The live testbed in CI: real HAProxy health-checking real gunicorn sidecars in front of fake
TGI servers, one minute of the scenario's seeded requests (tests/scenarios/testbed-ci.yaml).

What a user would notice: the saturated pod's sidecar says 503, HAProxy's stats show that pod
DOWN, the hot region's traffic goes to the other pods, and no request goes to (or is lost to) a
pod whose sidecar had been saying 503 for longer than HAProxy's inter x fall."""

from pathlib import Path

import pytest

from exporter.rules.loader import seed_ruleset
from exporter.sim.haproxy import lb_up
from exporter.sim.scenario import RulesSpec, load_scenario
from exporter.sim.testbed import MONITOR_PERIOD_SECONDS, Policy, run_testbed
from tests.support import require_tool, wait_until

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "testbed-ci.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_tool("haproxy", "apt-get install haproxy")  # .ci/run installs it
    scenario = load_scenario(SCENARIO)
    policy = Policy("seed", RulesSpec((), "tgi_queue_size", 15.0))
    ruleset = seed_ruleset("tgi_queue_size", 15.0)
    return run_testbed(scenario, policy, ruleset, "round_robin", 30.0, tmp_path_factory.mktemp("testbed"))


def _episodes(run, pod: str) -> list[tuple[float, float]]:
    """(start, end) of each stretch in which the pod's sidecar was unready, from its own log."""
    out, start = [], None
    for t, ready in run.transitions[pod]:
        if not ready and start is None:
            start = t
        elif ready and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, max(s.t for s in run.samples)))
    return out


def test_haproxy_takes_the_saturated_pod_out_while_its_sidecar_says_503(run):
    both = [s for s in run.samples if s.pod == "hot-1" and s.sidecar == 503 and s.lb_status.startswith("DOWN")]
    assert both, "HAProxy never showed hot-1 DOWN while its sidecar said 503"
    stats = {row["svname"]: row for row in run.final_stats if row["pxname"] == "be_hot"}
    assert int(stats["hot-1"]["chkdown"]) >= 1  # HAProxy's own count of UP -> DOWN transitions
    # The pods with room stayed in.
    for pod in ("cool-1", "cool-2"):
        assert all(lb_up(s.lb_status) for s in run.samples if s.pod == pod), pod


def test_traffic_moves_to_the_other_pods_while_the_hot_one_is_out(run):
    down = [s.t for s in run.samples if s.pod == "hot-1" and not lb_up(s.lb_status)]
    assert down
    moved = [o for o in run.outcomes if o.region == 0 and o.server.startswith("cool-")]
    assert len(moved) >= 20, f"only {len(moved)} of the hot region's requests reached the cool pods"
    # ...and they were sent while HAProxy had hot-1 out (within one monitor period of a DOWN sample).
    near_down = [o for o in moved if any(abs(o.at + o.lag - t) <= MONITOR_PERIOD_SECONDS + 0.05 for t in down)]
    assert len(near_down) >= 0.9 * len(moved)


def test_no_request_goes_to_a_pod_out_for_longer_than_inter_times_fall(run):
    probe = run.scenario.probe
    # HAProxy needs at most `fall` failed checks, `inter` apart, the first within `inter`; plus
    # one monitor period (the DOWN sample) and the check's own round trip.
    bound = probe.period * probe.failure_threshold + MONITOR_PERIOD_SECONDS + 0.3
    episodes = _episodes(run, "hot-1")
    # The log's clock lines up with the monitor's: every 503 the monitor read lies in an episode.
    # A sample is stamped when its monitor round starts; the round reads HAProxy's stats and then
    # each pod's /health in turn, so on two busy cores a 503 can be stamped a few tenths of a
    # second before the sidecar logged it (0.15 s was seen to be too tight).
    for s in run.samples:
        if s.pod == "hot-1" and s.sidecar == 503:
            assert any(a - 0.5 <= s.t <= b for a, b in episodes), (s, episodes)
    long_ones = [(a, b) for a, b in episodes if b - a > bound]
    assert long_ones, f"no 503 stretch of hot-1 outlasted {bound:.1f}s: {episodes}"
    for start, end in long_ones:
        lb = [s for s in run.samples if s.pod == "hot-1" and start + bound <= s.t <= end]
        assert lb and not any(lb_up(s.lb_status) for s in lb), (
            f"HAProxy still had hot-1 up in {start + bound:.1f}-{end:.1f}: "
            + ", ".join(
                f"{s.t:.2f} {s.sidecar} {s.lb_status}"
                for s in run.samples
                if s.pod == "hot-1" and start - 1 <= s.t <= end
            )
        )
        sent = [o for o in run.outcomes if o.server == "hot-1" and start + bound <= o.at + o.lag <= end]
        assert not sent, f"{len(sent)} requests went to hot-1 during {start:.1f}-{end:.1f} ({sent[0]})"
    lost_there = [
        o
        for o in run.outcomes
        if not o.ok and o.server == "hot-1" and any(a + bound <= o.at + o.lag <= b for a, b in long_ones)
    ]
    assert lost_there == []


def test_everything_the_run_started_has_stopped(run):
    assert len(run.pids) == 1 + 2 * len(run.pods)  # HAProxy, a fake server and a sidecar per pod
    alive = [pid for pid in run.pids if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]
    assert alive == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (children in new sessions included)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_a_killed_testbed_leaves_nothing_running(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.support import REPO

    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "testbed", str(SCENARIO), "--policy", "seed", "--out", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        cfg = tmp_path / "logs" / "seed" / "haproxy.cfg"
        while not cfg.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert cfg.exists(), "the testbed never got as far as HAProxy"

        # HAProxy started and the load running: every child is up
        def all_children():
            children = _descendants(proc.pid)
            return children if len(children) >= 7 else None

        below = wait_until(all_children, "HAProxy, the fake servers and the sidecars", 30, 0.1)
        assert len(below) >= 7  # HAProxy, 3 fake servers, 3 gunicorn masters (+ their workers)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_state(pid) not in ("gone", "Z") for pid in below):
        time.sleep(0.2)
    # A killed testbed cannot remove the stats socket's directory itself; the test does.
    import shutil

    for line in cfg.read_text().splitlines():
        if line.strip().startswith("stats socket "):
            shutil.rmtree(Path(line.split()[2]).parent, ignore_errors=True)
    assert [pid for pid in below if _state(pid) not in ("gone", "Z")] == []
