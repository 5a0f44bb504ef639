"""A real Prometheus (the Debian package .ci/run installs) on a loopback port, scraping the given
targets every second; for tests that compare the sidecar with Prometheus itself."""

import json
import subprocess
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager

from tests.support import free_port, require_tool


class Prometheus:
    def __init__(self, port: int, proc):
        self.port, self.proc = port, proc

    def query(self, expr: str) -> list:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]["result"]

    def wait_for(self, predicate, what: str, timeout: float = 60.0):
        """Poll predicate() (given this Prometheus) until truthy; bounded; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()
            try:
                value = predicate(self)
                if value:
                    return value
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"Prometheus never showed {what}")


@contextmanager
def real_prometheus(tmp_path, targets: dict):
    """targets: {job name: port on 127.0.0.1, or a list of (port, {label: value}) per target}."""
    prometheus = require_tool("prometheus", "apt-get install prometheus")
    port = free_port()
    jobs = "".join(f"  - job_name: {job}\n    static_configs:\n{_static(target)}" for job, target in targets.items())
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n" + jobs)
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield Prometheus(port, proc)
    finally:
        proc.terminate()
        proc.wait(20)


def _static(target) -> str:
    if isinstance(target, int):
        return f"      - targets: ['127.0.0.1:{target}']\n"
    out = ""
    for port, labels in target:
        listed = ", ".join(f"{key}: {json.dumps(value)}" for key, value in labels.items())
        out += f"      - targets: ['127.0.0.1:{port}']\n        labels: {{{listed}}}\n"
    return out
