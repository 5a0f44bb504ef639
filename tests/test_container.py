"""The image builds and serves probes as a non-root user on a read-only root filesystem.

Real parts only: the base image is built from Debian packages (no registry of images is
reachable here; tests/containers/build-base-image.sh caches it under /var/tmp), the project
image is built with buildah from the repository's Dockerfile, and podman runs it with
`--read-only` (and without podman's writable /tmp, as Kubernetes' readOnlyRootFilesystem
leaves it), all capabilities dropped, on the host network on a free loopback port. Its
upstream is a loopback HTTP server serving a real TGI capture from ../shared/fixtures/.

The test skips only when buildah or podman are not installed at all, and never in CI
(CI=true), where .ci/run installs them.
"""

import http.client
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "containers"))
from promql_refs import FIXTURES, OWN_METRICS, REPO

from tests.support import require_tool

BASE_IMAGE = "localhost/debian-python:bookworm"
BUILD_BASE = Path(__file__).parent / "containers" / "build-base-image.sh"
CAPTURE = FIXTURES / "tgi-datadog-integrations-core-3.3.5.prom"
# The seed defaults: the image with no rule file sums tgi_queue_size against 15.
SATURATED_QUEUE = 40
STORAGE = ["--storage-driver", "vfs"]
# crun cannot set rlimits or cgroups here; runc with cgroupfs can (../shared/notes/containers.md).
PODMAN_RUN_FLAGS = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"]
# Bounded waits for an external process; no assertion depends on how long anything took.
WAIT_SECONDS = 60


def _rule_packs() -> list[str]:
    """The packs of rules/ that .dockerignore lets into the image, not their tests."""
    return sorted(
        p.name
        for p in (REPO / "rules").iterdir()
        if p.is_file() and p.suffix in (".yaml", ".yml") and not p.stem.endswith((".test", "_test"))
    )


def _require_tools(*names: str) -> None:
    for name in names:
        require_tool(name, "apt-get install buildah podman runc debootstrap")


def _run(args: list[str], env: dict, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args[:4])}... exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


class _Upstream:
    """A loopback /metrics server whose body the test can change while the sidecar scrapes."""

    def __init__(self, body: bytes):
        self.body = body
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = upstream.body
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _wait_for(port: int, path: str, status: int, container_logs) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    last = None
    while time.monotonic() < deadline:
        try:
            last = _get(port, path)
            if last[0] == status:
                return last[1]
        except OSError as error:
            last = error
        time.sleep(0.2)
    raise AssertionError(f"GET {path} never answered {status} (last: {last!r})\n{container_logs()}")


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    _require_tools("buildah", "podman", "runc")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    # Debian's default ulimits cannot be applied in this sandbox; containers do not need them.
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


@pytest.fixture(scope="module")
def image(podman_env):
    exists = _run(["podman", *STORAGE, "image", "exists", BASE_IMAGE], podman_env, check=False)
    if exists.returncode != 0:
        _require_tools("debootstrap")
        _run(["bash", str(BUILD_BASE), BASE_IMAGE], podman_env, timeout=900)

    tag = f"localhost/llm-healthcheck:test-{uuid.uuid4().hex[:8]}"
    _run(
        [
            "buildah",
            *STORAGE,
            "bud",
            "--isolation",
            "chroot",
            "--network",
            "host",
            # Lets pip in the build verify the package registry with the host's CA bundle.
            "--volume",
            "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "--tag",
            tag,
            str(REPO),
        ],
        podman_env,
        timeout=600,
    )
    yield tag
    # vfs stores every layer in full: leave nothing behind.
    _run(["podman", *STORAGE, "rmi", "--force", tag], podman_env, check=False)


@pytest.fixture
def upstream():
    server = _Upstream(CAPTURE.read_bytes())
    yield server
    server.close()


@pytest.fixture
def running(image, podman_env, upstream):
    port = _free_port()
    name = f"llm-healthcheck-test-{uuid.uuid4().hex[:8]}"
    _run(
        [
            "podman",
            *STORAGE,
            *PODMAN_RUN_FLAGS,
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            "--read-only-tmpfs=false",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--env",
            f"APP_PORT={port}",
            "--env",
            "BIND_HOST=127.0.0.1",
            "--env",
            f"METRICS_ENDPOINT={upstream.url}",
            image,
        ],
        podman_env,
    )

    def logs() -> str:
        return _run(["podman", *STORAGE, "logs", name], podman_env, check=False).stderr[-4000:]

    yield name, port, logs
    _run(["podman", *STORAGE, *PODMAN_RUN_FLAGS, "rm", "--force", "--time", "2", name], podman_env, check=False)


def test_image_is_configured_as_documented(image, podman_env):
    inspect = _run(
        [
            "podman",
            *STORAGE,
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.ExposedPorts}}",
            image,
        ],
        podman_env,
    ).stdout.strip()
    user, entrypoint, ports = inspect.split("|")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER must be a numeric non-root UID, got {user!r}"
    assert entrypoint == '["llm-healthcheck","serve"]'
    assert "8081/tcp" in ports


def test_final_image_has_no_compilers_and_ships_the_rule_packs(image, podman_env):
    probe = _run(
        [
            "podman",
            *STORAGE,
            *PODMAN_RUN_FLAGS,
            "run",
            "--rm",
            "--read-only",
            "--entrypoint",
            "sh",
            image,
            "-c",
            "for tool in gcc cc c++ g++ clang make pip; do command -v $tool; done; ls /usr/share/llm-healthcheck/rules",
        ],
        podman_env,
    ).stdout.split()
    # The packs, and their fleet views in fleet/.
    assert sorted(probe) == sorted(_rule_packs() + ["fleet"]), "tools found in the final image, or rule packs missing"


def test_shipped_rule_packs_pass_check_inside_the_image(image, podman_env):
    packs = _rule_packs()
    assert packs, "no rule packs found in rules/"
    result = _run(
        [
            "podman",
            *STORAGE,
            *PODMAN_RUN_FLAGS,
            "run",
            "--rm",
            "--read-only",
            "--read-only-tmpfs=false",
            "--network",
            "none",
            "--entrypoint",
            "llm-healthcheck",
            image,
            "check",
            *(f"/usr/share/llm-healthcheck/rules/{pack}" for pack in packs),
        ],
        podman_env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Each pack with its shipped fleet view (one fleet block per rule set).
    for view in sorted((REPO / "rules" / "fleet").glob("*.yaml")):
        files = [f"/usr/share/llm-healthcheck/rules/{view.name}", f"/usr/share/llm-healthcheck/rules/fleet/{view.name}"]
        result = _run(
            ["podman", *STORAGE, *PODMAN_RUN_FLAGS, "run", "--rm", "--read-only", "--read-only-tmpfs=false"]
            + ["--network", "none", "--entrypoint", "llm-healthcheck", image, "check", *files],
            podman_env,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "fleet: http://prometheus.monitoring:9090/api/v1/query" in result.stdout


def test_serves_probes_as_non_root_on_a_read_only_root(running, upstream, podman_env):
    name, port, logs = running
    assert _wait_for(port, "/livez", 200, logs)
    # The capture's tgi_queue_size is 0: ready.
    assert _wait_for(port, "/health", 200, logs) == "Healthy\n"

    # Saturate: the same page with a long queue takes the pod out, and back in once it drains.
    capture = CAPTURE.read_bytes()
    upstream.body = re.sub(rb"(?m)^tgi_queue_size 0$", b"tgi_queue_size %d" % SATURATED_QUEUE, capture)
    assert upstream.body != capture
    assert _wait_for(port, "/health", 503, logs) == "Unhealthy\n"
    upstream.body = capture
    _wait_for(port, "/health", 200, logs)
    # The sidecar's own liveness never depended on the upstream.
    assert _get(port, "/livez")[0] == 200

    status, metrics = _get(port, "/metrics")
    assert status == 200
    assert re.search(r"(?m)^llm_healthcheck_ready 1(\.0)?$", metrics), metrics[:2000]
    assert re.search(r"(?m)^llm_healthcheck_scrape_success 1(\.0)?$", metrics)
    exported = set(re.findall(r"(?m)^(llm_healthcheck_\w+)[{ ]", metrics))
    missing = OWN_METRICS - exported
    assert not missing, f"metrics the alerts and dashboard rely on are not exported: {sorted(missing)}"

    # Every process in the container runs as a non-root user...
    uids = _run(["podman", *STORAGE, "exec", name, "sh", "-c", "grep -h '^Uid:' /proc/[0-9]*/status"], podman_env)
    real_uids = {line.split()[1] for line in uids.stdout.splitlines()}
    assert real_uids and "0" not in real_uids, uids.stdout
    # ...and cannot write the root filesystem, /tmp included, while serving fine without it.
    write = _run(["podman", *STORAGE, "exec", name, "sh", "-c", "touch /tmp/probe /probe"], podman_env, check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr


def test_sigterm_turns_unready_then_exits_cleanly(running, podman_env):
    name, port, logs = running
    _wait_for(port, "/health", 200, logs)
    _run(["podman", *STORAGE, "kill", "--signal", "TERM", name], podman_env)
    # Still answering, but out of the Service, while it drains.
    _wait_for(port, "/health", 503, logs)
    exit_code = _run(["podman", *STORAGE, "wait", name], podman_env, timeout=WAIT_SECONDS).stdout.strip()
    assert exit_code == "0", logs()
