"""Sick pods: faults change the server model, and the engines' pages show it as a real server would."""

import random
import textwrap

import pytest

from exporter.config.errors import ConfigError
from exporter.sim.arrivals import Arrivals
from exporter.sim.faults import FaultSchedule, FaultSpec
from exporter.sim.model import ModelConfig, ServerModel
from exporter.sim.pages import build_engine
from exporter.sim.scenario import load_scenario


def _value(engine, model, name):
    return sum(v for labels, v in engine.samples(model) if dict(labels)["__name__"] == name)


def _drive(model, schedule, until, rate=1.5, start=0.0, seed=3):
    arrivals = Arrivals(lambda t: rate, random.Random(seed), start=start)
    t = start
    while t < until:
        t += 1.0
        for at in arrivals.take_until(t):
            model.arrive(at)
        schedule.apply(t)
        model.advance_to(t)


def _pod(engine_name="tgi"):
    config = ModelConfig()
    engine = build_engine(engine_name, config)
    model = ServerModel(config, random.Random(1), engine.wanted_quantities(None))
    return engine, model


def test_a_stalled_server_accepts_work_but_its_forward_pass_counter_stops():
    engine, model = _pod("tgi")
    schedule = FaultSchedule([FaultSpec("r", 1, 60.0, 120.0, "stall", 1.0)], {"r-1": model})
    _drive(model, schedule, 60)
    passes_before = _value(engine, model, "tgi_batch_inference_count")
    _drive(model, schedule, 150, start=60)
    assert _value(engine, model, "tgi_batch_inference_count") == passes_before  # no forward pass for 90 s
    assert _value(engine, model, "tgi_queue_size") > 50  # requests keep arriving and queue
    _drive(model, schedule, 400, start=150)  # the stall ends at 180 s
    assert _value(engine, model, "tgi_batch_inference_count") > passes_before
    assert model.queue_size < 20


def test_a_slow_server_takes_longer_per_decode_step_and_per_token():
    engine, model = _pod("vllm")
    healthy = model.step_seconds
    FaultSchedule([FaultSpec("r", 1, 0.0, 60.0, "slow", 0.25)], {"r-1": model}).apply(0.0)
    assert model.step_seconds == pytest.approx(healthy / 0.25)


def test_a_crashed_server_refuses_requests_and_scrapes_then_restarts_with_fresh_counters():
    engine, model = _pod("tgi")
    schedule = FaultSchedule([FaultSpec("r", 1, 60.0, 30.0, "crash", 1.0)], {"r-1": model})
    _drive(model, schedule, 59, rate=4.0)
    in_server = model.in_system
    assert in_server > 0 and engine.samples(model)
    _drive(model, schedule, 61, rate=4.0, start=59)
    assert schedule.lost_in_crashes == pytest.approx(in_server, abs=8)  # what was inside is gone
    assert engine.samples(model) is None  # /metrics refuses: a failed scrape, not an empty page
    assert model.arrive(61.5) is None and model.unreachable > schedule.lost_in_crashes
    schedule.apply(90.0)  # restarted: TGI prints nothing until its first request, like a fresh process
    assert engine.samples(model) == []
    model.arrive(91.0)
    assert _value(engine, model, "tgi_request_count") == 1


def test_a_kv_leak_fills_the_cache_without_load_and_is_freed_at_the_end():
    engine, model = _pod("vllm")
    schedule = FaultSchedule([FaultSpec("r", 1, 0.0, 600.0, "kv_leak", 0.1)], {"r-1": model})
    for t in (0.0, 300.0):
        schedule.apply(t)
        model.advance_to(t)
    assert _value(engine, model, "vllm:kv_cache_usage_perc") == pytest.approx(0.5, abs=0.01)  # 10 % a minute
    assert _value(engine, model, "vllm:num_requests_running") == 0
    schedule.apply(600.0)
    assert _value(engine, model, "vllm:kv_cache_usage_perc") == 0


def test_fault_mistakes_are_reported_with_their_position(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            regions:
              - {name: east, replicas: 2, load: {shape: constant, rate: 1}}
            faults:
              - {region: west, pod: 1, at: 1m, for: 1m, kind: stall}
              - {region: east, pod: 3, at: 1m, for: 1m, kind: stall}
              - {region: east, pod: 1, at: 1m, for: 1m, kind: melt}
              - {region: east, pod: 1, at: 1m, kind: slow, factor: 2}
            """
        )
    )
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    lines = [str(p) for p in err.value.problems]
    assert any(":4:" in line and "'west' is not a region" in line for line in lines), lines
    assert any(":5:" in line and "region east has 2 pods, got 3" in line for line in lines), lines
    assert any(":6:" in line and "must be one of slow, stall, crash, kv_leak" in line for line in lines), lines
    assert any(":7:" in line and "needs for:" in line for line in lines), lines
    assert any(":7:" in line and "must be below 1" in line for line in lines), lines
