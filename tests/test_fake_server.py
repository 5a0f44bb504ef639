"""The fake inference server: a real subprocess on loopback, scraped over real HTTP."""

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.sim.profiles import named_profile
from exporter.sim.server import SimulatedServer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/fixtures")


class FakeServer:
    """`python -m exporter fake-server ...` on a free port, stopped with SIGTERM."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "fake-server", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        line = _read_line(self.proc.stderr, timeout=20)
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        if not match:
            self.proc.kill()
            raise AssertionError(f"no startup line, got {line!r}")
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def get(self, path: str) -> tuple[int, str, str]:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()

    def stop(self) -> int:
        """SIGTERM, then the exit code; what it printed after startup lands in self.output."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        self.output = out + err
        return self.proc.returncode


def _read_line(stream, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return ""
        return stream.readline()
    finally:
        sel.close()


@pytest.fixture
def tgi():
    server = FakeServer("--engine", "tgi", "--rate", "3")
    yield server
    server.stop()


def _families(text: str) -> dict:
    return {fam.name: fam for fam in text_string_to_metric_families(text)}


def _bounds(samples, name: str) -> list[str]:
    return [s.labels["le"] for s in samples if s.name == name]


def test_tgi_page_parses_and_matches_the_real_capture(tgi):
    status, content_type, body = tgi.get("/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    # After a request or two the model has traffic, so TGI's lazily created series exist.
    for _ in range(50):
        if "tgi_queue_size" in body:
            break
        body = tgi.get("/metrics")[2]
    ours = _families(body)
    real = _families((FIXTURES / "tgi-datadog-integrations-core-3.3.5.prom").read_text())
    for name in (
        "tgi_queue_size",
        "tgi_batch_current_size",
        "tgi_request_count",
        "tgi_request_success",
        "tgi_request_duration",
        "tgi_request_queue_duration",
        "tgi_batch_next_size",
    ):
        assert name in ours, name
        assert ours[name].type == real[name].type, name
    # Counters without `_total`, exactly as TGI prints them.
    assert "tgi_request_count 0" not in body and re.search(r"^tgi_request_count \d+$", body, re.M)
    # Same 35 geometric duration buckets, printed digit for digit like the capture.
    assert _bounds(ours["tgi_request_duration"].samples, "tgi_request_duration_bucket") == _bounds(
        real["tgi_request_duration"].samples, "tgi_request_duration_bucket"
    )
    assert len(_bounds(ours["tgi_batch_next_size"].samples, "tgi_batch_next_size_bucket")) == 1025


@pytest.mark.parametrize(
    ("engine", "capture", "waiting", "labels"),
    [
        (
            "vllm",
            "vllm-datadog-integrations-core-v0-plus-v1-handmerged.prom",
            "vllm:num_requests_waiting",
            {"model_name", "engine"},
        ),
        ("sglang", "sglang-docs-production-metrics.prom", "sglang:num_queue_reqs", {"model_name"}),
    ],
)
def test_python_engines_look_like_their_captures(engine, capture, waiting, labels):
    server = FakeServer("--engine", engine, "--rate", "2", "--model-name", 'org/model "x"')
    try:
        body = server.get("/metrics")[2]
    finally:
        assert server.stop() == 0
    ours = _families(body)
    real = _families((FIXTURES / capture).read_text())
    shared = set(ours) & set(real)
    assert waiting in shared
    assert len(shared) >= 8, sorted(shared)
    for name in shared:
        assert ours[name].type == real[name].type, name
    sample = ours[waiting].samples[0]
    assert set(sample.labels) == labels
    assert sample.labels["model_name"] == 'org/model "x"'  # escaped on the wire, intact after parsing
    ttft = f"{engine}:time_to_first_token_seconds"
    real_bounds = [float(b) for b in _bounds(real[ttft].samples, ttft + "_bucket")]
    our_bounds = [float(b) for b in _bounds(ours[ttft].samples, ttft + "_bucket")]
    # The capture's buckets are where ours start (newer releases appended longer ones).
    assert our_bounds[: len(real_bounds) - 1] == real_bounds[:-1]


@pytest.mark.parametrize(
    ("engine", "done", "hists"),
    [
        (
            "tgi",
            "tgi_request_success",
            ["tgi_request_duration", "tgi_request_generated_tokens", "tgi_request_queue_duration"],
        ),
        (
            "vllm",
            "vllm:request_success",
            ["vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds", "vllm:request_generation_tokens"],
        ),
        ("sglang", None, ["sglang:e2e_request_latency_seconds"]),
    ],
)
def test_histograms_and_counters_agree_with_each_other(engine, done, hists):
    clock = FakeClock()
    sim = SimulatedServer(engine, lambda t: 3.0, seed=3, clock=clock)
    clock.now += 120
    fams = _families(sim.metrics_page().decode())
    state = sim.state()
    finished = state["completed"]
    assert finished > 100
    if done:
        assert sum(s.value for s in fams[done].samples) == finished
    for name in hists:
        samples = fams[name].samples
        buckets = [s.value for s in samples if s.name == name + "_bucket"]
        count = next(s.value for s in samples if s.name == name + "_count")
        assert buckets == sorted(buckets), name
        # Queue time is known when a request leaves the queue; the rest when it finishes.
        expected = finished + state["running"] if "queue" in name else finished
        assert buckets[-1] == count == expected, name
    gauges = {
        "tgi": ("tgi_queue_size", "tgi_batch_current_size"),
        "vllm": ("vllm:num_requests_waiting", "vllm:num_requests_running"),
        "sglang": ("sglang:num_queue_reqs", "sglang:num_running_reqs"),
    }[engine]
    assert [fams[g].samples[0].value for g in gauges] == [state["queue"], state["running"]]
    assert state["arrived"] == finished + state["queue"] + state["running"]


def test_full_tgi_refuses_requests_and_counts_them_as_overloaded():
    from exporter.sim.model import ModelConfig

    clock = FakeClock()
    sim = SimulatedServer("tgi", lambda t: 10.0, ModelConfig(max_concurrent_requests=40), seed=2, clock=clock)
    clock.now += 2
    assert "tgi_request_failure" not in sim.metrics_page().decode()  # created on first use, as TGI does
    clock.now += 58
    fams = _families(sim.metrics_page().decode())
    state = sim.state()
    assert state["refused"] > 100
    assert 30 <= state["queue"] + state["running"] <= 40
    failure = fams["tgi_request_failure"].samples[0]
    assert failure.labels == {"err": "overloaded"} and failure.value == state["refused"]
    assert fams["tgi_request_count"].samples[0].value == state["arrived"] + state["refused"]


def test_concurrent_scrapes_all_answer_whole_pages(tgi):
    errors, sizes = [], []

    def scrape():
        try:
            for _ in range(5):
                status, _, body = tgi.get("/metrics")
                assert status == 200
                sizes.append(len(_families(body)) if body else 0)
        except Exception as err:  # reported below with the others
            errors.append(err)

    threads = [threading.Thread(target=scrape) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(sizes) == 40


def test_state_is_json_and_follows_the_page(tgi):
    status, content_type, body = tgi.get("/state")
    assert status == 200 and content_type == "application/json"
    state = json.loads(body)
    assert {"time", "queue", "running", "kv_usage", "rate"} <= set(state)
    assert state["engine"] == "tgi" and state["rate"] == 3.0
    later = json.loads(tgi.get("/state")[2])
    assert later["time"] >= state["time"]
    assert later["arrived"] >= state["arrived"]


def test_unknown_path_is_404(tgi):
    with pytest.raises(urllib.error.HTTPError) as err:
        tgi.get("/nope")
    assert err.value.code == 404


def test_sigterm_exits_zero_and_prints_nothing_per_request():
    server = FakeServer("--profile", "demo")
    for _ in range(5):
        server.get("/metrics")
        server.get("/state")
    assert server.stop() == 0
    assert server.output == ""


def test_bad_trace_file_is_one_clear_line(tmp_path):
    trace = tmp_path / "load.csv"
    trace.write_text("time,rate\n0,1\n10,-2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "fake-server", "--port", "0", "--rate-csv", str(trace)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"llm-healthcheck fake-server: {trace}:3: rate must be a finite number >= 0, got '-2'"
    ]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _queue_by_second(scrape_every: float, seconds: int = 60) -> dict[int, int]:
    clock = FakeClock()
    rate, seed = named_profile("demo")
    sim = SimulatedServer("tgi", rate, seed=seed, clock=clock)
    queues, start, k = {}, clock.now, 0
    while k * scrape_every <= seconds:
        clock.now = start + k * scrape_every
        state = sim.state()
        if abs(state["time"] - round(state["time"])) < 1e-6:
            queues[round(state["time"])] = state["queue"]
        k += 1
    return queues


def test_demo_profile_crosses_the_default_threshold_once_each_way():
    queues = _queue_by_second(1.0)
    above = [t for t, q in sorted(queues.items()) if q > 15]
    assert above, queues
    # One contiguous stretch above 15: starts after a quiet start, ends well before 60 s.
    assert above == list(range(above[0], above[-1] + 1))
    assert 10 <= above[0] <= 25 and above[-1] <= 45
    assert max(queues.values()) >= 25
    assert queues[0] == 0 and queues[60] < 5


def test_model_path_does_not_depend_on_scrape_timing():
    every_second = _queue_by_second(1.0)
    every_quarter = _queue_by_second(0.25)
    assert every_second == {t: every_quarter[t] for t in every_second}


# Names the shipped packs read only as a fallback for older servers than the ones modelled.
OLDER_SERVER_FALLBACKS = {"vllm:gpu_cache_usage_perc"}


@pytest.mark.parametrize("engine", ["tgi", "vllm", "sglang"])
def test_fake_server_prints_what_the_shipped_rule_pack_reads(engine):
    from exporter.rules.loader import load_rules
    from exporter.sim.model import ModelConfig
    from exporter.sim.pages import build_engine

    pack = ROOT / "rules" / f"{engine}.yaml"
    printed = set().union(*(fam.sample_names for fam in build_engine(engine, ModelConfig()).families))
    wanted = set().union(*((rule.expr.metric_names or set()) for rule in load_rules([str(pack)]).rules))
    # fleet:<name> series are the fleet view's answers, never on a server's page.
    from_page = {name for name in wanted if not name.startswith("fleet:")}
    assert from_page - printed - OLDER_SERVER_FALLBACKS == set()
