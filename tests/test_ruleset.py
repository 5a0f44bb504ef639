"""The rule loader through its public API: what load_rules builds, and what it refuses."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.config.errors import ConfigError
from exporter.rules.loader import (
    MAX_FILE_BYTES,
    MAX_RANGE_SECONDS,
    format_duration,
    load_rules,
    parse_duration,
    resolve_rule_files,
    seed_ruleset,
)
from exporter.rules.schema_problems import load_schema

REPO = Path(__file__).resolve().parents[1]

QUEUE = """\
scrape:
  endpoint: http://127.0.0.1:8080/metrics
  interval: 2s
  timeout: 1500ms
  on_failure: hold
  failure_threshold: 3
  on_empty: unready
rules:
  - name: queue_saturated
    expr: sum(tgi_queue_size)
    above: 10
    recover_below: 6
    for: 10s
    keep_firing_for: 1m30s
    description: |
      Drain the pod while the router queue is long.
  - name: stalled
    expr: sum(vllm:num_requests_waiting) > 0 and sum(vllm:num_requests_running) == 0
    for: 20s
    severity: warn
"""


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def problems_of(paths) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_rules(paths)
    return [str(p) for p in caught.value.problems]


def test_loads_rules_and_scrape_block_into_the_shared_model(tmp_path):
    file = write(tmp_path / "rules.yaml", QUEUE)
    ruleset = load_rules([file])
    queue, stalled = ruleset.rules
    assert (queue.name, queue.expr_text, queue.above, queue.recover_below) == (
        "queue_saturated",
        "sum(tgi_queue_size)",
        10.0,
        6.0,
    )
    assert (queue.for_seconds, queue.keep_firing_for_seconds, queue.severity) == (10.0, 90.0, "unready")
    assert queue.description == "Drain the pod while the router queue is long."
    assert queue.source == f"{file}:9"
    assert queue.expr.metric_names == {"tgi_queue_size"}
    assert not stalled.is_threshold and stalled.severity == "warn" and stalled.for_seconds == 20.0
    scrape = ruleset.scrape
    assert (scrape.endpoint, scrape.interval, scrape.timeout) == ("http://127.0.0.1:8080/metrics", 2.0, 1.5)
    assert (scrape.on_failure, scrape.failure_threshold, scrape.on_empty) == ("hold", 3, "unready")
    assert ruleset.files == (file,)
    assert ruleset.metric_names == {"tgi_queue_size", "vllm:num_requests_waiting", "vllm:num_requests_running"}


def test_threshold_zero_is_a_real_threshold_and_missing_scrape_block_leaves_settings_unset(tmp_path):
    file = write(tmp_path / "r.yaml", "rules:\n  - name: any_waiting\n    expr: sum(tgi_queue_size)\n    above: 0\n")
    ruleset = load_rules([file])
    assert ruleset.rules[0].above == 0.0
    assert ruleset.scrape.interval is None and ruleset.scrape.endpoint is None


def test_directory_is_sorted_and_skips_hidden_entries_and_other_suffixes(tmp_path):
    write(tmp_path / "b.yml", "rules:\n  - {name: b, expr: sum(b), above: 1}\n")
    write(tmp_path / "a.yaml", "rules:\n  - {name: a, expr: sum(a), above: 1}\n")
    write(tmp_path / ".hidden.yaml", "not: [valid\n")
    write(tmp_path / "notes.txt", "not yaml: [")
    write(tmp_path / "sub" / "c.yaml", "rules:\n  - {name: c, expr: sum(c), above: 1}\n")
    assert resolve_rule_files(str(tmp_path)) == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yml")]
    assert [r.name for r in load_rules([str(tmp_path)]).rules] == ["a", "b"]


def test_configmap_volume_layout_loads_each_file_once_through_its_symlink(tmp_path):
    # What the kubelet creates: a timestamped dir, `..data` pointing at it, and top-level links.
    stamp = tmp_path / "..2026_01_02_03_04_05.000000001"
    write(stamp / "tgi.yaml", "rules:\n  - {name: q, expr: sum(tgi_queue_size), above: 5}\n")
    os.symlink(stamp.name, tmp_path / "..data")
    os.symlink("..data/tgi.yaml", tmp_path / "tgi.yaml")
    ruleset = load_rules([str(tmp_path)])
    assert [r.name for r in ruleset.rules] == ["q"]
    assert ruleset.files == (str(tmp_path / "tgi.yaml"),)


def test_missing_path_and_empty_directory_are_clear_problems(tmp_path):
    (tmp_path / "empty").mkdir()
    assert problems_of([str(tmp_path / "nope"), str(tmp_path / "empty")]) == [
        f"{tmp_path / 'nope'}: no such file or directory",
        f"{tmp_path / 'empty'}: no *.yaml or *.yml rule files in this directory",
    ]


def test_every_problem_in_every_file_is_collected(tmp_path):
    one = write(tmp_path / "one.yaml", "rules:\n  - name: a\n    expr: sum(x)\n    above: ten\n")
    two = write(tmp_path / "two.yaml", "rules:\n  - name: b\n    expr: sum(y\n    for: 5\n")
    assert problems_of([one, two]) == [
        f'{one}:4:12: rule "a": above: want a number, got "ten"',
        f'{two}:3:11: rule "b": expr: parse error: unclosed left parenthesis',
        f'{two}:4:10: rule "b": for: bare number "5" has no unit; write "5s"',
    ]


def test_duplicate_name_across_files_names_the_first_definition(tmp_path):
    one = write(tmp_path / "1.yaml", "rules:\n  - {name: q, expr: sum(a), above: 1}\n")
    two = write(
        tmp_path / "2.yaml",
        "rules:\n  - name: other\n    expr: sum(b)\n    above: 1\n  - name: q\n    expr: sum(c)\n    above: 2\n",
    )
    assert problems_of([str(tmp_path)]) == [f'{two}:5:11: rule "q": name "q" is already used by the rule at {one}:2']


def test_oversized_file_is_refused_without_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\nrules: []\n")
    assert problems_of([str(big)]) == [
        f"{big}: file is larger than 1 MiB; rule files are small, is this the right file?"
    ]


def test_non_utf8_file_is_a_clear_problem(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("rules:\n  - name: caf\xe9\n".encode("latin-1"))
    assert problems_of([str(bad)]) == [f"{bad}:2:14: not UTF-8 text; save the file as UTF-8"]


def test_yaml_multiple_documents_is_refused(tmp_path):
    file = write(tmp_path / "r.yaml", "rules: []\n---\nrules: []\n")
    assert problems_of([file]) == [
        f"{file}:2:1: invalid YAML: a second document (after ---); a rule file holds one document"
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "  - name: a\n    expr: sum(x)\n    above: yes\n",
            'above: want a number, got "yes" (YAML 1.1 reads yes as the boolean true; quote it if you mean the text)',
        ),
        (
            "  - name: a\n    expr: sum(x)\n    above: 0x10\n",
            'above: "0x10": YAML 1.1 reads 0x10 as 16; write the decimal number',
        ),
        (
            "  - name: a\n    expr: sum(x)\n    above: 1_000\n",
            'above: "1_000": YAML 1.1 reads 1_000 as 1000, ignoring the underscores; write 1000',
        ),
        (
            "  - name: a\n    expr: sum(x)\n    above: 1\n    for: 1:30\n",
            'for: bare number "1:30" has no unit; write "90s" '
            "(YAML 1.1 reads 1:30 as the base-60 number 90; quote it or write the decimal number)",
        ),
        (
            "  - name: a\n    expr: sum(x)\n    above: 5e-1\n",
            'above: want a number, got "5e-1" (YAML 1.1 reads 5e-1 as text, not a number; write 0.5 or 5.0e-1)',
        ),
    ],
)
def test_yaml_1_1_surprises_are_caught_with_a_hint(tmp_path, text, message):
    file = write(tmp_path / "r.yaml", "rules:\n" + text)
    got = problems_of([file])
    assert len(got) == 1
    assert got[0].endswith(f'rule "a": {message}'), got[0]


def test_quoted_yes_is_just_text(tmp_path):
    file = write(
        tmp_path / "r.yaml", "rules:\n  - name: 'yes'\n    expr: sum(x)\n    above: 1\n    description: 'on'\n"
    )
    rule = load_rules([file]).rules[0]
    assert (rule.name, rule.description) == ("yes", "on")


def test_range_and_for_limits_are_enforced_at_the_limit_not_before(tmp_path):
    limit = format_duration(MAX_RANGE_SECONDS)
    ok = write(
        tmp_path / "ok.yaml", f"rules:\n  - name: a\n    expr: sum(rate(x[{limit}]))\n    above: 1\n    for: {limit}\n"
    )
    assert load_rules([ok]).max_range_seconds == MAX_RANGE_SECONDS
    over = format_duration(MAX_RANGE_SECONDS + 1)
    bad = write(
        tmp_path / "bad.yaml",
        f"rules:\n  - name: a\n    expr: sum(rate(x[{over}]))\n    above: 1\n    keep_firing_for: {over}\n",
    )
    assert problems_of([bad]) == [
        f'{bad}:3:11: rule "a": expr: reads a range of {over}, longer than the {limit} of history the sidecar keeps',
        f'{bad}:5:22: rule "a": keep_firing_for: "{over}" is longer than the {limit} limit',
    ]


def test_scalar_expression_is_fine_with_a_threshold(tmp_path):
    file = write(tmp_path / "r.yaml", "rules:\n  - name: a\n    expr: scalar(sum(x))\n    above: 1\n")
    assert load_rules([file]).rules[0].expr.value_type == "scalar"


def test_recover_band_equal_to_trip_threshold_is_allowed(tmp_path):
    file = write(
        tmp_path / "r.yaml",
        "rules:\n  - {name: a, expr: sum(x), above: 5, recover_below: 5}\n"
        "  - {name: b, expr: sum(x), below: 1, recover_above: 1}\n",
    )
    assert [(r.recover_below, r.recover_above) for r in load_rules([file]).rules] == [(5.0, None), (None, 1.0)]


def test_sha256_follows_content_and_names_not_the_spelling_of_the_path(tmp_path, monkeypatch):
    write(tmp_path / "r.yaml", "rules:\n  - {name: a, expr: sum(x), above: 1}\n")
    first = load_rules([str(tmp_path)]).sha256
    monkeypatch.chdir(tmp_path)
    assert load_rules(["./"]).sha256 == first
    write(tmp_path / "r.yaml", "rules:\n  - {name: a, expr: sum(x), above: 2}\n")
    assert load_rules(["./"]).sha256 != first
    assert len(first) == 64


def test_sha256_is_the_same_for_the_same_content_under_other_file_names(tmp_path):
    """Two pods mounting the same rules under different names publish the same rules_info."""
    queue = "rules:\n  - {name: a, expr: sum(x), above: 1}\n"
    kv = "rules:\n  - {name: b, expr: max(y), above: 0.9}\n"
    write(tmp_path / "one" / "tgi.yaml", queue)
    write(tmp_path / "one" / "kv.yaml", kv)
    write(tmp_path / "two" / "a-queue.yml", queue)
    write(tmp_path / "two" / "z-kv.yaml", kv)
    one, two = load_rules([str(tmp_path / "one")]), load_rules([str(tmp_path / "two")])
    assert [r.name for r in one.rules] != [r.name for r in two.rules]  # read in another order
    assert one.sha256 == two.sha256
    write(tmp_path / "two" / "z-kv.yaml", kv + "# reviewed\n")
    assert load_rules([str(tmp_path / "two")]).sha256 != one.sha256


def test_seed_ruleset_is_the_seed_sidecar_as_one_rule():
    ruleset = seed_ruleset("tgi_queue_size", 15)
    (rule,) = ruleset.rules
    assert (rule.name, rule.expr_text, rule.above, rule.severity) == (
        "tgi_queue_size",
        "sum(tgi_queue_size)",
        15.0,
        "unready",
    )
    assert (rule.for_seconds, rule.keep_firing_for_seconds, rule.recover_below) == (0.0, 0.0, None)
    assert ruleset.metric_names == {"tgi_queue_size"}
    assert ruleset.sha256 != seed_ruleset("tgi_queue_size", 16).sha256
    assert seed_ruleset("vllm:num_requests_waiting", 0).rules[0].above == 0.0


def test_seed_ruleset_with_an_unusable_metric_name_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        seed_ruleset("tgi queue", 15)
    (problem,) = caught.value.problems
    assert str(problem).startswith('env METRIC_TO_CHECK: "tgi queue" is not a usable metric name: ')


@pytest.mark.parametrize(
    "text, seconds", [("0", 0), ("800ms", 0.8), ("1m30s", 90), ("1h", 3600), ("2d", 172800), ("1s500ms", 1.5)]
)
def test_parse_duration_reads_prometheus_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1.5s", "10 s", "s", "1s1m", "-1s", "1S"])
def test_parse_duration_refuses_other_spellings(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10 * 365 * 86400 * 1000))
def test_format_then_parse_duration_round_trips(millis):
    assert round(parse_duration(format_duration(millis / 1000)) * 1000) == millis


def test_shipped_schema_is_an_identical_copy_of_the_repository_schema():
    assert (REPO / "schemas" / "rules.schema.json").read_bytes() == (
        REPO / "exporter" / "data" / "rules.schema.json"
    ).read_bytes()
    assert load_schema() == json.loads((REPO / "schemas" / "rules.schema.json").read_text())


def test_schema_describes_every_key_and_closes_every_object():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    seen = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, path
                for key, sub in node["properties"].items():
                    assert sub.get("description"), f"{path}.{key} has no description"
                    seen.append(key)
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(schema, "$")
    assert {
        "scrape",
        "score",
        "params",
        "terms",
        "value",
        "on_missing",
        "on_stale",
        "rules",
        "name",
        "expr",
        "above",
        "below",
        "recover_below",
        "recover_above",
        "for",
        "keep_firing_for",
        "severity",
        "hard_failure",
        "description",
        "endpoint",
        "interval",
        "timeout",
        "on_failure",
        "failure_threshold",
        "on_empty",
        "fleet",
        "url",
        "max_age",
        "max_unready_fraction",
        "queries",
    } == set(seen)


def test_nested_aliases_are_reported_without_being_expanded(tmp_path):
    # Twelve levels of nine aliases each would be 9**12 values if the loader expanded them.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 13):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    file = write(tmp_path / "laughs.yaml", "\n".join(levels) + "\nrules: []\n")
    got = problems_of([file])
    aliases = [p for p in got if "alias *a" in p]
    assert len(aliases) == 12 * 9
    assert got[0] == f'{file}:1:1: unknown key "a0"; known keys: scrape, fleet, score, rules'


def test_absurd_nesting_is_a_problem_not_a_crash(tmp_path):
    file = write(tmp_path / "deep.yaml", "rules: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert problems_of([file]) == [f"{file}:1:1: invalid YAML: nested too deeply"]


def test_control_character_is_located(tmp_path):
    file = write(tmp_path / "ctrl.yaml", "rules:\n  - name: a\x07\n")
    assert problems_of([file]) == [f"{file}:2:12: invalid YAML: control character U+0007 is not allowed"]


def test_wrong_types_name_the_key_and_quote_the_value(tmp_path):
    file = write(
        tmp_path / "types.yaml", "rules:\n  - name: 5\n    expr: 7\n    above: true\n    description: [a]\n  - oops\n"
    )
    assert problems_of([file]) == [
        f'{file}:2:11: name: want text, got "5"',
        f'{file}:3:11: expr: want text, got "7"',
        f'{file}:4:12: above: want a number, got "true"',
        f"{file}:5:18: description: want text, got a list",
        f'{file}:6:5: each entry of rules must be a mapping with name and expr, got "oops"',
    ]
