"""The shipped rule packs: their own unit tests pass through the real CLI, and each pack,
fed a real capture of its server as the sidecar would scrape it, reaches the decision
that page implies."""

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config.yamldoc import parse_document
from exporter.core import engine
from exporter.core.history import History
from exporter.core.scrape import parse_samples
from exporter.rules.loader import load_rules
from tests.support import ready_on_a_good_page

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
FIXTURES = REPO.parent / "shared" / "fixtures"
PACKS = sorted(RULES.glob("*.yaml"))


def test_every_expected_pack_ships():
    assert {p.stem for p in PACKS} == {"tgi", "vllm", "sglang", "triton-trtllm", "llamacpp", "tei"}


def test_every_pack_test_file_passes_through_the_cli():
    files = sorted(str(p.relative_to(REPO)) for p in (RULES / "tests").glob("*.test.yaml"))
    assert len(files) == len(PACKS)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "test", *files], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == files
    assert all(": ok: " in line for line in lines)


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.stem)
def test_every_rule_of_a_pack_is_exercised_by_its_test_file(pack):
    test_file = RULES / "tests" / f"{pack.stem}.test.yaml"
    doc = parse_document(test_file.read_text())
    checked = set()
    for case in doc.value["tests"]:
        for expectation in case["expect"]:
            checked |= set(expectation.get("rules", {}))
    names = {rule.name for rule in load_rules([str(pack)]).rules}
    assert names - checked == set()


def capture_samples(name: str):
    return parse_samples((FIXTURES / name).read_bytes(), None)


def replay(pack: str, capture: str, seconds: int = 20):
    """Scrape the same page once a second for `seconds`, evaluating after each scrape."""
    ruleset = load_rules([str(RULES / pack)])
    samples = capture_samples(capture)
    history = History(retention_seconds=600)
    state = engine.initial_state()
    statuses = ()
    for t in range(seconds + 1):
        history.record(float(t), samples)
        state, statuses = engine.evaluate(ruleset, history, state, float(t))
    return ruleset, samples, statuses


# pack, capture, ready after 20 s of the same page, states that page implies,
# metric names the pack reads that the capture does not print (and why)
CAPTURE_CASES = [
    pytest.param(
        "tgi.yaml",
        "tgi-datadog-integrations-core-3.3.5.prom",
        True,
        {"tgi_queue_saturated": "ok", "tgi_queue_warning": "ok", "tgi_overloaded": "ok", "tgi_stalled": "ok"},
        set(),
        id="tgi-3.3.5",
    ),
    pytest.param(
        "tgi.yaml",
        "tgis-compat-ibm-vllm-pr18-fragment.prom",
        True,
        {"tgi_queue_saturated": "ok", "tgi_stalled": "ok"},
        # a three-family fragment
        {
            "tgi_request_failure",
            "tgi_request_queue_duration_bucket",
            "tgi_batch_inference_count",
            "tgi_batch_forward_duration_sum",
            "tgi_batch_forward_duration_count",
        },
        id="tgis-compat-fragment",
    ),
    pytest.param(
        "vllm.yaml",
        "vllm-datadog-integrations-core-v0-original.prom",
        True,
        {"vllm_queue_saturated": "ok", "vllm_kv_cache_full": "ok", "vllm_stalled": "ok", "vllm_sleeping": "ok"},
        # a V0 page: the KV gauge still has its old name; sleep mode and per-request TPOT came later
        {
            "vllm:kv_cache_usage_perc",
            "vllm:engine_sleep_state",
            "vllm:request_time_per_output_token_seconds_sum",
            "vllm:request_time_per_output_token_seconds_count",
        },
        id="vllm-v0",
    ),
    pytest.param(
        "vllm.yaml",
        "vllm-datadog-integrations-core-v0-plus-v1-handmerged.prom",
        True,
        {"vllm_queue_saturated": "ok", "vllm_kv_cache_full": "ok", "vllm_sleeping": "ok", "vllm_stalled": "ok"},
        set(),
        id="vllm-v0-plus-v1",
    ),
    pytest.param(
        "vllm.yaml",
        "vllm-aibrix-docs-runtime-v0.7-fragment.prom",
        True,
        {"vllm_queue_saturated": "ok", "vllm_kv_cache_full": "ok", "vllm_stalled": "ok"},
        # a fragment of a 0.7 page: old KV name, no sleep state, no TTFT or per-request TPOT histogram
        {
            "vllm:kv_cache_usage_perc",
            "vllm:engine_sleep_state",
            "vllm:time_to_first_token_seconds_bucket",
            "vllm:request_time_per_output_token_seconds_sum",
            "vllm:request_time_per_output_token_seconds_count",
        },
        id="vllm-0.7-fragment",
    ),
    pytest.param(
        "sglang.yaml",
        "sglang-docs-production-metrics.prom",
        False,
        # 2826 requests waiting: far past 15, for longer than `for`
        {
            "sglang_queue_saturated": "firing",
            "sglang_queue_warning": "firing",
            "sglang_kv_pool_full": "ok",
            "sglang_kv_pool_warning": "ok",
        },
        set(),
        id="sglang-docs",
    ),
    pytest.param(
        "triton-trtllm.yaml",
        "triton-trtllm-backend-readme-sample.prom",
        True,
        # one request waiting, 49% of KV blocks used, nothing active
        {
            "trtllm_queue_saturated": "ok",
            "trtllm_queue_warning": "ok",
            "trtllm_kv_cache_full": "ok",
            "trtllm_kv_cache_warning": "ok",
            "trtllm_stalled": "ok",
        },
        set(),
        id="triton-trtllm-readme",
    ),
    pytest.param(
        "llamacpp.yaml",
        "llamacpp-vcr-cassette-b9014-after-request.prom",
        True,
        {"llamacpp_queue_saturated": "ok", "llamacpp_queue_warning": "ok", "llamacpp_kv_cache_full": "ok"},
        {"llamacpp:kv_cache_usage_ratio"},  # build b9014 exports no KV gauge
        id="llamacpp-b9014",
    ),
]


@pytest.mark.parametrize("pack, capture, ready, states, absent", CAPTURE_CASES)
def test_pack_reaches_the_decision_its_capture_implies(pack, capture, ready, states, absent):
    ruleset, samples, statuses = replay(pack, capture)
    by_name = {s.rule.name: s for s in statuses}
    assert {name: by_name[name].state for name in states} == states
    assert ready_on_a_good_page(statuses) is ready
    assert all(s.error is None for s in statuses)
    present = {dict(labels)["__name__"] for labels, _ in samples}
    assert ruleset.metric_names - present == absent


def test_kv_rules_read_the_new_name_when_a_page_has_both():
    # The hand-merged page prints vllm:kv_cache_usage_perc beside vllm:gpu_cache_usage_perc.
    _, samples, statuses = replay("vllm.yaml", "vllm-datadog-integrations-core-v0-plus-v1-handmerged.prom", 1)
    names = {dict(labels)["__name__"] for labels, _ in samples}
    assert {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"} <= names
    kv = next(s for s in statuses if s.rule.name == "vllm_kv_cache_full")
    assert kv.value == 0.0 and kv.error is None


def test_a_frozen_page_with_a_busy_slot_becomes_a_stall():
    # Replaying one llama.cpp page for minutes is exactly a server whose counters stopped.
    _, _, statuses = replay("llamacpp.yaml", "llamacpp-vcr-cassette-b9014-after-request.prom", 100)
    stalled = next(s for s in statuses if s.rule.name == "llamacpp_stalled")
    assert stalled.state == "firing"
    assert not ready_on_a_good_page(statuses)
