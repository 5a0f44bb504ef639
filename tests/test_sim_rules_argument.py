"""`--rules seed:METRIC:N`: the threshold follows the last colon, so vLLM's metric names work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config.errors import ConfigError
from exporter.sim.rules_argument import parse_rules_argument

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "text, metric, threshold",
    [
        ("seed", "tgi_queue_size", 15.0),
        ("seed:tgi_queue_size:15", "tgi_queue_size", 15.0),
        ("seed:vllm:num_requests_waiting:5", "vllm:num_requests_waiting", 5.0),
        ("seed:vllm:num_requests_waiting", "vllm:num_requests_waiting", 15.0),  # no number after the colon
        ("seed:job:queue:sum:0.5", "job:queue:sum", 0.5),  # a recording rule's name
        ("seed:sglang:num_queue_reqs:1e1", "sglang:num_queue_reqs", 10.0),
    ],
)
def test_the_threshold_is_after_the_last_colon(text, metric, threshold):
    spec = parse_rules_argument(text)
    assert (spec.files, spec.metric, spec.threshold) == ((), metric, threshold)


@pytest.mark.parametrize(
    "text, message",
    [
        ("seed::5", "the metric name is missing"),
        ("seed:tgi_queue_size:", "the threshold after the last colon is missing"),
        ("seed:tgi_queue_size:nan", "is not a finite number"),
        ("seed:tgi_queue_size:-inf", "is not a finite number"),
    ],
)
def test_bad_seed_arguments_say_what_to_write(text, message):
    with pytest.raises(ConfigError) as err:
        parse_rules_argument(text)
    line = str(err.value.problems[0])
    assert message in line and "seed:vllm:num_requests_waiting:5" in line


def test_simulate_runs_the_single_threshold_baseline_for_vllm(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "simulate", "slow-ramp", "--duration", "5m", "--no-plot"]
        + ["--rules", "seed:vllm:num_requests_waiting:5", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "sum(vllm:num_requests_waiting) > 5" in proc.stdout
