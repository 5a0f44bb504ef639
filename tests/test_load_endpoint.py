"""/load on a real sidecar (gunicorn on loopback) in front of the fake TGI, vLLM and SGLang
servers over real HTTP: exactly one unlabeled sample that follows the server's queue and KV
usage, 1 when the upstream is down, the same value on /metrics, and promtool finds nothing."""

import json
import socket
import subprocess
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.sim.profiles import RateFn
from exporter.sim.server import FakeServerHTTP, SimulatedServer
from tests.support import FAST, REPO, require_tool


class ModelClock:
    """The fake server's model time: it moves only when the test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ClosableServer(FakeServerHTTP):
    """Remembers its connections so that stopping it drops the sidecar's keep-alive one too:
    an upstream that is down answers nothing, not even on a connection made before."""

    def process_request(self, request, client_address):
        self.connections = [*getattr(self, "connections", []), request]
        super().process_request(request, client_address)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        for conn in getattr(self, "connections", []):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeInferenceServer:
    """exporter.sim's simulated server on a loopback port, its load set by the test."""

    def __init__(self, engine: str):
        self.clock = ModelClock()
        self.rate = 0.0
        self.stopped = False
        rate: RateFn = lambda t: self.rate
        self.sim = SimulatedServer(engine, rate, seed=4, clock=self.clock)
        self.http = ClosableServer(("127.0.0.1", 0), self.sim)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/metrics"
        self._thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def run(self, rate: float, seconds: float) -> dict:
        """Arrivals at `rate` per second for `seconds` of model time; the state the pages now show."""
        self.rate = rate
        self.clock.now += seconds
        return self.sim.state()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.http.stop()


# The packs' rooflines, written out by hand from rules/*.yaml's params (the sidecar evaluates
# the PromQL; this is the same arithmetic done independently on the fake server's state).
def expected_load(engine: str, state: dict) -> float:
    queue, running, kv = state["queue"], state["running"], state["kv_usage"]
    if engine == "tgi":
        terms = [queue / 5, running / 16]
    elif engine == "vllm":
        terms = [queue / 5, kv / 0.8, running / 256]
    else:
        terms = [queue / 5, round(kv, 2) / 0.8]  # SGLang prints token_usage to two places
    return min(1.0, max(terms))


def only_sample(text: str):
    families = list(text_string_to_metric_families(text))
    assert len(families) == 1, text
    (sample,) = families[0].samples
    return families[0], sample


def load_value(sidecar) -> float:
    status, text, headers = sidecar.get("/load")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    family, sample = only_sample(text)
    assert (family.name, family.type, sample.name, sample.labels) == (
        "llm_healthcheck_load",
        "gauge",
        "llm_healthcheck_load",
        {},
    )
    assert 0.0 <= sample.value <= 1.0
    return sample.value


def metrics_load(sidecar) -> float:
    text = sidecar.get("/metrics")[1]
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "llm_healthcheck_load"]
    (sample,) = family.samples
    assert sample.labels == {}
    return sample.value


def promtool_says(text: str) -> tuple:
    promtool = require_tool("promtool", "apt-get install prometheus")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("engine", ["tgi", "vllm", "sglang"])
def test_load_follows_the_fake_server_and_is_full_when_it_is_down(engine, start_sidecar):
    server = FakeInferenceServer(engine)
    try:
        sidecar = start_sidecar(
            {"METRICS_ENDPOINT": server.url, "RULES_PATH": str(REPO / "rules" / f"{engine}.yaml"), **FAST}
        )
        sidecar.wait_ready_to_serve()
        seen = []
        # Idle, then a light load, then more than the server can take: queue and KV fill up.
        for rate, seconds in ((0.0, 1.0), (1.5, 6.0), (30.0, 30.0)):
            state = server.run(rate, seconds)
            want = expected_load(engine, state)
            if engine == "tgi" and state["arrived"] == 0:
                want = 0.0  # a fresh TGI prints an empty page: idle (the pack's on_missing: 0)
            got = sidecar.wait_for(
                lambda want=want: (v := load_value(sidecar)) == pytest.approx(want, abs=0.02) and [v],
                10,
                f"/load near {want} for {state}",
            )[0]
            seen.append(got)
            assert metrics_load(sidecar) == got
        assert seen[0] < seen[1] < seen[2] == 1.0, seen

        verbose = sidecar.get("/health?verbose")[1]
        assert "[+]load 1 (ok: largest term:" in verbose
        document = json.loads(sidecar.get("/health", headers={"Accept": "application/json"})[1])
        assert document["load"]["value"] == 1.0 and document["load"]["inputs"]
        score = json.loads(sidecar.get("/rules")[1])["score"]
        assert score["definition"]["params"] and score["definition"]["terms"]

        assert promtool_says(sidecar.get("/load")[1]) == (0, "", "")
        assert promtool_says(sidecar.get("/metrics")[1]) == (0, "", "")

        server.run(0.0, 600.0)  # drained: the score falls back ...
        sidecar.wait_for(lambda: load_value(sidecar) < 1.0, 10, "/load below 1 once drained")
        server.stop()  # ... and the upstream going away makes it full again
        sidecar.wait_for(lambda: load_value(sidecar) == 1.0, 10, "/load 1 with the upstream down")
        assert json.loads(sidecar.get("/health", headers={"Accept": "application/json"})[1])["load"]["state"] == "stale"
    finally:
        server.stop()


def test_load_without_a_score_section_mirrors_readiness(start_sidecar, upstream):
    upstream.body = b"tgi_queue_size 3\n"
    sidecar = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})  # seed mode: no rule file
    sidecar.wait_for(lambda: sidecar.health() == 200, 10, "ready")
    assert load_value(sidecar) == 0.0
    upstream.body = b"tgi_queue_size 30\n"
    sidecar.wait_for(lambda: sidecar.health() == 503, 10, "unready")
    assert load_value(sidecar) == 1.0
    assert "[+]load" not in sidecar.get("/health?verbose")[1]
