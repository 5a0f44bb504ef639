"""Every configuration mistake a new user makes is one line `llm-healthcheck: ...`, exit 2, no
traceback: bad env values, bad flags, a missing or broken rule file. Real subprocesses; none of
these inputs gets as far as starting gunicorn."""

import os
import re
import subprocess
import sys

import pytest

from exporter import __version__
from tests.support import REPO

BROKEN_YAML = "rules:\n  - name: q\n    expr: sum(tgi_queue_size)\n    above: [15\n"

# (id, env, args, what the one line must contain)
CASES = [
    ("threshold inf", {"METRIC_THRESHOLD": "inf"}, ["serve"], 'env METRIC_THRESHOLD: "inf" is not a finite number'),
    ("threshold garbage", {"METRIC_THRESHOLD": "lots"}, ["serve"], 'env METRIC_THRESHOLD: "lots" is not a number'),
    ("rules path missing", {"RULES_PATH": "/nonexistent"}, ["serve"], "/nonexistent: no such file or directory"),
    ("rule file yaml syntax", {"RULES_PATH": "{broken}"}, ["serve"], "{broken}:5:1: invalid YAML"),
    ("port out of range", {"APP_PORT": "99999"}, ["serve"], 'env APP_PORT: "99999" is out of range'),
    (
        "interval not a duration",
        {"SCRAPE_INTERVAL": "fast"},
        ["serve"],
        'env SCRAPE_INTERVAL: "fast" is not a duration',
    ),
    ("endpoint without scheme", {"METRICS_ENDPOINT": "localhost:8080"}, ["serve"], "is not an http:// or https:// URL"),
    (
        "timeout not below interval",
        {"SCRAPE_INTERVAL": "1s", "SCRAPE_TIMEOUT": "2s"},
        ["serve"],
        "must be less than interval",
    ),
    ("bad policy flag", {}, ["serve", "--on-failure", "maybe"], 'env ON_FAILURE: "maybe" is not one of'),
    (
        "workers flag",
        {},
        ["serve", "--workers", "3"],
        "--workers: 3 workers requested; llm-healthcheck runs exactly one",
    ),
    ("port flag not a number", {}, ["fake-server", "--port", "many"], "argument --port: "),
    ("unknown flag", {}, ["serve", "--bogus"], "unrecognized arguments: --bogus"),
    ("eval bad timeout", {}, ["eval", "--file", "x.prom", "--scrape-timeout", "soon"], 'env SCRAPE_TIMEOUT: "soon"'),
    ("check strict alone", {}, ["check", "--strict", "rules/tgi.yaml"], "--strict needs --against"),
]


@pytest.mark.parametrize("env, args, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_configuration_error_is_one_line_exit_2(env, args, expected, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_YAML)
    env = {k: v.replace("{broken}", str(broken)) for k, v in env.items()}
    full = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "RULES_PATH")}
    full.update({"APP_PORT": "1", "BIND_HOST": "127.0.0.1", **env})
    result = subprocess.run(
        [sys.executable, "-m", "exporter", *args], env=full, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("llm-healthcheck: ")
    assert expected.replace("{broken}", str(broken)) in lines[0]
    assert "Traceback" not in result.stderr


def test_version_prints_the_version():
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--version"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, f"llm-healthcheck {__version__}\n", "")
    assert __version__ == _pyproject_version()


def _pyproject_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_help_shows_defaults():
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "eval", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    flat = " ".join(result.stdout.split())
    assert "scrape timeout (--timeout: older name) (default: 5s)" in flat
    assert "exit 0 when the pod would be ready, 1 when it would be unready, 2 on a configuration error" in flat
    serve = subprocess.run(
        [sys.executable, "-m", "exporter", "serve", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    flat = " ".join(serve.stdout.split())
    for text in ("default http://localhost:8080/metrics", "default 1s", "default 15", "default unready"):
        assert text in flat


@pytest.mark.parametrize(
    "command, new, old",
    [
        ("eval", "--metrics-endpoint", "--endpoint"),
        ("eval", "--scrape-timeout", "--timeout"),
        ("check", "--scrape-timeout", "--timeout"),
        ("fake-server", "--bind-host", "--host"),
        ("demo", "--duration", "--seconds"),
    ],
)
def test_one_flag_name_per_thing_with_the_old_one_kept(command, new, old):
    result = subprocess.run(
        [sys.executable, "-m", "exporter", command, "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert re.search(rf"^\s+{new} \S+, {old} \S+$", result.stdout, re.M), result.stdout
