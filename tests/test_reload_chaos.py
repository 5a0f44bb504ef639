"""Reload chaos: a ConfigMap-style rules directory swapped a thousand times, good and broken
alternately, while the evaluator cycles (real scrapes of a loopback upstream) and probe threads
read every decision it publishes.

Never a half-applied rule set: each published decision's rules, and the rule states beside
them, come from exactly one of the good sets, whole. Reload counters are exact.
"""

import shutil
import threading

import pytest

from exporter.config.settings import load_settings
from exporter.rules.loader import load_rules
from exporter.serve.evaluator import Evaluator
from tests.configmap import ConfigMapDir
from tests.support import RawUpstream, http_answer

SWAPS = 1_000
BODY = b"tgi_queue_size 4\ntgi_batch_current_size 60\n"


@pytest.fixture
def upstream():
    # Answers in one write: a header write and a body write would meet Nagle and delayed ACKs
    # and cost 40 ms per scrape, a minute and a half over this test's 2,000 scrapes.
    server = RawUpstream(http_answer(BODY))
    yield server
    server.close()


def _rule(name: str, expr: str, above: float, extra: str = "") -> str:
    return f"  - name: {name}\n    expr: {expr}\n    above: {above}\n{extra}"


# Two good sets, each split over two files as a ConfigMap with two keys would be. The rule
# names say which set a rule came from, so a mix of the two is visible.
GOOD = {
    "A": {
        "a-queue.yaml": "rules:\n" + _rule("a_queue", "sum(tgi_queue_size)", 10, "    for: 5s\n"),
        "b-batch.yaml": "rules:\n" + _rule("a_batch", "sum(tgi_batch_current_size)", 100),
    },
    "B": {
        "a-queue.yaml": "rules:\n" + _rule("b_queue", "sum(tgi_queue_size)", 3),
        "b-batch.yaml": "rules:\n" + _rule("b_batch", "max(tgi_batch_current_size)", 50, "    keep_firing_for: 10s\n"),
    },
}
NAMES = {"A": frozenset({"a_queue", "a_batch"}), "B": frozenset({"b_queue", "b_batch"})}

# Every way an edit can break a rule set; each keeps one good file beside the broken one, so a
# loader that applied what it could would publish a partial set.
BROKEN = [
    {**GOOD["A"], "b-batch.yaml": "rules:\n  - name: x\n    expr: [unclosed\n"},  # YAML syntax
    {**GOOD["B"], "b-batch.yaml": "rules:\n" + _rule("x", "sum(y)", 1, "    threshold: 5\n")},  # schema
    {**GOOD["A"], "b-batch.yaml": "rules:\n" + _rule("x", "sum(rate(y[5m])", 1)},  # PromQL syntax
    {**GOOD["B"], "b-batch.yaml": "rules:\n" + _rule("x", 'label_join(y, "a", ",", "b")', 1)},  # outside subset
    {**GOOD["A"], "b-batch.yaml": "rules:\n" + _rule("a_queue", "sum(y)", 1)},  # duplicate name across files
    {**GOOD["B"], "b-batch.yaml": "scrape:\n  interval: 1s\n  timeout: 2s\nrules:\n" + _rule("x", "sum(y)", 1)},
    {"a-queue.yaml": "rules: []\n", "b-batch.yaml": "rules: []\n"},  # no rules at all
    {**GOOD["A"], "b-batch.yaml": "\x00\x01\x02 not yaml"},  # binary garbage
    {**GOOD["B"], "b-batch.yaml": "rules:\n" + _rule("x", "sum(y)", 1, "    for: 5\n")},  # duration without unit
]


@pytest.fixture
def good_hashes(tmp_path):
    """The sha256 each good set loads with, from a plain directory of its own."""
    hashes = {}
    for key, files in GOOD.items():
        plain = tmp_path / f"plain-{key}"
        plain.mkdir()
        for name, text in files.items():
            (plain / name).write_text(text)
        hashes[load_rules([str(plain)]).sha256] = key
    return hashes


class Probes:
    """Threads reading every decision as /health, /rules and /metrics do, checking each whole."""

    def __init__(self, evaluator, good_hashes: dict, threads: int = 2):
        self._evaluator = evaluator
        self._hashes = good_hashes
        self._stop = threading.Event()
        self.reads = 0
        self.problems = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self):
        for _ in range(10_000_000):  # bounded; ends when stopped
            if self._stop.is_set():
                return
            problem = whole_set_problem(self._evaluator.decision, self._hashes)
            self.reads += 1
            if problem and len(self.problems) < 20:
                self.problems.append(problem)
            self._stop.wait(0.0005)  # a probe rate, not a busy loop holding the GIL

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def reload_counts(decision) -> dict:
    return {result: decision.reload.counts.get(result, 0) for result in ("success", "failure")}


def whole_set_problem(decision, good_hashes: dict) -> str | None:
    names = frozenset(rule.name for rule in decision.ruleset.rules)
    key = good_hashes.get(decision.ruleset.sha256)
    if key is None or names != NAMES[key]:
        return f"published rules {sorted(names)} (sha {decision.ruleset.sha256[:12]}) are not one good set"
    if decision.rules:
        if {s.rule.name for s in decision.rules} != names:
            return f"rule states {sorted(s.rule.name for s in decision.rules)} do not match rules {sorted(names)}"
        if any(s.rule not in decision.ruleset.rules for s in decision.rules):
            return "a rule state belongs to a rule outside the published set"
    return None


def test_a_thousand_alternating_good_and_broken_swaps(tmp_path, clock, upstream, good_hashes):
    volume = ConfigMapDir(tmp_path / "rules", GOOD["A"])
    settings = load_settings(
        {"RULES_PATH": str(volume.root), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "1s"}
    )
    evaluator = Evaluator(settings, clock=clock)
    probes = Probes(evaluator, good_hashes)
    current, expected = "A", {"success": 0, "failure": 0}
    try:
        for swap in range(SWAPS):
            if swap % 2 == 0:
                volume.swap(BROKEN[(swap // 2) % len(BROKEN)])
                expected["failure"] += 1
            else:
                current = "B" if current == "A" else "A"  # always a change from what is loaded
                volume.swap(GOOD[current])
                expected["success"] += 1
            clock.advance(1.0)
            evaluator.maybe_reload()
            decision = evaluator.cycle()
            assert decision.scrape.ok, decision.scrape.error
            assert good_hashes[decision.ruleset.sha256] == current, f"swap {swap}"
            assert reload_counts(decision) == expected, f"swap {swap}"
            assert decision.reload.last_ok is (swap % 2 == 1), f"swap {swap}"
            assert whole_set_problem(decision, good_hashes) is None
            # A later cycle with no swap reloads nothing: the poll compares content hashes.
            clock.advance(1.0)
            evaluator.maybe_reload()
            assert reload_counts(evaluator.cycle()) == expected
    finally:
        probes.stop()
    assert probes.problems == []
    assert probes.reads > SWAPS  # the probes really ran alongside
    assert upstream.requests == 2 * SWAPS


def test_swaps_racing_reloads_never_publish_a_mix(tmp_path, clock, upstream, good_hashes):
    """The kubelet swaps `..data` whenever it likes, also while a reload is reading the files
    one after another; a reload must still load one version whole (or fail and keep the old)."""
    volume = ConfigMapDir(tmp_path / "rules", GOOD["A"])
    settings = load_settings(
        {"RULES_PATH": str(volume.root), "METRICS_ENDPOINT": upstream.url, "RELOAD_INTERVAL": "1s"}
    )
    evaluator = Evaluator(settings, clock=clock)
    stop = threading.Event()

    def swapper():
        for n in range(SWAPS):
            if stop.is_set():
                return
            volume.swap(GOOD["B" if n % 2 == 0 else "A"])
            # The kubelet removes the version it replaced.
            target = (volume.root / "..data").readlink().name
            for old in volume.root.glob("..2026_*"):
                if old.name != target:
                    shutil.rmtree(old, ignore_errors=True)

    probes = Probes(evaluator, good_hashes)
    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    try:
        for _ in range(SWAPS):
            clock.advance(1.0)
            evaluator.reload()
            decision = evaluator.cycle()
            assert whole_set_problem(decision, good_hashes) is None
            if not thread.is_alive():
                break
    finally:
        stop.set()
        thread.join(30)
        probes.stop()
    assert probes.problems == []
