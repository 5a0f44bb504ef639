"""The queueing model behind the fake server and the simulation."""

import math
import random

import pytest

from exporter.sim.arrivals import Arrivals
from exporter.sim.model import Lengths, ModelConfig, ServerModel
from exporter.sim.profiles import ProfileError, build_profile, read_trace


def _run(model: ServerModel, rate, until: float, seed: int = 0, every: float = 1.0) -> list[dict]:
    arrivals = Arrivals(rate, random.Random(seed))
    states, t = [], 0.0
    while t < until:
        t = min(until, t + every)
        for at in arrivals.take_until(t):
            model.arrive(at)
        model.advance_to(t)
        states.append(
            {"t": t, "queue": model.queue_size, "running": model.running, "reserved": model.kv_reserved_tokens}
        )
    return states


# Stated tolerance for Little's law over four virtual hours of steady Poisson load.
LITTLE_TOLERANCE = 0.03


@pytest.mark.parametrize("load", [0.5, 0.85])
def test_littles_law_holds_under_steady_poisson_load(load):
    config = ModelConfig()
    rate = load * config.capacity()
    model = ServerModel(config, random.Random(1), keep_log=True)
    hours = 4 * 3600.0
    _run(model, lambda t: rate, hours, seed=2, every=60.0)
    arrival_rate = model.arrived / hours
    assert arrival_rate == pytest.approx(rate, rel=0.03)  # the Poisson process delivers its rate
    in_system = model.area_system / hours
    in_queue = model.area_queue / hours
    sojourn = sum(entry[3] for entry in model.log) / len(model.log)
    wait = sum(entry[1] for entry in model.log) / len(model.log)
    # L = lambda * W, for the whole server and for the waiting room alone.
    assert in_system == pytest.approx(arrival_rate * sojourn, rel=LITTLE_TOLERANCE)
    assert in_queue == pytest.approx(arrival_rate * wait, rel=LITTLE_TOLERANCE, abs=0.01)
    # Nearly everything that arrived has left; the load was sustainable.
    assert model.completed >= model.arrived - 2 * config.max_batch_size


def test_saturated_server_queue_grows_then_drains():
    config = ModelConfig()
    mu = config.capacity()
    model = ServerModel(config, random.Random(5))
    states = _run(model, lambda t: 2 * mu if t < 120 else 0.0, 600.0, seed=6)
    at = {round(s["t"]): s for s in states}
    # While overloaded the batch is full and the queue keeps growing, about (lambda - mu) per second.
    assert [at[t]["queue"] for t in (30, 60, 90, 120)] == sorted(at[t]["queue"] for t in (30, 60, 90, 120))
    assert at[120]["queue"] == pytest.approx(mu * 120 - config.max_batch_size, rel=0.35)
    assert all(at[t]["running"] == config.max_batch_size for t in (30, 60, 90, 120))
    # Then, with no arrivals, it only shrinks and empties in about queue / mu seconds.
    after = [s["queue"] for s in states if s["t"] >= 120]
    assert all(b <= a for a, b in zip(after, after[1:]))
    empty_at = next(s["t"] for s in states if s["t"] > 120 and s["queue"] == 0)
    assert (empty_at - 120) == pytest.approx(at[120]["queue"] / mu, rel=0.35)
    assert model.completed == model.arrived and model.running == 0
    # The KV cache is never over-committed.
    assert max(s["reserved"] for s in states) <= config.kv_cache_tokens


def test_kv_budget_limits_the_batch_before_the_slot_count():
    config = ModelConfig(
        max_batch_size=64,
        kv_cache_tokens=4000,
        prompt_tokens=Lengths("fixed", 900, 0, 900, 900),
        output_tokens=Lengths("fixed", 100, 0, 100, 100),
    )
    model = ServerModel(config, random.Random(0))
    _run(model, lambda t: 20.0, 30.0)
    assert model.running == 4  # 4 x 1000 tokens fill the 4000-token cache
    assert model.queue_size > 100
    assert 0.9 <= model.kv_usage <= 1.0


def test_arrivals_do_not_depend_on_how_time_is_sliced():
    rate = build_profile({"shape": "sine", "mean": 3, "amplitude": 2, "period": 50})
    whole = Arrivals(rate, random.Random(9)).take_until(300.0)
    sliced_process = Arrivals(rate, random.Random(9))
    sliced = []
    for k in range(1, 3001):
        sliced += sliced_process.take_until(k * 0.1)
    assert len(whole) == len(sliced) and all(math.isclose(a, b) for a, b in zip(whole, sliced))
    # Mean count is the integral of the rate (3/s for 6 whole periods); allow 4 sigma.
    assert abs(len(whole) - 900) < 4 * math.sqrt(900)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"shape": "wave"}, "shape 'wave' is not one of"),
        ({"shape": "constant"}, "constant profile needs 'rate'"),
        ({"shape": "constant", "rate": "fast"}, "rate must be a number, got 'fast'"),
        ({"shape": "ramp", "from": 1, "to": 2, "duration": 10, "strat": 5}, "unknown key 'strat'"),
        ({"shape": "steps", "steps": [[0, 1], [0, 2]]}, "step times must increase"),
        ({"shape": "sine", "mean": 1, "amplitude": 1, "period": 0}, "period must be > 0"),
    ],
)
def test_bad_profiles_get_clear_messages(spec, message):
    with pytest.raises(ProfileError, match=message.replace("(", r"\(")):
        build_profile(spec)


def test_profile_shapes():
    ramp = build_profile({"shape": "ramp", "from": 1, "to": 3, "start": 10, "duration": 20})
    assert [ramp(t) for t in (0, 10, 20, 30, 99)] == [1, 1, 2, 3, 3]
    spike = build_profile({"shape": "spike", "base": 1, "peak": 5, "start": 10, "duration": 20, "rise": 4})
    assert [spike(t) for t in (5, 12, 20, 28, 31)] == [1, 3, 5, 3, 1]
    steps = build_profile({"shape": "steps", "steps": [[0, 1], [5, 4]], "scale": 2})
    assert [steps(t) for t in (0, 4.9, 5, 100)] == [2, 2, 8, 8]


def test_trace_interpolates_and_reports_bad_rows(tmp_path):
    good = tmp_path / "trace.csv"
    good.write_text("time,rate\n0,1\n10,3\n")
    rate = build_profile({"shape": "trace", "file": "trace.csv"}, base_dir=tmp_path)
    assert [rate(t) for t in (-1, 0, 5, 10, 50)] == [1, 1, 2, 3, 3]
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1\n5,x\n")
    with pytest.raises(ProfileError, match=r"bad.csv:2: time and rate must be numbers, got '5,x'"):
        read_trace(bad)
