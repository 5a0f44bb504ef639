"""`check --against URL|FILE`: metric names the page lacks are found before deploy, with the
closest names it has; warnings exit 0, --strict exits 1, an unreadable page exits 2.
Real subprocesses, the real shipped packs and captures, a real loopback upstream."""

import re
import subprocess
import sys

from tests.support import FIXTURES, REPO, free_port

TGI_PAGE = FIXTURES / "tgi-datadog-integrations-core-3.3.5.prom"
VLLM_PAGE = FIXTURES / "vllm-datadog-integrations-core-v0-plus-v1-handmerged.prom"


def run_check(*args):
    return subprocess.run(
        [sys.executable, "-m", "exporter", "check", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _line_of(path, text: str) -> int:
    """1-based number of the first line that is exactly `text`."""
    return path.read_text().splitlines().index(text) + 1


def vllm_families() -> set[str]:
    text = (REPO / "rules" / "vllm.yaml").read_text()
    return set(re.findall(r"vllm:[a-zA-Z0-9_:]+", text))


def test_vllm_pack_against_a_tgi_page_lists_every_vllm_family():
    result = run_check("--against", TGI_PAGE, "rules/vllm.yaml")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if ": warning: " in line]
    named = {re.search(r'metric family "([^"]+)"', line).group(1) for line in warnings}
    assert named == vllm_families()
    for line in warnings:
        assert re.match(r'^rules/vllm\.yaml:\d+:\d+: rule "vllm_\w+": warning: metric family "vllm:', line), line
        assert "did you mean tgi_" in line or line.endswith("the page has no similar name"), line
    waiting = next(line for line in warnings if '"vllm:num_requests_waiting"' in line)
    expr_line = _line_of(REPO / "rules" / "vllm.yaml", "    expr: sum(vllm:num_requests_waiting)")
    assert waiting == (
        f'rules/vllm.yaml:{expr_line}:11: rule "vllm_queue_saturated": warning: metric family '
        '"vllm:num_requests_waiting" is absent from the page; did you mean tgi_queue_size?'
    )
    running = next(line for line in warnings if '"vllm:num_requests_running"' in line)
    assert running.endswith("did you mean tgi_batch_current_size?")
    assert result.stderr.splitlines()[-1] == f"{len(warnings)} metric families absent from {TGI_PAGE}"

    strict = run_check("--strict", "--against", TGI_PAGE, "rules/vllm.yaml")
    assert strict.returncode == 1
    assert strict.stderr == result.stderr


def test_the_vllm_pack_against_a_vllm_page_is_clean_and_or_alternatives_are_not_absent():
    result = run_check("--strict", "--against", VLLM_PAGE, "rules/vllm.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"every metric family the rules read is on {VLLM_PAGE}"


def test_a_typo_gets_the_right_suggestion_from_a_live_endpoint(upstream, tmp_path):
    upstream.body = TGI_PAGE.read_bytes()
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - name: queue\n    expr: sum(tgi_queue_sizee)\n    above: 15\n")
    result = run_check("--strict", "--against", upstream.url, rules)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'{rules}:3:11: rule "queue": warning: metric family "tgi_queue_sizee" is absent from the page; '
        "did you mean tgi_queue_size?",
        f"1 metric family absent from {upstream.url}",
    ]


def test_an_unreachable_page_is_one_line_exit_2(tmp_path):
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/metrics"
    result = run_check("--against", url, "rules/tgi.yaml")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("llm-healthcheck: cannot scrape http://***@127.0.0.1:") and "hunter2" not in line
    missing = run_check("--against", tmp_path / "nope.prom", "rules/tgi.yaml")
    assert missing.returncode == 2
    assert missing.stderr == f"llm-healthcheck: {tmp_path / 'nope.prom'}: cannot read: no such file or directory\n"
