import pytest

from tests.support import FakeClock, Sidecar, Upstream


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
