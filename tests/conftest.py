import pytest

from tests.support import FAST, FakeClock, Sidecar, Upstream


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def start_sidecar():
    started = []

    def start(env: dict, args=()):
        sidecar = Sidecar(env, args)
        started.append(sidecar)
        return sidecar

    yield start
    for sidecar in started:
        sidecar.stop()


@pytest.fixture
def sidecar(start_sidecar, upstream):
    """A real sidecar serving, in front of an upstream whose queue is well under the threshold
    (test modules that need another one define their own `sidecar`)."""
    upstream.body = b"tgi_queue_size 1\n"
    running = start_sidecar({"METRICS_ENDPOINT": upstream.url, **FAST})
    running.wait_ready_to_serve()
    running.wait_for(lambda: running.health() == 200, 10, "/health 200")
    return running
