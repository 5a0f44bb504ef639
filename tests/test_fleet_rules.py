"""The fleet: block as `llm-healthcheck check` and a reload read it: every problem one line,
file:line:col, the secret in a URL never repeated."""

import pytest

from exporter.config.errors import ConfigError
from exporter.rules.loader import load_rules

RULES = """rules:
  - name: q
    expr: sum(tgi_queue_size)
    above: 10
"""


def problems(tmp_path, text: str, *more: str) -> list[str]:
    files = []
    for i, body in enumerate((text, *more)):
        path = tmp_path / f"r{i}.yaml"
        path.write_text(body)
        files.append(str(path))
    with pytest.raises(ConfigError) as err:
        load_rules(files)
    return [str(p).replace(str(tmp_path) + "/", "") for p in err.value.problems]


def test_a_full_block_loads_with_its_defaults(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text(
        """fleet:
  url: https://user:pw@thanos.example:10902/prefix/api/v1/query
  max_unready_fraction: 0
  queries:
    - name: peer_queue
      expr: quantile(0.5, sum by (pod) (tgi_queue_size{namespace="llm"}))
    - name: unready
      expr: count(llm_healthcheck_ready{namespace="llm"} == 0)
    - name: pods
      expr: count(llm_healthcheck_ready{namespace="llm"})
"""
        + RULES
    )
    fleet = load_rules([str(path)]).fleet
    assert (fleet.interval, fleet.timeout, fleet.max_age, fleet.max_unready_fraction) == (15.0, 5.0, 35.0, 0.0)
    assert [name for name, _ in fleet.queries] == ["pods", "unready", "peer_queue"]
    assert fleet.series_names == {"fleet:pods", "fleet:unready", "fleet:peer_queue"}


def test_every_problem_of_a_block_is_one_line_at_its_spot(tmp_path):
    got = problems(
        tmp_path,
        """fleet:
  url: http://fleet:s3cret@prometheus:9090/metrics
  interval: 10s
  timeout: 10s
  max_age: 5s
  max_unready_fraction: 1
  queries:
    - name: pods
      expr: count(up
    - name: peer-queue
      expr: up
    - name: pods
      expr: up
"""
        + RULES,
    )
    assert got == [
        'r0.yaml:2:8: url: "http://***@prometheus:9090/metrics" is not an instant-query endpoint; give the whole '
        "URL, ending in /api/v1/query (for example http://prometheus.monitoring:9090/api/v1/query)",
        'r0.yaml:4:12: timeout: "10s" must be less than interval ("10s"), or query rounds would overlap',
        'r0.yaml:5:12: max_age: "5s" must be at least interval ("10s"), or every answer would be too old before '
        "the next one arrives",
        "r0.yaml:6:3: max_unready_fraction needs a query named unready (pods: how many pods the fleet has; unready: "
        "how many of them are unready)",
        'r0.yaml:6:25: max_unready_fraction: "1" must be at least 0 and below 1 (the share of the fleet\'s pods '
        "that may be unready before the guard keeps this pod in)",
        'r0.yaml:9:13: query "pods": expr: parse error: unclosed left parenthesis',
        'r0.yaml:10:13: name: "peer-queue" is not a usable query name; rules read it as fleet:<name>, so use '
        "letters, digits and _, starting with a letter or _, at most 64 characters",
        'r0.yaml:12:13: name: "pods" is already the name of another query in this block',
    ]


def test_schema_problems_name_the_key(tmp_path):
    got = problems(tmp_path, "fleet:\n  url: prometheus:9090\n  interval: 15\n  query: []\n" + RULES)
    assert got == [
        'r0.yaml:2:3: missing required key "queries"',
        'r0.yaml:2:8: url: "prometheus:9090" is not an http:// or https:// URL',
        'r0.yaml:3:13: interval: bare number "15" has no unit; write "15s"',
        'r0.yaml:4:3: unknown key "query"; did you mean queries?',
    ]


def test_a_rule_reading_a_query_the_block_lacks_is_an_error_in_any_file(tmp_path):
    fleet = "fleet:\n  url: http://p:9090/api/v1/query\n  queries:\n    - name: peer_queue\n      expr: up\n"
    rule = "rules:\n  - name: q2\n    expr: sum(tgi_queue_size) - on() fleet:peer_queu\n    above: 1\n"
    assert problems(tmp_path, fleet + RULES, rule) == [
        'r1.yaml:3:11: rule "q2": expr: reads fleet:peer_queu, but the fleet block has no query named "peer_queu" '
        "(it has fleet:peer_queue)"
    ]
    # Without a block a pack may read fleet series: no data until an operator adds one.
    standalone = tmp_path / "alone.yaml"
    standalone.write_text(rule)
    assert load_rules([str(standalone)]).fleet is None


def test_only_one_file_may_carry_the_block(tmp_path):
    fleet = "fleet:\n  url: http://p:9090/api/v1/query\n  queries:\n    - name: pods\n      expr: count(up)\n"
    assert problems(tmp_path, fleet + RULES, fleet) == [
        "r1.yaml:1:1: only one file may have a fleet block; the first is at r0.yaml:1:1"
    ]


def test_check_prints_the_fleet_block_without_its_secret(tmp_path, capsys):
    from exporter.cli import main

    path = tmp_path / "fleet.yaml"
    path.write_text(
        "fleet:\n  url: http://u:s3cret@prometheus:9090/api/v1/query\n  interval: 30s\n"
        "  max_unready_fraction: 0.5\n  queries:\n    - name: pods\n      expr: count(up)\n"
        "    - name: unready\n      expr: count(up == 0)\n" + RULES
    )
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "fleet: http://***@prometheus:9090/api/v1/query every 30s (timeout 5s, max_age 1m5s); "
        "series fleet:pods, fleet:unready; fail-open guard at max_unready_fraction 0.5"
    )


def test_rules_reading_the_fleet_view_are_unit_tested_with_fleet_input_series(tmp_path, capsys):
    from exporter.cli import main

    (tmp_path / "pack.yaml").write_text(
        "fleet:\n  url: http://p:9090/api/v1/query\n  queries:\n    - name: peer_queue\n      expr: up\n"
        "rules:\n  - name: busier_than_peers\n    expr: sum(tgi_queue_size) - on() fleet:peer_queue\n    above: 8\n"
    )
    test = tmp_path / "pack.test.yaml"
    test.write_text(
        "rule_files: [pack.yaml]\ntests:\n  - interval: 1s\n    input_series:\n"
        "      - series: tgi_queue_size\n        values: '20x10'\n"
        "      - series: 'fleet:peer_queue'\n        values: '15x4 2x5'\n"
        "    expect:\n"
        "      - eval_time: 3s\n        rules: {busier_than_peers: {state: ok, value: 5}}\n        ready: true\n"
        "      - eval_time: 7s\n        rules: {busier_than_peers: {state: firing, value: 18}}\n        ready: false\n"
    )
    assert main(["test", str(test)]) == 0
    assert capsys.readouterr().out.strip() == f"{test}: ok: 6 checks in 1 test"
