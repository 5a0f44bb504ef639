"""The evaluator against the real promtool (Debian's prometheus package, installed by .ci/run):
a few thousand seeded random cases, every disagreement either declared in
docs/promql-subset.md or a failure. See tests/promtool_differential.py for how cases are made."""

import math
import os

from tests import promtool_differential as diff
from tests.support import REPO, require_tool

CASES = int(os.environ.get("PROMTOOL_DIFF_CASES", "2000"))
SEED = int(os.environ.get("PROMTOOL_DIFF_SEED", "20261204"))


def test_evaluator_agrees_with_promtool_on_seeded_cases():
    require_tool("promtool", "apt-get install prometheus")
    cases = diff.generate(CASES, SEED)
    bad, declared = diff.differences(cases, timeout=240)
    shown = "\n".join(f"{c.expr} at {c.at:g}s: ours {m} promtool {t}" for c, m, t in bad[:10])
    assert not bad, f"{len(bad)} of {len(cases)} cases differ from promtool:\n{shown}"
    print(f"promtool differential: {len(cases)} cases, declared differences {declared}")


def test_every_declared_reason_is_documented():
    doc = (REPO / "docs/promql-subset.md").read_text()
    for reason in diff.DECLARED:
        assert f"`{reason}`" in doc, reason


def test_the_output_parser_reads_promtool_answers():
    # A case of each shape promtool prints: a result, an error, and nothing (empty result).
    cases = [
        diff.Case("m0", [({"__name__": "m0", "a": "1"}, ["1"] * 10)], "m0 * 2", 30),
        diff.Case("m1", [({"__name__": "m1", "a": "1"}, ["1"] * 10)], "hour(m1 * NaN)", 30),
        diff.Case("m2", [({"__name__": "m2", "a": "1"}, ["1"] * 10)], "m2 > 5", 30),
    ]
    got = diff.run_promtool(cases, timeout=60)
    assert got["m0"] == ("ok", {(("a", "1"),): 2.0})
    assert got["m1"][0] == "ok" and not math.isnan(got["m1"][1][(("a", "1"),)])
    assert "m2" not in got
