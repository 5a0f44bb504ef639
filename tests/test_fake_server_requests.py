"""The fake server serves inference requests through its queueing model, and /control changes it.

A real HTTP server on loopback; the model's clock is injected, so a held connection is
released exactly when the test moves time past the request's modelled end (no sleeps)."""

import http.client
import json
import subprocess
import sys
import threading

import pytest

from exporter.sim.model import ModelConfig
from exporter.sim.profiles import build_profile
from exporter.sim.server import SimulatedServer, serve
from tests.support import REPO, FakeClock, wait_until


class Running:
    def __init__(self, config: ModelConfig | None = None, engine: str = "tgi", rate: float = 0.0):
        self.clock = FakeClock()
        sim = SimulatedServer(
            engine, build_profile({"shape": "constant", "rate": rate}), config, 3, self.clock.monotonic
        )
        self.httpd = serve("127.0.0.1", 0, sim, name="pod-a")
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def request(self, method: str, path: str, body=None, timeout: float = 10.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read().decode()
        finally:
            conn.close()

    def state(self) -> dict:
        return json.loads(self.request("GET", "/control")[2])

    def in_background(self, method: str, path: str, body) -> dict:
        """Start a request in a thread; the dict fills with (status, headers, body) when it returns."""
        box: dict = {}
        thread = threading.Thread(target=lambda: box.update(answer=self.request(method, path, body, 30)), daemon=True)
        thread.start()
        box["thread"] = thread
        return box

    def wait_for(self, predicate, what: str, timeout: float = 10.0):
        return wait_until(predicate, what, timeout, step=0.01)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Running(ModelConfig(max_concurrent_requests=2))
    yield running
    running.close()


def _words(n: int) -> str:
    return " ".join(["w"] * n)


def test_completion_is_held_until_the_model_finishes_it(server):
    # 4 prompt tokens, 50 output: prefill 15 ms + 0.1 ms x 4, then 49 decode steps of 30 + 1 ms.
    box = server.in_background("POST", "/v1/completions", {"prompt": _words(4), "max_tokens": 50})
    server.wait_for(lambda: server.state()["running"] == 1, "the request to enter the batch")
    server.clock.advance(1.0)
    server.wait_for(lambda: server.state()["time"] >= 1.0, "the model to reach 1 s")
    assert "answer" not in box, "answered before the model finished the request"
    assert server.state()["in_flight_http"] == 1
    server.clock.advance(1.0)
    box["thread"].join(10)
    status, headers, body = box["answer"]
    assert status == 200
    answer = json.loads(body)
    assert answer["object"] == "text_completion"
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 50, "total_tokens": 54}
    assert headers["X-Served-By"] == "pod-a"
    assert headers["x-total-time"] == str(round((0.015 + 0.0004 + 49 * 0.031) * 1000))
    state = server.state()
    assert (state["arrived"], state["completed"], state["running"]) == (1, 1, 0)  # --rate 0: only this one


def test_tgi_generate_and_the_metrics_page_count_the_same_request(server):
    box = server.in_background("POST", "/generate", {"inputs": _words(10), "parameters": {"max_new_tokens": 3}})
    server.wait_for(lambda: server.state()["running"] == 1, "the request to run")
    server.clock.advance(1.0)
    box["thread"].join(10)
    status, _, body = box["answer"]
    assert status == 200 and json.loads(body)["details"]["generated_tokens"] == 3
    page = server.request("GET", "/metrics")[2]
    assert "tgi_request_success 1" in page
    assert 'tgi_request_input_length_bucket{le="10.24"} 1' in page


def test_beyond_max_concurrent_requests_the_answer_is_tgis_429(server):
    boxes = [server.in_background("POST", "/generate", {"inputs": "a b", "parameters": {"max_new_tokens": 5}})]
    boxes.append(server.in_background("POST", "/generate", {"inputs": "a b", "parameters": {"max_new_tokens": 5}}))
    server.wait_for(lambda: server.state()["in_flight_http"] == 2, "two requests held")
    status, _, body = server.request("POST", "/generate", {"inputs": "a b", "parameters": {"max_new_tokens": 5}})
    assert status == 429
    assert json.loads(body) == {"error": "Model is overloaded", "error_type": "overloaded"}
    assert 'tgi_request_failure{err="overloaded"} 1' in server.request("GET", "/metrics")[2]
    server.clock.advance(5.0)
    for box in boxes:
        box["thread"].join(10)
        assert box["answer"][0] == 200


def test_stall_holds_requests_until_it_is_switched_off(server):
    status, _, body = server.request("POST", "/control", {"fault": "stall"})
    assert status == 200 and json.loads(body)["fault"] == "stall"
    box = server.in_background("POST", "/v1/completions", {"prompt": "a", "max_tokens": 2})
    server.wait_for(lambda: server.state()["in_flight_http"] == 1, "the request held")
    server.clock.advance(60.0)
    server.wait_for(lambda: server.state()["time"] >= 60.0, "the model to reach 60 s")
    assert "answer" not in box and server.state()["completed"] == 0
    page = server.request("GET", "/metrics")[2]
    assert 'tgi_batch_inference_count{method="decode"} 0\n' in page  # no decode step ran while stalled
    server.request("POST", "/control", {"fault": "none"})
    server.clock.advance(1.0)
    box["thread"].join(10)
    assert box["answer"][0] == 200


def test_slow_makes_every_step_take_longer(server):
    server.request("POST", "/control", {"fault": "slow", "slowdown": 10})
    box = server.in_background("POST", "/v1/completions", {"prompt": _words(4), "max_tokens": 50})
    server.wait_for(lambda: server.state()["in_flight_http"] == 1, "the request held")
    server.clock.advance(2.0)  # would have finished at normal speed (1.53 s)
    server.wait_for(lambda: server.state()["time"] >= 2.0, "the model to reach 2 s")
    assert "answer" not in box
    server.clock.advance(14.0)
    box["thread"].join(10)
    assert box["answer"][1]["x-total-time"] == str(round((0.015 + 0.0004 + 49 * 0.031) * 10 * 1000))


def test_control_sets_rate_and_kv_capacity_and_refuses_bad_values(server):
    status, _, body = server.request("POST", "/control", {"rate": 2.5, "kv_cache_tokens": 4096})
    state = json.loads(body)
    assert status == 200 and state["rate_override"] == 2.5 and state["kv_cache_tokens"] == 4096
    server.clock.advance(20.0)
    state = server.state()
    assert state["arrived"] + state["refused"] > 20  # internal arrivals at 2.5/s now add to real ones
    for bad, needle in [
        ({"kv_cache_tokens": 100}, "kv_cache_tokens must be a whole number >= 1536"),
        ({"rate": -1}, "rate must be a number >= 0"),
        ({"fault": "melt"}, "fault must be one of none, slow, stall"),
        ({"speed": 2}, "unknown key 'speed'"),
        (b"{not json", "the body is not JSON"),
    ]:
        status, _, body = server.request("POST", "/control", bad)
        assert status == 400 and needle in json.loads(body)["error"], body
    assert server.state()["kv_cache_tokens"] == 4096  # a refused change leaves the server as it was


@pytest.mark.parametrize(
    "path,body,status",
    [
        ("/v1/completions", b"nope", 400),
        ("/v1/completions", {"max_tokens": 3}, 422),
        ("/v1/completions", {"prompt": "a", "max_tokens": 0}, 422),
        ("/generate", {"inputs": 5}, 422),
        ("/elsewhere", {}, 404),
    ],
)
def test_bad_requests_get_an_error_and_enter_nothing(server, path, body, status):
    got, _, text = server.request("POST", path, body)
    assert got == status and json.loads(text)["error"]
    assert server.state()["arrived"] == 0


def test_fake_server_cli_refuses_an_unknown_scenario_region():
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "fake-server", "--scenario", "testbed-spill", "--region", "mars"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "llm-healthcheck fake-server: --region 'mars' is not a region of testbed-spill: hot, cool"
    )
