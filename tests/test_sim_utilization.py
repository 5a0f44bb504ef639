"""The simulator's utilization balancer (GKE's waterfall by region) and power of two choices,
against numbers worked out by hand."""

import random
from types import SimpleNamespace

import pytest

from exporter.config.errors import ConfigError
from exporter.sim.scenario import load_scenario
from exporter.sim.utilization import UtilizationBalancer, headroom, per_pod_capacity, two_choices, waterfall

ORDERS = [[0, 1, 2], [1, 0, 2], [2, 0, 1]]  # each region first, then its spill order


def test_waterfall_fills_the_local_region_then_spills_down_the_order():
    # A wants 30 req/s and holds 20 at the target; B wants 10 of its 15; C wants 5 of its 40.
    # Local first: A 20, B 10, C 5. A's 10 left over go to B (5 left there), then C (5 more).
    flows = waterfall([30.0, 10.0, 5.0], [20.0, 15.0, 40.0], ORDERS)
    assert flows == [[20.0, 5.0, 5.0], [0.0, 10.0, 0.0], [0.0, 0.0, 5.0]]


def test_waterfall_under_the_target_keeps_everything_home():
    assert waterfall([10.0, 5.0, 1.0], [20.0, 15.0, 40.0], ORDERS) == [
        [10.0, 0.0, 0.0],
        [0.0, 5.0, 0.0],
        [0.0, 0.0, 1.0],
    ]


def test_waterfall_over_the_target_everywhere_spreads_by_capacity():
    # A 30 of 20, B 20 of 10, C 0 of 10. Local: A 20, B 10. A's 10: B has 0 left, C takes 10.
    # B's 10 fit nowhere: spread 20:10:10 over A, B, C -> 5, 2.5, 2.5.
    flows = waterfall([30.0, 20.0, 0.0], [20.0, 10.0, 10.0], ORDERS)
    assert flows == [[20.0, 0.0, 10.0], [5.0, 12.5, 2.5], [0.0, 0.0, 0.0]]


def test_capacity_at_the_target_is_inferred_from_rate_and_utilization():
    # Two pods took 2 req/s each at utilization 0.4: at 0.8 each takes 4.
    assert per_pod_capacity([2.0, 2.0], [0.4, 0.4], 0.8) == pytest.approx(4.0)
    # A full pod that got nothing still counts: 4 req/s over utilizations 1.0 + 0.6 at 0.8 -> 2 each.
    assert per_pod_capacity([0.0, 4.0], [1.0, 0.6], 0.8) == pytest.approx(2.0)
    assert per_pod_capacity([0.0, 0.0], [0.0, 0.0], 0.8) is None  # nothing known yet
    assert per_pod_capacity([0.0, 0.0], [0.9, 0.9], 0.8) is None  # sent nothing: says nothing


def test_headroom_is_one_minus_the_score_less_what_was_sent_since():
    assert headroom([0.2, 0.6, 1.0], [0, 0, 0], 0.05) == pytest.approx([0.8, 0.4, 0.0])
    assert headroom([0.2, 0.6], [10, 2], 0.05) == pytest.approx([0.3, 0.3])


def _pods(n, region):
    return [SimpleNamespace(name=f"r{region}-{k}", model=SimpleNamespace(in_system=0)) for k in range(n)]


def test_balancer_spills_exactly_the_excess_and_shares_follow_headroom():
    """Region 0's two pods took 10 req/s and report full (1.0): at max_utilization 0.8 they hold
    10 * 0.8 / 2 = 4 req/s each, 8 in all. Region 1 reported nothing yet and borrows that
    figure. So of region 0's 10 req/s, 8 stay and 2 spill: shares 0.8 / 0.2."""
    east, west = _pods(2, 0), _pods(2, 1)
    balancer = UtilizationBalancer([east, west], [[0, 1], [1, 0]], 0.8, 10.0, random.Random(5))
    balancer.refresh(0.0, lambda pod: 0.0)
    for _ in range(100):  # 10 req/s for one 10 s period, all kept home while nothing is known
        assert balancer.route(0)[1] == 0
    load = {id(p): 1.0 for p in east}
    balancer.refresh(10.0, lambda pod: load.get(id(pod), 0.0))
    regions = [balancer.route(0)[1] for _ in range(100)]
    assert regions.count(1) == pytest.approx(20, abs=8)

    # Within a region, shares follow headroom: a pod reporting 0.2 gets twice one at 0.6.
    load = {id(west[0]): 0.2, id(west[1]): 0.6}
    balancer = UtilizationBalancer([west], [[0]], 0.8, 10.0, random.Random(7))
    balancer.refresh(0.0, lambda pod: load[id(pod)])
    picks = [balancer.route(0)[0] for _ in range(3000)]
    assert picks.count(west[0]) / len(picks) == pytest.approx(2 / 3, abs=0.03)


def test_an_unready_region_is_skipped_and_none_ready_anywhere_is_rejected():
    east, west = _pods(1, 0), _pods(1, 1)
    balancer = UtilizationBalancer([east, west], [[0, 1], [1, 0]], 0.8, 5.0, random.Random(1))
    balancer.refresh(0.0, lambda pod: 0.0)
    balancer.update(0, [])
    assert balancer.route(0) == (west[0], 1)
    balancer.update(1, [])
    assert balancer.route(0) == (None, -1)


def test_least_request_is_power_of_two_choices():
    pods = [SimpleNamespace(model=SimpleNamespace(in_system=n)) for n in (0, 5, 10)]
    rng = random.Random(3)
    picks = [two_choices(pods, rng) for _ in range(3000)]
    assert pods[2] not in picks  # the busiest of any pair never wins
    # The idlest wins whenever it is drawn: 2 of the 3 pairs.
    assert picks.count(pods[0]) / len(picks) == pytest.approx(2 / 3, abs=0.03)


def test_scenario_gateway_takes_the_utilization_keys(tmp_path):
    base = "regions:\n  - {name: a, replicas: 1, load: {shape: constant, rate: 1}}\n"
    path = tmp_path / "s.yaml"
    path.write_text("gateway: {balance: utilization, max_utilization: 0.7, refresh: 3s}\n" + base)
    scenario = load_scenario(path)
    assert (scenario.balance, scenario.max_utilization, scenario.refresh) == ("utilization", 0.7, 3.0)
    path.write_text("gateway: {balance: utilization, max_utilization: 1.5, refresh: soon}\n" + base)
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    text = str(err.value)
    assert f"{path}:1:50: gateway.max_utilization: must be a number > 0 and <= 1, got 1.5" in text
    assert f"{path}:1:64: gateway.refresh:" in text


def test_with_no_headroom_anywhere_the_balancer_falls_back_to_two_choices():
    busy, idle = (SimpleNamespace(model=SimpleNamespace(in_system=n)) for n in (40, 3))
    balancer = UtilizationBalancer([[busy, idle]], [[0]], 0.8, 5.0, random.Random(2))
    balancer.refresh(0.0, lambda pod: 1.0)  # both report full: the score cannot tell them apart
    assert {balancer.route(0)[0] is idle for _ in range(50)} == {True}
