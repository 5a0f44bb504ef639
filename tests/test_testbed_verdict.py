"""How the testbed and the simulator count what a policy did, in the same terms."""

from dataclasses import replace

from exporter.rules.loader import seed_ruleset
from exporter.rules.model import RuleSet
from exporter.sim import haproxy
from exporter.sim.loadgen import TIMEOUT, Outcome
from exporter.sim.scenario import load_scenario, resolve_scenario
from exporter.sim.testbed import Policy, Sample, TestbedRun
from exporter.sim.verdict import format_side_by_side, ranking, row_from_sim, row_from_testbed


def _run(outcomes, samples):
    scenario = replace(load_scenario(resolve_scenario("testbed-busy")), duration=10.0)
    pods = [haproxy.Pod("main-1", 0, 1, 2)]
    return TestbedRun(scenario, Policy("seed", None), "round_robin", pods, outcomes, samples)


def test_testbed_row_counts_losses_latency_flips_and_time_out():
    outcomes = [Outcome(i, 0, "200", 1.0 + i, "main-1", 0.0) for i in range(5)]
    outcomes += [Outcome(5, 0, "429", 0.01, "main-1", 0.0), Outcome(6, 0, "503", 0.001, "", 0.0)]
    outcomes += [Outcome(7, 0, TIMEOUT, 60.0, "", 0.0)]
    states = ["UP", "UP 1/2", "DOWN", "DOWN", "DOWN 1/2", "UP", "UP", "DOWN", "UP", "UP"]
    samples = [Sample(float(t), "main-1", 200, status, 1) for t, status in enumerate(states)]
    row = row_from_testbed(_run(outcomes, samples))
    assert (row.requests, row.lost, row.refused, row.rejected, row.timeouts) == (8, 3, 1, 1, 1)
    assert row.lost_pct == 37.5
    assert (row.p50, row.p99) == (3.0, 4.96)  # of the five answered 200
    assert row.flips == 4  # UP 1/2 is still up and DOWN 1/2 still down
    assert row.unready_seconds == 4.0  # DOWN from t=2 to t=5 and from t=7 to t=8


def test_sim_row_counts_every_planned_request_once():
    scenario = replace(load_scenario(resolve_scenario("testbed-busy")), duration=60.0)
    for ruleset in (RuleSet(rules=()), seed_ruleset("tgi_queue_size", 15)):
        row = row_from_sim(scenario, ruleset, "x", timeout=20.0)
        ok = row.requests - row.lost
        assert row.lost == row.refused + row.rejected + row.timeouts and ok > 0
    assert row_from_sim(scenario, RuleSet(rules=()), "none", 20.0).flips == 0  # no rules: never out


def test_ranking_and_the_side_by_side_name_the_same_order():
    scenario = load_scenario(resolve_scenario("testbed-busy"))
    a = row_from_sim(replace(scenario, duration=30.0), RuleSet(rules=()), "none", 30.0)
    b = replace(a, policy="seed", lost=a.lost + 10, p95=a.p95 / 2)
    assert ranking([a, b], "lost") == "none < seed"
    assert ranking([a, b], "p95") == "seed < none"
    assert ranking([a, replace(b, lost=a.lost)], "lost") == "none = seed"
    text = format_side_by_side([a, b], [a, b], "t")
    assert "ranking by lost %: testbed none < seed, sim none < seed" in text


def test_phase_draws_change_only_when_pods_tick_not_the_requests():
    from exporter.sim.verdict import format_spread, phase_spread

    scenario = replace(load_scenario(resolve_scenario("testbed-busy")), duration=60.0)
    seed = seed_ruleset("tgi_queue_size", 15)
    default = row_from_sim(scenario, seed, "seed", 60.0)
    assert row_from_sim(scenario, seed, "seed", 60.0, phase_draw=None) == default  # repeatable
    draws = phase_spread(scenario, seed, "seed", 60.0, 4)
    assert {r.requests for r in draws} == {default.requests}  # the very same requests
    assert len({(r.flips, r.unready_seconds, r.p95) for r in [default, *draws]}) > 1  # other ticks, other luck
    text = format_spread([draws], [[default]], "t")
    assert text.splitlines()[2].startswith("seed ")


def test_a_median_row_takes_each_figure_median_over_runs():
    from exporter.sim.verdict import format_spread, median_row

    scenario = replace(load_scenario(resolve_scenario("testbed-busy")), duration=30.0)
    a = row_from_sim(scenario, RuleSet(rules=()), "seed", 30.0)
    runs = [
        replace(a, lost=lost, p95=p95, flips=flips, run=k + 1)
        for k, (lost, p95, flips) in enumerate([(10, 20.0, 90), (14, 19.0, 101), (12, 21.5, 95)])
    ]
    m = median_row(runs)
    assert (m.lost, m.p95, m.flips, m.requests, m.run) == (12, 20.0, 95, a.requests, 0)
    # the spread table shows the testbed's min / median / max when there are several runs
    text = format_spread([runs], [runs], "t")
    assert text.splitlines()[2].count("/") == 8


def test_each_testbed_run_draws_other_sidecar_start_delays():
    from exporter.sim.testbed import Policy, start_delays

    scenario = load_scenario(resolve_scenario("testbed-busy"))
    seed = seed_ruleset("tgi_queue_size", 15)
    policy = Policy("seed", scenario.rules)
    first, again, second = (start_delays(scenario, policy, seed, k) for k in (0, 0, 1))
    assert first == again  # a run index is one draw
    assert first != second
    assert len(first) == scenario.replicas and all(0 <= d < 1.0 for d in first + second)  # within one interval
    assert start_delays(scenario, Policy("none", None), None, 0) == []  # no sidecars
