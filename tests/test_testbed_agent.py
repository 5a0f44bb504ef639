"""HAProxy's agent-check in the live testbed: real HAProxy reading real sidecars' agent answers,
one minute of tests/scenarios/testbed-ci.yaml under the TGI pack (its score: the larger of
queue / 5 and batch / 16) with `leastconn`.

What a user would notice in `show stat`: the weights are not a constant 100; each server's
weight is the one its sidecar's published load score (/load) gives, read about a second
earlier; the saturated pod's weight sinks below the weights of the pods with room; and a
pod whose sidecar says 503 is drained by the agent (`DRAIN (agent)`)."""

from pathlib import Path

import pytest

from exporter.sim.haproxy import lb_up
from exporter.sim.scenario import load_scenario
from exporter.sim.testbed import MONITOR_PERIOD_SECONDS, Policy, run_testbed
from tests.support import REPO, require_tool

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "testbed-ci.yaml"
PACK = REPO / "rules" / "tgi.yaml"


def agent_weight(load: float) -> int:
    """The weight an agent answer `ready up <w>%` gives a `weight 100` server (exporter.serve.agent_check)."""
    return min(100, max(1, round(100 * (1.0 - min(max(load, 0.0), 1.0)))))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_tool("haproxy", "apt-get install haproxy")
    from exporter.commands.testbed import _policy, _ruleset

    policy: Policy = _policy(str(PACK))
    scenario = load_scenario(SCENARIO)
    workdir = tmp_path_factory.mktemp("testbed-agent")
    return run_testbed(scenario, policy, _ruleset(policy), "least_request", 30.0, workdir, agent=True)


def _up(run, pod: str) -> list:
    """The pod's samples while HAProxy had it up in its own region's backend, once the load ran."""
    return [s for s in run.samples if s.pod == pod and s.t >= 0 and lb_up(s.lb_status)]


def test_the_config_gives_every_server_an_agent_check(run):
    servers = [line for line in run.config_text.splitlines() if line.strip().startswith("server ")]
    assert servers and all(" weight 100 agent-check agent-port " in line for line in servers)


def test_haproxy_weights_are_the_sidecars_load_scores(run):
    # An agent answer reads the decision of the moment; HAProxy asks every agent-inter (the probe
    # period) and keeps the weight until the next answer, and a decision's score lasts one
    # evaluation interval. So a weight in `show stat` is the one a /load value gave at most an
    # agent-inter plus an interval (plus a monitor period) before it, or just after.
    interval = run.scenario.sidecar_interval or 1.0
    before = run.scenario.probe.period + interval + MONITOR_PERIOD_SECONDS
    after = 2 * MONITOR_PERIOD_SECONDS
    for pod in run.pods:
        loads = [(s.t, s.load) for s in run.samples if s.pod == pod.name and s.load is not None]
        assert len(loads) > 0.9 * sum(s.pod == pod.name for s in run.samples), f"{pod.name}: /load did not answer"
        up = [s for s in _up(run, pod.name) if s.t >= before]
        assert len(up) >= 20, pod.name
        missed = [s for s in up if not _near(s, loads, before, after)]
        assert len(missed) <= 0.1 * len(up), (
            f"{pod.name}: {len(missed)} of {len(up)} weights match no load read near them: "
            + ", ".join(f"{s.t:.1f}s weight {s.lb_weight} load {s.load}" for s in missed[:10])
        )
    weights = {s.lb_weight for pod in run.pods for s in _up(run, pod.name)}
    assert len(weights) >= 5, f"HAProxy showed only the weights {sorted(weights)}"


def test_the_saturated_pods_weight_sinks_below_the_pods_with_room(run):
    hot = [s.lb_weight for s in _up(run, "hot-1")]
    assert max(hot) >= 94  # idle when the load starts (TGI prints no queue yet: on_missing 0)
    assert min(hot) == 1  # full (load 1): 1 %, never 0 % (that would be a drain)
    # From a fifth of the way in to the end of the arrivals (after it the pods drain and idle),
    # the hot pod is full whenever it is up; the others have room.
    end = run.scenario.duration
    hot_late = [s.lb_weight for s in _up(run, "hot-1") if end / 5 <= s.t <= end]
    for pod in ("cool-1", "cool-2"):
        cool_late = [s.lb_weight for s in _up(run, pod) if end / 5 <= s.t <= end]
        assert _median(hot_late) < _median(cool_late), (pod, _median(hot_late), _median(cool_late))
        assert max(hot_late) < max(cool_late), pod


def test_a_pod_whose_sidecar_says_503_is_drained_by_the_agent(run):
    drained = [s for s in run.samples if s.pod == "hot-1" and s.lb_status.startswith("DRAIN")]
    assert drained, "HAProxy never showed hot-1 DRAIN (agent)"
    # Only a 503 drains: the sidecar said 503 within an agent-inter (and a monitor period) of
    # every DRAIN HAProxy showed.
    window = run.scenario.probe.period + 2 * MONITOR_PERIOD_SECONDS
    for pod in run.pods:
        unready = [s.t for s in run.samples if s.pod == pod.name and s.sidecar == 503]
        for s in run.samples:
            if s.pod == pod.name and s.lb_status.startswith("DRAIN"):
                assert any(s.t - window <= t <= s.t + MONITOR_PERIOD_SECONDS for t in unready), (pod.name, s)


def _near(sample, loads: list, before: float, after: float) -> bool:
    """Whether a /load value read from `before` seconds before the sample to `after` after gives its weight."""
    return any(
        sample.t - before <= t <= sample.t + after and agent_weight(value) == sample.lb_weight for t, value in loads
    )


def _median(values: list[int]) -> float:
    assert values
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
