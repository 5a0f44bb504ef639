"""The score: section: loading (every problem at file:line:col), evaluation (roofline, clamp,
missing and stale policy) and the shipped packs' scores on their engines' metric pages."""

import math

import pytest

from exporter.config.errors import ConfigError
from exporter.core.history import History
from exporter.core.load_score import MISSING, OK, STALE, evaluate_score, published, score_for
from exporter.rules.loader import load_rules
from exporter.sim.model import ModelConfig, ServerModel
from exporter.sim.pages import build_engine
from tests.support import REPO

RULE = "rules:\n  - {name: q, expr: sum(tgi_queue_size), above: 15}\n"
SCORE = """score:
  params:
    - {name: queue_capacity, value: 5, description: EPP queue threshold}
    - {name: max_batch, value: 16}
  terms:
    - {name: queue, expr: sum(tgi_queue_size) / $queue_capacity}
    - {name: batch, expr: sum(tgi_batch_current_size) / $max_batch}
"""


def write(tmp_path, text: str, name: str = "r.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_rules([write(tmp_path, text)])
    return [str(p) for p in err.value.problems]


def history_of(samples_by_time: dict) -> History:
    history = History(600)
    for t, samples in sorted(samples_by_time.items()):
        history.record(t, [((("__name__", name),) + tuple(labels), value) for name, labels, value in samples])
    return history


def test_score_block_loads_with_params_substituted(tmp_path):
    ruleset = load_rules([write(tmp_path, SCORE + RULE)])
    score = ruleset.score
    assert [t.name for t in score.terms] == ["queue", "batch"]
    assert score.terms[0].expr_text == "sum(tgi_queue_size) / $queue_capacity"
    assert [(p.name, p.value, p.description) for p in score.params] == [
        ("queue_capacity", 5.0, "EPP queue threshold"),
        ("max_batch", 16.0, ""),
    ]
    assert (score.on_missing, score.on_stale) == (1.0, 1.0)  # documented default: full
    # The score's metrics are scraped and kept even though no rule reads them.
    assert "tgi_batch_current_size" in ruleset.metric_names


def test_score_problems_name_file_line_and_column(tmp_path):
    text = (
        """score:
  params:
    - {name: cap, value: 0}
    - {name: unused, value: 3}
  terms:
    - {name: queue, expr: sum(tgi_queue_size) / $capacity}
    - {name: bad, expr: "sum(rate(x[5m])"}
  on_missing: 2
"""
        + RULE
    )
    file = str(tmp_path / "r.yaml")
    assert problems(tmp_path, text) == [
        f'{file}:3:14: score.params "cap": not used by any term; use $cap or remove it',
        f'{file}:3:26: score.params "cap": value "0" must be a positive finite number',
        f'{file}:4:14: score.params "unused": not used by any term; use $unused or remove it',
        f'{file}:6:27: score.terms "queue": unknown parameter $capacity; defined in score.params: $cap, $unused',
        f'{file}:7:25: score.terms "bad": parse error: unclosed left parenthesis',
        f'{file}:8:15: score.on_missing: "2" must be a number from 0 to 1',
    ]


def test_terms_and_expr_are_exclusive_and_schema_catches_typos(tmp_path):
    both = "score:\n  expr: sum(a)\n  terms:\n    - {name: a, expr: sum(a)}\n" + RULE
    assert problems(tmp_path, both) == [
        f"{tmp_path / 'r.yaml'}:1:1: score: give either terms (a roofline: the largest term wins) or expr, not both"
    ]
    typo = "score:\n  expr: sum(a)\n  on_mising: 1\n" + RULE
    assert problems(tmp_path, typo) == [f'{tmp_path / "r.yaml"}:3:3: unknown key "on_mising"; did you mean on_missing?']


def test_missing_keys_in_terms_and_params_are_one_line_each(tmp_path):
    text = "score:\n  params:\n    - {name: cap}\n  terms:\n    - {expr: sum(x) / $cap}\n" + RULE
    file = tmp_path / "r.yaml"
    assert problems(tmp_path, text) == [
        f'{file}:3:7: missing required key "value"',
        f'{file}:5:7: missing required key "name"',
    ]


def test_a_bad_score_on_reload_keeps_nothing_half_loaded(tmp_path):
    """A problem anywhere in the score block fails the whole load (the running set stays)."""
    with pytest.raises(ConfigError):
        load_rules([write(tmp_path, "score:\n  expr: 'sum(('\n" + RULE)])


def test_roofline_takes_the_largest_term_and_clamps(tmp_path):
    spec = load_rules([write(tmp_path, SCORE + RULE)]).score
    at = {0.0: [("tgi_queue_size", (), 2.0), ("tgi_batch_current_size", (), 12.0)]}
    score = evaluate_score(spec, history_of(at), 0.0)
    assert score.state == OK
    assert score.inputs == (("queue", 0.4), ("batch", 0.75))
    assert score.value == 0.75 and score.raw == 0.75
    flooded = evaluate_score(spec, history_of({0.0: [("tgi_queue_size", (), 40.0)]}), 0.0)
    assert flooded.raw == 8.0 and flooded.value == 1.0  # clamped; the batch term had no data
    assert flooded.inputs == (("queue", 8.0), ("batch", None))


def test_several_series_count_their_largest_and_nan_is_no_data(tmp_path):
    text = "score:\n  expr: tgi_queue_size / 10\n" + RULE
    spec = load_rules([write(tmp_path, text)]).score
    two = {0.0: [("tgi_queue_size", (("shard", "0"),), 3.0), ("tgi_queue_size", (("shard", "1"),), 6.0)]}
    assert evaluate_score(spec, history_of(two), 0.0).value == 0.6
    nan = evaluate_score(spec, history_of({0.0: [("tgi_queue_size", (), math.nan)]}), 0.0)
    assert (nan.state, nan.value) == (MISSING, 1.0)


def test_missing_stale_and_hold_policies(tmp_path):
    text = "score:\n  expr: sum(tgi_queue_size) / 10\n  on_missing: 0\n  on_stale: 0.9\n" + RULE
    spec = load_rules([write(tmp_path, text)]).score
    empty = History(60)
    missing = score_for(spec, None, empty, 0.0, fresh=True, empty=False, failing=False)
    assert (missing.state, missing.value) == (MISSING, 0.0)
    good = evaluate_score(spec, history_of({0.0: [("tgi_queue_size", (), 5.0)]}), 0.0)
    # One failed scrape below failure_threshold holds the last score, as the rules hold their states.
    assert score_for(spec, good, empty, 1.0, fresh=False, empty=False, failing=False) is good
    stale = score_for(spec, good, empty, 2.0, fresh=False, empty=False, failing=True)
    assert (stale.state, stale.value) == (STALE, 0.9)
    assert score_for(spec, good, empty, 2.0, fresh=False, empty=True, failing=False).value == 0.0
    # Terminating and starting publish the stale value whatever the last score was.
    assert published(good, spec, False, "terminating").value == 0.9
    assert published(None, spec, False, "starting").value == 0.9
    assert published(good, spec, True, "serving") is good


def test_without_a_score_section_the_load_mirrors_readiness(tmp_path):
    ruleset = load_rules([write(tmp_path, RULE)])
    assert ruleset.score is None
    assert published(None, None, True, "serving").value == 0.0
    assert published(None, None, False, "serving").value == 1.0


def test_several_files_make_one_roofline(tmp_path):
    a = write(tmp_path, SCORE + RULE, "tgi.yaml")
    b = write(tmp_path, "score:\n  on_missing: 0.5\n  expr: max(vllm:kv_cache_usage_perc) / 0.8\n", "vllm.yaml")
    spec = load_rules([a, b]).score
    assert [t.name for t in spec.terms] == ["tgi.queue", "tgi.batch", "vllm.expr"]
    assert spec.on_missing == 1.0  # the most cautious of the files
    score = evaluate_score(spec, history_of({0.0: [("vllm:kv_cache_usage_perc", (), 0.4)]}), 0.0)
    assert score.value == 0.5 and score.inputs[-1] == ("vllm.expr", 0.5)


# ---- the shipped packs, on their engines' pages -------------------------------------------

PACKS = {"tgi": "tgi", "vllm": "vllm", "sglang": "sglang"}


def _page_score(engine: str, model: ServerModel, spec, names, t: float):
    page = build_engine(engine, ModelConfig())
    history = History(600)
    samples = page.samples(model, page.families_for(names))
    history.record(t, samples)
    return evaluate_score(spec, history, t) if samples else None


@pytest.mark.parametrize("engine", sorted(PACKS))
def test_each_pack_scores_rise_with_queue_and_kv_and_reach_full(engine):
    import random

    ruleset = load_rules([str(REPO / "rules" / f"{PACKS[engine]}.yaml")])
    spec, names = ruleset.score, ruleset.metric_names
    assert spec is not None and spec.params, f"{engine} pack has no named capacities"
    config = ModelConfig()
    page = build_engine(engine, config)
    model = ServerModel(config, random.Random(3), page.wanted_quantities(names))
    values = []
    t = 0.0
    for burst in (1, 4, 10, 40):  # ever more requests outstanding at once
        for _ in range(burst):
            model.arrive(t)
        t += 0.05
        model.advance_to(t)
        score = _page_score(engine, model, spec, names, t)
        values.append(score.value)
    assert values == sorted(values), values
    assert values[0] < 1.0 and values[-1] == 1.0, values


def test_every_shipped_pack_has_a_score_with_documented_capacities():
    for path in sorted((REPO / "rules").glob("*.yaml")):
        spec = load_rules([str(path)]).score
        assert spec is not None, path.name
        assert spec.description, path.name
        for param in spec.params:
            assert param.description, f"{path.name}: parameter {param.name} has no description"


# The real captured pages (../shared/fixtures): each pack's score reads its engine's real names.
CAPTURES = [
    ("tgi-datadog-integrations-core-3.3.5.prom", "tgi", 0.0),
    ("vllm-datadog-integrations-core-v0-original.prom", "vllm", 0.0),
    ("sglang-docs-production-metrics.prom", "sglang", 1.0),  # 2826 queued requests in the sample
    ("triton-trtllm-backend-readme-sample.prom", "triton-trtllm", 0.609375),  # KV 0.4875 / 0.8
    ("llamacpp-vcr-cassette-b9014-after-request.prom", "llamacpp", 0.25),  # 1 of 4 slots busy
]


@pytest.mark.parametrize("capture_name, pack, expected", CAPTURES)
def test_pack_scores_on_real_captures(capture_name, pack, expected):
    from exporter.core.scrape import parse_samples
    from tests.support import capture

    ruleset = load_rules([str(REPO / "rules" / f"{pack}.yaml")])
    history = History(600)
    history.record(0.0, parse_samples(capture(capture_name), ruleset.metric_names))
    score = evaluate_score(ruleset.score, history, 0.0)
    assert score.state == OK, score
    assert score.value == pytest.approx(expected)


BAD_BLOCKS = [
    "score: 5",
    "score: {terms: []}",
    "score: {terms: [{expr: sum(x)}]}",
    "score: {terms: [{name: 5, expr: sum(x)}]}",
    "score: {terms: [{name: a, expr: ''}]}",
    "score: {terms: [7]}",
    "score: {params: [{name: a}], expr: sum(x)}",
    "score: {params: [3], expr: sum(x)}",
    "score: {params: [{name: a, value: '5'}], terms: [{name: a, expr: sum(x) / $a}]}",
    "score: {params: {a: 5}, expr: sum(x)}",
    "score: {expr: sum(x), on_stale: -1}",
    "score: {expr: sum(x), on_missing: .nan}",
    "score: {expr: sum(x), on_missing: yes}",
    "score: {expr: 'rate(x[2h])'}",
    "score: {expr: 'sum(x) / $nope'}",
    "score: {expr: '$'}",
    "score: {expr: sum(x), extra: 1}",
    "score: {}",
]


@pytest.mark.parametrize("block", BAD_BLOCKS)
def test_bad_score_blocks_are_clear_lines_never_a_traceback(tmp_path, block):
    got = problems(tmp_path, block + "\n" + RULE)
    assert got and all("\n" not in line and line.startswith(str(tmp_path / "r.yaml") + ":") for line in got)
