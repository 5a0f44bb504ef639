"""The alert rules load in Prometheus, their unit tests pass, and they read only real metrics.

promtool (Debian's `prometheus` package, installed by .ci/run) checks and unit-tests the rules
for real; the PrometheusRule for the Operator must carry exactly the same groups."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent / "containers"))
from promql_refs import ALERTS, FLEET_METRICS, OWN_METRICS, REPO, alert_exprs, metric_names

from tests.support import require_tool

ALERT_TESTS = ALERTS.with_name("alerts.test.yaml")
PROMETHEUS_RULE = REPO / "deploy" / "kubernetes" / "monitoring" / "prometheusrule.yaml"

# What issue 6 asks the alerts to catch, and the alert that does.
REQUIRED_ALERTS = {
    "pod unready too long": "LLMHealthcheckPodUnreadyTooLong",
    "readiness flapping": "LLMHealthcheckReadinessFlapping",
    "scrape failing": "LLMHealthcheckScrapeFailing",
    "scrape stale": "LLMHealthcheckScrapeStale",
    "rules reload failed": "LLMHealthcheckRulesReloadFailed",
    "every replica unready at once": "LLMHealthcheckAllReplicasUnready",
}


def _promtool() -> str:
    return require_tool("promtool", "apt-get install prometheus")


def _run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules_file():
    result = _run(_promtool(), "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_exprs())} rules found" in result.stdout


def test_alert_unit_tests_pass():
    result = _run(_promtool(), "test", "rules", ALERT_TESTS.name, cwd=ALERTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_catch_a_changed_alert(tmp_path):
    """The unit tests pin behaviour: an alert that fires sooner than promised makes them fail."""
    text = ALERTS.read_text()
    changed, count = re.subn(r"(alert: LLMHealthcheckPodUnreadyTooLong\n(?:.*\n)*?\s+for: )15m", r"\g<1>1m", text)
    assert count == 1
    (tmp_path / "alerts.yaml").write_text(changed)
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    result = _run(_promtool(), "test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "LLMHealthcheckPodUnreadyTooLong" in result.stdout + result.stderr


def test_every_required_alert_exists_and_is_unit_tested():
    tested = {
        case["alertname"]
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    alerts = alert_exprs()
    for purpose, name in REQUIRED_ALERTS.items():
        assert name in alerts, f"no alert for {purpose}"
    untested = set(alerts) - tested
    assert not untested, f"alerts without a promtool unit test: {sorted(untested)}"


def test_alerts_read_only_the_sidecars_own_metrics():
    for name, expr in alert_exprs().items():
        unknown = metric_names(expr) - OWN_METRICS - FLEET_METRICS
        assert not unknown, f"{name} reads metrics the sidecar does not export: {sorted(unknown)}"


def test_every_alert_says_how_bad_and_what_happened():
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
            assert rule["annotations"]["summary"].strip(), rule["alert"]
            assert rule["annotations"]["description"].strip(), rule["alert"]


def test_prometheus_rule_embeds_the_same_groups():
    operator_rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert operator_rule["kind"] == "PrometheusRule"
    assert operator_rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_promtool_accepts_the_prometheus_rule_groups(tmp_path):
    """Checked on its own too, so a hand edit that keeps both copies equal but breaks the
    Operator's copy (for instance its YAML indentation) is still caught."""
    groups = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]["groups"]
    extracted = tmp_path / "prometheusrule-groups.yaml"
    extracted.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = _run(_promtool(), "check", "rules", str(extracted))
    assert result.returncode == 0, result.stdout + result.stderr
