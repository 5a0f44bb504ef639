"""Readiness is decided in one place: the sidecar's evaluator, the simulator's sidecar and the
rule-test runner give the same ready/unready sequence for the same pages."""

from exporter.config.settings import load_settings
from exporter.core.rule_tests import run_test_file
from exporter.core.scrape import parse_samples
from exporter.rules.loader import load_rules
from exporter.serve.evaluator import Evaluator
from exporter.sim.sidecar import SimSidecar

RULES = """\
rules:
  - name: queue_saturated
    expr: sum(tgi_queue_size)
    above: 10
    recover_below: 6
    for: 2s
    keep_firing_for: 3s
  - name: queue_warning
    expr: sum(tgi_queue_size)
    above: 4
    severity: warn
"""

# Crosses the trip threshold briefly (pending only), then for long enough to fire, sits in the
# band, recovers, comes back while recovering, and settles.
QUEUE = [3, 12, 14, 5, 11, 12, 13, 15, 9, 7, 5, 4, 12, 3, 2, 2, 2, 2, 2, 8, 12, 12, 12, 1, 1, 1, 1, 1]


def page(value) -> bytes:
    return b"" if value is None else f'tgi_queue_size{{model="m"}} {value}\n'.encode()


def sidecar_sequence(tmp_path, upstream, clock, values) -> list[bool]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    evaluator = Evaluator(load_settings({"METRICS_ENDPOINT": upstream.url, "RULES_PATH": str(rules)}), clock=clock)
    answers = []
    for value in values:
        upstream.body = page(value)
        answers.append(evaluator.cycle().ready)
        clock.advance(1)
    evaluator.stop()
    return answers


def simulator_sequence(tmp_path, values) -> list[bool]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    ruleset = load_rules([str(rules)])
    sidecar = SimSidecar(ruleset)
    # The simulator hands its sidecar an empty sample list where the server printed nothing.
    pages = [() if v is None else parse_samples(page(v), ruleset.metric_names) for v in values]
    return [sidecar.evaluate(float(t), samples) for t, samples in enumerate(pages)]


def rule_test_report(tmp_path, values, expected):
    (tmp_path / "rules.yaml").write_text(RULES)
    lines = [
        "rule_files: [rules.yaml]",
        "tests:",
        "  - name: the same pages",
        "    input_series:",
        "      - series: 'tgi_queue_size{model=\"m\"}'",
        f"        values: '{' '.join(str(v) for v in values)}'",
        "    expect:",
    ]
    lines += [f"      - {{eval_time: {t}s, ready: {'true' if ready else 'false'}}}" for t, ready in enumerate(expected)]
    test_file = tmp_path / "same.test.yaml"
    test_file.write_text("\n".join(lines) + "\n")
    return run_test_file(str(test_file))


def test_sidecar_simulator_and_rule_tests_agree_on_every_cycle(tmp_path, upstream, clock):
    sidecar = sidecar_sequence(tmp_path, upstream, clock, QUEUE)
    # The sequence exercises the policy: out after `for`, held by keep_firing_for, back in.
    assert True in sidecar and False in sidecar
    assert simulator_sequence(tmp_path, QUEUE) == sidecar
    report = rule_test_report(tmp_path, QUEUE, sidecar)
    assert report.problems == [] and report.failures == []
    assert report.checks == len(QUEUE)


def test_rule_tests_would_notice_a_different_answer(tmp_path, upstream, clock):
    sidecar = sidecar_sequence(tmp_path, upstream, clock, QUEUE)
    flipped = list(sidecar)
    flipped[7] = not flipped[7]
    report = rule_test_report(tmp_path, QUEUE, flipped)
    assert len(report.failures) == 1 and "at 7s" in report.failures[0]


def test_sidecar_and_simulator_agree_on_empty_pages(tmp_path, upstream, clock):
    # TGI prints nothing before its first request; on_empty=ready is the seed's behaviour and
    # rule states are held meanwhile.
    values = [12, 12, 12, None, None, 3, None, 3, 3, 3, 3, 12, None, 12, 12]
    sidecar = sidecar_sequence(tmp_path, upstream, clock, values)
    assert simulator_sequence(tmp_path, values) == sidecar
