"""Differential run: seeded random PromQL cases through this evaluator and the real `promtool`.

Each case is a few series in promtool's expanding notation, one expression and one evaluation
time. All cases go into one `promtool test rules` file, each expecting nothing, so promtool prints
what it got for every case with a result (`got: {labels} value, ...`) or its error (`err: ...`);
cases with an empty result print nothing. The same series are loaded into a History and the
expression evaluated here; any disagreement is a failure, unless `declared()` names it as one
of the differences docs/promql-subset.md lists.

Evaluation times sit half-way between samples (every minute from 0), so no sample ever lies on
a window edge: there Prometheus 2.x (closed windows) and 3 (left-open, what this evaluator does)
differ by design, and Debian's promtool is 2.42.

    .venv/bin/python -m tests.promtool_differential --cases 20000 --seed 7
"""

import argparse
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from exporter.core.history import History
from exporter.promql import PromQLError, compile_expr, evaluate

SAMPLES = 10  # one a minute, at 0..9m
VALUES = ["0", "1", "1", "2", "2", "3", "5", "-1", "0.5", "NaN", "Inf", "-Inf"]
DATE_VALUES = VALUES + ["1e12", "-1e12", "1700000000", "1e19", "-62135596801", "951782400"]
RANGES = ["2m", "3m", "5m", "10m"]
LE = ["0.1", "1", "10", "+Inf"]

_AGGREGATIONS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
_RANGE_FUNCTIONS = [
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
]
_DATE_FUNCTIONS = ["hour", "minute", "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month", "year"]
_ELEMENTWISE = ["abs", "ceil", "floor", "sgn", "sqrt", "exp", "ln"]


@dataclass
class Case:
    name: str  # the metric name, unique per case, so promtool's output maps back to it
    series: list  # [(labels dict, [value text, ...])]
    expr: str
    at: float  # seconds


def _series_text(labels: dict) -> str:
    name = labels["__name__"]
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else name


def generate(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        kind = rng.random()
        name = f"m{i}"
        if kind < 0.15:
            cases.append(_histogram_case(rng, name))
            continue
        values = DATE_VALUES if kind < 0.25 else VALUES
        series = []
        for a in rng.sample(["1", "2", "3", "4", "5"], rng.randint(1, 5)):
            labels = {"__name__": name, "a": a, "b": rng.choice(["x", "y"])}
            series.append((labels, [rng.choice(values) for _ in range(SAMPLES)]))
        m = name
        r = rng.choice(RANGES)
        templates = (
            [f"{fn}({m})" for fn in _DATE_FUNCTIONS]
            if kind < 0.25
            else [
                m,
                f"{rng.choice(_AGGREGATIONS)}({m})",
                f"{rng.choice(_AGGREGATIONS)} by (b) ({m})",
                f"quantile({rng.choice(['0', '0.25', '0.5', '0.9', '1'])}, {m})",
                f"topk({rng.randint(1, 4)}, {m})",
                f"bottomk({rng.randint(1, 4)}, {m})",
                f"topk by (b) ({rng.randint(1, 3)}, {m})",
                f"bottomk by (b) ({rng.randint(1, 3)}, {m})",
                f"{rng.choice(_RANGE_FUNCTIONS)}({m}[{r}])",
                f"predict_linear({m}[{r}] offset {rng.choice(['1m', '2m', '3m'])}, {rng.choice([0, 60, 300])})",
                f"predict_linear({m}[{r}], {rng.choice([0, 60, 300])})",
                f"deriv({m}[{r}] offset 1m)",
                f"{m} > {rng.choice(['0', '1', '2'])}",
                f"{m} > bool 1",
                f"{m} * 2 - {m}",
                f"{rng.choice(_ELEMENTWISE)}({m})",
                f"clamp({m}, -1, 2)",
            ]
        )
        at = rng.randrange(SAMPLES + 2) * 60 + 30
        cases.append(Case(name, series, rng.choice(templates), at))
    return cases


def _histogram_case(rng: random.Random, name: str) -> Case:
    series = []
    bucket = f"{name}_bucket"
    for a in rng.sample(["1", "2"], rng.randint(1, 2)):
        counts = sorted(rng.randint(0, 20) for _ in LE)
        for le, count in zip(LE, counts):
            text = "NaN" if rng.random() < 0.25 else str(count)
            series.append(({"__name__": bucket, "a": a, "le": le}, [text] * SAMPLES))
    q = rng.choice(["0", "0.1", "0.25", "0.5", "0.9", "0.99", "1"])
    return Case(name, series, f"histogram_quantile({q}, {bucket})", rng.randrange(SAMPLES) * 60 + 30)


def ours(case: Case):
    """('ok', {labels: value}) or ('err', message) from this evaluator."""
    history = History(retention_seconds=math.inf)
    for labels, values in case.series:
        history.load_series(tuple(labels.items()), [(i * 60.0, float(v)) for i, v in enumerate(values)])
    try:
        result = evaluate(compile_expr(case.expr), history, case.at)
    except PromQLError as err:
        return "err", str(err)
    if isinstance(result, float):
        return "ok", {(): result}
    return "ok", {tuple(sorted(labels)): value for labels, value in result}


def run_promtool(cases: list[Case], timeout: float) -> dict:
    """{metric name: ('ok', {labels: value}) | ('err', message)} from promtool; absent = empty."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise RuntimeError("promtool is not installed (Debian package prometheus)")
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": _series_text(labels), "values": " ".join(values)} for labels, values in c.series
            ],
            "promql_expr_test": [{"expr": c.expr, "eval_time": f"{int(c.at)}s", "exp_samples": []}],
        }
        for c in cases
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.yaml"
        path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}))
        done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=timeout)
    return parse_output(done.stdout + done.stderr)


_EXPR = re.compile(r'^\s*expr: "(?P<expr>.*)", time: (?P<time>[^,]+),(?: err: (?P<err>.*))?$')
_GOT = re.compile(r"^\s*got: (?P<got>.*)$")
_SAMPLE = re.compile(r"\{(?P<labels>[^}]*)\} (?P<value>[^,\s]+)")
_LABEL = re.compile(r'(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>[^"]*)"')
_NAME = re.compile(r"\b(m\d+)(?:_bucket)?\b")


def parse_output(text: str) -> dict:
    found: dict = {}
    current = None
    for line in text.splitlines():
        head = _EXPR.match(line)
        if head:
            name = _NAME.search(head["expr"].replace('\\"', '"'))
            current = name.group(1) if name else None
            if current and head["err"] is not None:
                found[current] = ("err", head["err"])
                current = None
            continue
        got = _GOT.match(line)
        if got and current:
            samples = {}
            for sample in _SAMPLE.finditer(got["got"]):
                labels = tuple(sorted((m["name"], m["value"]) for m in _LABEL.finditer(sample["labels"])))
                samples[labels] = float(sample["value"])
            found[current] = ("ok", samples)
            current = None
    return found


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12


TIES = "topk/bottomk: another series among equal values"
STDDEV = "stddev/stdvar of a group with NaN or ±Inf: NaN"
ZERO_POINT = "rate/increase: the zero point limits extrapolation after the half-interval choice"
DECLARED = (TIES, STDDEV, ZERO_POINT)


def declared(case: Case, mine, theirs) -> str | None:
    """The documented difference a disagreement falls under, or None.

    Each reason here is listed in docs/promql-subset.md; anything else is a failure."""
    if mine[0] == "err" and theirs[0] == "err":
        return "both fail"  # messages differ in wording across versions; failing alike agrees
    if mine[0] != "ok" or theirs[0] != "ok":
        return None
    head = case.expr.split("(")[0].split(" ")[0]
    if head in ("topk", "bottomk") and _same_values(mine[1], theirs[1]):
        # promtool loads a test's series from a Go map, so the order Prometheus' heap sees them
        # in, and with it the choice among equal values, changes from run to run.
        return TIES
    if head in ("stddev", "stdvar") and _any_value(case, lambda v: not math.isfinite(v)):
        return STDDEV
    if head in ("rate", "increase") and _zero_point_case(case):
        return ZERO_POINT
    return None


def _same_values(mine: dict, theirs: dict) -> bool:
    def key(v):
        return (math.isnan(v), 0.0 if math.isnan(v) else v)

    return sorted(map(key, mine.values())) == sorted(map(key, theirs.values()))


def _current_values(case: Case) -> list[float]:
    index = min(int(case.at // 60), SAMPLES - 1)
    return [float(values[index]) for _, values in case.series if case.at - index * 60 < 300]


def _any_value(case: Case, test) -> bool:
    return any(test(v) for v in _current_values(case))


def _zero_point_case(case: Case) -> bool:
    """Where Prometheus 2.x and 3 order the two limits on extrapolating to the window start
    differently: the window starts more than 1.1 sample intervals before its first sample."""
    rng = int(re.search(r"\[(\d+)m\]", case.expr).group(1)) * 60
    start = case.at - rng
    times = [t for t in range(0, SAMPLES * 60, 60) if start < t <= case.at]
    return len(times) >= 2 and times[0] - start >= 1.1 * 60


def differences(cases: list[Case], timeout: float = 300.0) -> tuple[list, dict]:
    """([(case, ours, promtool's)], {declared reason: count}) over all cases."""
    theirs_all = run_promtool(cases, timeout)
    bad, declared_counts = [], {}
    for case in cases:
        mine = ours(case)
        theirs = theirs_all.get(case.name, ("ok", {}))
        agree = mine[0] == theirs[0] == "ok" and mine[1].keys() == theirs[1].keys()
        if agree and all(_same(mine[1][k], theirs[1][k]) for k in mine[1]):
            continue
        reason = declared(case, mine, theirs)
        if reason:
            declared_counts[reason] = declared_counts.get(reason, 0) + 1
            continue
        bad.append((case, mine, theirs))
    return bad, declared_counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=10, help="differences printed in full")
    args = parser.parse_args(argv)
    cases = generate(args.cases, args.seed)
    bad, declared_counts = differences(cases)
    print(f"{len(cases)} cases, {len(bad)} undeclared differences, declared: {declared_counts or 'none'}")
    for case, mine, theirs in bad[: args.show]:
        print(f"\n{case.expr} at {case.at:g}s")
        for labels, values in case.series:
            print(f"  {_series_text(labels)} {' '.join(values)}")
        print(f"  ours:     {mine}\n  promtool: {theirs}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
