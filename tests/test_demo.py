"""The quick-start demo runs, probes a real sidecar, stops by itself and leaves nothing behind."""

import os
import re
import subprocess
import sys


def test_demo_prints_probe_lines_and_cleans_up():
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")}
    env["DEMO_SECONDS"] = "4"
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "demo"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rows = [
        line
        for line in result.stdout.splitlines()
        if re.match(r"^\s+\d+\s+[\d.]+\s+\d+\s+\d+\s+ready\s+200\s+[\d.]+ ms$", line)
    ]
    assert len(rows) >= 2, result.stdout
    assert re.search(r"\d+ probes: \d+ x 200", result.stdout)
    ports = re.search(r"on 127\.0\.0\.1:(\d+), sidecar on 127\.0\.0\.1:(\d+)", result.stdout).groups()
    leftover = subprocess.run(["pgrep", "-f", f"--port {ports[0]}"], capture_output=True, text=True).stdout
    assert leftover == ""
