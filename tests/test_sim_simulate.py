"""The capacity simulation: scenarios, gateway, probes, the real rule engine, outputs."""

import csv
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from exporter.config.errors import ConfigError
from exporter.rules.loader import load_rules, seed_ruleset
from exporter.sim.cluster import simulate
from exporter.sim.gateway import Gateway
from exporter.sim.probe import ReadinessProbe
from exporter.sim.report import summarize
from exporter.sim.scenario import ProbeSpec, load_scenario, resolve_scenario

ROOT = Path(__file__).resolve().parent.parent

# A queue rule with a recover band and durations, the shape of the shipped TGI pack.
HYSTERESIS_RULES = """\
rules:
  - name: queue_saturated
    expr: sum(tgi_queue_size)
    above: 15
    recover_below: 8
    for: 10s
    keep_firing_for: 30s
"""


def _run(scenario, ruleset, label=""):
    return summarize(simulate(scenario, ruleset, label))


def _rule_sets(tmp_path):
    path = tmp_path / "hysteresis.yaml"
    path.write_text(HYSTERESIS_RULES)
    # The shipped packs are judged on outcomes (lost requests, waits) by the panel test, not on flips.
    return [("recover band + for + keep_firing_for", load_rules([str(path)]))]


def test_hovering_pod_flaps_less_with_hysteresis_than_with_a_single_threshold(tmp_path):
    scenario = load_scenario(resolve_scenario("hovering"))
    assert scenario.seed == 11 and scenario.duration == 3600
    single = _run(scenario, seed_ruleset("tgi_queue_size", 15))
    # The single threshold does flap here: that is what the scenario is for.
    assert single.flips >= 20
    for label, ruleset in _rule_sets(tmp_path):
        banded = _run(scenario, ruleset)
        assert banded.arrivals == single.arrivals  # the very same seeded requests
        assert banded.flips <= 0.75 * single.flips, (label, banded.flips, single.flips)


def test_requests_are_conserved_and_spill_when_a_region_has_no_ready_pod():
    scenario = load_scenario(resolve_scenario("spillover"))
    scenario = replace(scenario, duration=1800.0)
    result = simulate(scenario, seed_ruleset("tgi_queue_size", 15))
    summary = summarize(result)
    served = sum(pod.model.accepted_total for pod in result.pods)
    assert summary.arrivals == served + summary.rejected + summary.refused
    assert sum(sum(r.served) for r in result.regions) == served
    # The spike in us-east drains its pods and pushes traffic into the other regions.
    east, west, europe = result.regions
    assert sum(east.spilled) > 100
    assert sum(europe.spilled) <= sum(east.spilled)
    assert max(p.flips for p in summary.pods if p.region == "us-east") > 0
    # Outside the spike (first 15 minutes) nothing spills and every pod stays ready.
    quiet = 15 * 60
    assert sum(east.spilled[:quiet]) + sum(west.spilled[:quiet]) + sum(europe.spilled[:quiet]) == 0
    assert all(all(p.ready[:quiet]) for p in result.pods)


def test_same_seed_same_run_other_seed_other_run():
    scenario = replace(load_scenario(resolve_scenario("slow-ramp")), duration=900.0)
    rules = seed_ruleset("vllm:num_requests_waiting", 15)
    a, b = _run(scenario, rules), _run(scenario, rules)
    c = _run(replace(scenario, seed=4), rules)
    assert (a.arrivals, a.flips, a.wait) == (b.arrivals, b.flips, b.wait)
    assert a.arrivals != c.arrivals


class _Pod:
    def __init__(self, name, in_system=0):
        self.name = name
        self.model = type("M", (), {"in_system": in_system})()


def test_gateway_prefers_local_then_spill_order_then_rejects():
    import random

    east, west, eu = [_Pod("e1"), _Pod("e2")], [_Pod("w1")], [_Pod("u1")]
    gw = Gateway([east, west, eu], [[2, 1], [0, 2], [0, 1]], "round_robin", "reject", random.Random(0))
    assert [gw.route(0)[0].name for _ in range(4)] == ["e1", "e2", "e1", "e2"]
    gw.update(0, [])
    assert gw.route(0) == (eu[0], 2)  # spill order says europe before us-west
    gw.update(2, [])
    assert gw.route(0) == (west[0], 1)
    gw.update(1, [])
    assert gw.route(0) == (None, -1)
    fail_open = Gateway([east, west, eu], [[1, 2], [0, 2], [0, 1]], "round_robin", "any", random.Random(0))
    for r in range(3):
        fail_open.update(r, [])
    assert fail_open.route(0)[1] == 0


def test_proportional_gateway_moves_the_lost_share_away():
    import random

    east = [_Pod(f"e{i}") for i in range(10)]
    west = [_Pod(f"w{i}") for i in range(10)]
    gw = Gateway([east, west], [[1], [0]], "random", "reject", random.Random(1), "proportional", 1.4)
    gw.update(0, east[:5])  # half healthy: keeps min(1, 0.5 * 1.4) = 70 %
    local = sum(gw.route(0)[1] == 0 for _ in range(20_000)) / 20_000
    assert local == pytest.approx(0.7, abs=0.02)
    gw.update(0, east[:8])  # 0.8 * 1.4 >= 1: everything stays home
    assert all(gw.route(0)[1] == 0 for _ in range(1000))


def test_probe_follows_kubelet_thresholds():
    probe = ReadinessProbe(ProbeSpec(period=10, timeout=1, failure_threshold=3, success_threshold=2), phase=5)
    probe.ready = True
    assert not probe.due(4) and probe.due(5)
    changes = [
        probe.observe(t, healthy, 0.002)
        for t, healthy in [(5, False), (15, False), (25, True), (35, False), (45, False), (55, False)]
    ]
    assert changes == [False, False, False, False, False, True] and not probe.ready
    # Back to ready only after two successes in a row; a slow answer counts as a failure.
    assert [
        probe.observe(t, ok, lat) for t, ok, lat in [(65, True, 0.1), (75, True, 2.0), (85, True, 0.1), (95, True, 0.1)]
    ] == [False, False, False, True]
    assert probe.ready and probe.flips == 2


def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "exporter", "simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_simulate_writes_csv_png_and_summary(tmp_path):
    from matplotlib import image

    proc = _cli("spillover", "--out", str(tmp_path), "--duration", "10m", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "readiness flips (all pods)" in proc.stdout
    assert "queue wait p50 / p95 / p99" in proc.stdout
    rows = list(csv.DictReader((tmp_path / "spillover.csv").open()))
    assert len(rows) == 600 and rows[-1]["time"] == "600"
    assert {"us-east_spilled", "us-east-1_queue", "europe-8_ready", "wait_p95_seconds"} <= set(rows[0])
    png = tmp_path / "spillover.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(str(png))
    assert pixels.shape[0] >= 600 and pixels.shape[1] >= 800
    assert pixels.std() > 0.05  # an actual picture, not a blank canvas


def test_compare_prints_both_rule_sets_side_by_side(tmp_path):
    rules = tmp_path / "banded.yaml"
    rules.write_text(HYSTERESIS_RULES)
    proc = _cli(
        "hovering",
        "--out",
        str(tmp_path),
        "--duration",
        "15m",
        "--no-plot",
        "--compare",
        "seed:tgi_queue_size:15",
        str(rules),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "sum(tgi_queue_size) > 15" in lines[2] and "banded.yaml" in lines[2]
    assert any(line.startswith("readiness flips (all pods)") for line in lines)
    assert (tmp_path / "hovering-a.csv").exists() and (tmp_path / "hovering-b.csv").exists()


def test_scenario_problems_are_listed_with_positions(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "duration: 1h\n"
        "probe: {periodSeconds: 10, failureTreshold: 3}\n"
        "gateway: {balance: fastest}\n"
        "regions:\n"
        "  - name: a\n"
        "    replicas: two\n"
        "    load: {shape: constant}\n"
        "  - name: a\n"
        "    load: {shape: constant, rate: 1}\n"
        "    spill_to: [mars]\n"
    )
    with pytest.raises(ConfigError) as err:
        load_scenario(bad)
    lines = [str(p) for p in err.value.problems]
    assert lines == [
        f'{bad}:2:28: probe: unknown key "failureTreshold"; did you mean failureThreshold?',
        f'{bad}:3:20: gateway.balance: must be one of round_robin, random, least_request, utilization, got "fastest"',
        f"{bad}:5:11: regions[0].name: region name 'a' is used more than once",
        f'{bad}:6:15: regions[0].replicas: must be a whole number >= 1, got "two"',
        f"{bad}:7:11: regions[0].load: constant profile needs 'rate'",
        f"{bad}:8:11: regions[1].name: region name 'a' is used more than once",
        f"{bad}:10:16: regions[1].spill_to[0]: 'mars' is not another region of this scenario",
    ]
    proc = _cli(str(bad), "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"llm-healthcheck: {line}" for line in lines]
    assert "Traceback" not in proc.stderr


def test_unknown_scenario_name_lists_the_shipped_ones(tmp_path):
    proc = _cli("no-such-scenario", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "diurnal, flash-crowd, hovering, sick-tgi, sick-vllm, slow-ramp, spillover" in proc.stderr


def test_plot_gets_the_recover_band_of_the_queue_rules():
    """The PNG draws each unready queue rule's trip threshold and, where it has one, its band."""
    from exporter.commands.simulate import _queue_thresholds

    scenario = load_scenario(resolve_scenario("spillover"))
    assert _queue_thresholds(scenario, load_rules([str(ROOT / "rules" / "tgi.yaml")])) == [(15.0, 12.0)]
    assert _queue_thresholds(scenario, seed_ruleset("tgi_queue_size", 15)) == [(15.0, None)]


def test_plot_shades_the_recover_band(tmp_path, monkeypatch):
    """The PNG draws the trip threshold and, below it, the band down to recover_below."""
    from matplotlib.axes import Axes

    from exporter.sim.plot import plot_run

    spans, lines = [], []
    real_span, real_line = Axes.axhspan, Axes.axhline
    monkeypatch.setattr(
        Axes, "axhspan", lambda self, lo, hi, **kw: spans.append((lo, hi)) or real_span(self, lo, hi, **kw)
    )
    monkeypatch.setattr(Axes, "axhline", lambda self, y=0, **kw: lines.append(y) or real_line(self, y, **kw))
    scenario = replace(load_scenario(resolve_scenario("spillover")), duration=120.0)
    result = simulate(scenario, load_rules([str(ROOT / "rules" / "tgi.yaml")]))
    plot_run(result, tmp_path / "band.png", [(15.0, 5.0)])
    assert spans == [(5.0, 15.0)]
    assert 15.0 in lines and 5.0 in lines
    assert (tmp_path / "band.png").read_bytes()[:4] == b"\x89PNG"
