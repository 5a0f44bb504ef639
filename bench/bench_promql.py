"""Per-cycle cost of the PromQL subset on real captures: record one scrape, evaluate rules.

    .venv/bin/python bench/bench_promql.py [--cycles 300]

Each cycle records the capture (counters and buckets advanced a little, as a live server
would) into a History with ten minutes of retention, then evaluates every rule once at
that instant, as the sidecar does every second. Prints the median and 99th percentile,
then the same cycle for the shipped rule pack of that server run through the rule engine
(expressions, hysteresis and statuses: what the sidecar's evaluator pays per interval).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.core import engine
from exporter.core.history import History
from exporter.promql import compile_expr, evaluate
from exporter.rules.loader import load_rules

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/fixtures")

PACKS = {
    "tgi-datadog-integrations-core-3.3.5.prom": "tgi.yaml",
    "vllm-datadog-integrations-core-v0-plus-v1-handmerged.prom": "vllm.yaml",
}
CASES = {
    "tgi-datadog-integrations-core-3.3.5.prom": [
        "sum(tgi_queue_size)",
        "sum(tgi_batch_current_size) > 0 and sum(tgi_queue_size) == 0",
        "histogram_quantile(0.95, sum by (le) (rate(tgi_request_duration_bucket[1m])))",
        "histogram_quantile(0.99, sum by (le) (rate(tgi_batch_next_size_bucket[5m])))",
        "rate(tgi_request_count[1m])",
    ],
    "vllm-datadog-integrations-core-v0-plus-v1-handmerged.prom": [
        "max(vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)",
        "sum(vllm:num_requests_waiting)",
        "histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[1m])))",
        "sum(vllm:num_requests_waiting) > 0 and sum(vllm:num_requests_running) == 0",
        "avg_over_time(vllm:num_requests_running[2m])",
    ],
}


def load_samples(path: Path) -> list:
    out = []
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out.append((tuple(sorted({**s.labels, "__name__": s.name}.items())), s.value, family.type))
    return out


def bench(capture: str, rules: list, cycles: int) -> None:
    samples = load_samples(FIXTURES / capture)
    exprs = [compile_expr(r) for r in rules]
    wanted = set().union(*(e.metric_names for e in exprs))
    selected = [(labels, value, kind) for labels, value, kind in samples if dict(labels)["__name__"] in wanted]
    history = History(retention_seconds=600)
    record_times, eval_times = [], []
    per_rule = [[] for _ in exprs]
    t = 1_700_000_000.0
    for i in range(cycles):
        t += 1.0
        scrape = [
            (labels, value + i if kind in ("counter", "histogram") else value) for labels, value, kind in selected
        ]
        start = time.perf_counter()
        history.record(t, scrape)
        middle = time.perf_counter()
        for k, e in enumerate(exprs):
            before = time.perf_counter()
            evaluate(e, history, t)
            per_rule[k].append(time.perf_counter() - before)
        end = time.perf_counter()
        record_times.append(middle - start)
        eval_times.append(end - middle)
    print(
        f"{capture}: {len(selected)} of {len(samples)} samples referenced, {len(rules)} rules, "
        f"{history.sample_count} samples held after {cycles} cycles"
    )
    for name, times in (("record", record_times), ("evaluate all rules", eval_times)):
        ordered = sorted(times)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        print(f"  {name:<20} median {statistics.median(times) * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms")
    for rule, times in zip(rules, per_rule):
        print(f"    {statistics.median(times) * 1e3:7.3f} ms  {rule}")


def bench_pack(capture: str, pack: str, cycles: int) -> None:
    """Record + engine.evaluate of a whole shipped rule pack, per cycle."""
    ruleset = load_rules([str(ROOT / "rules" / pack)])
    wanted = ruleset.metric_names
    selected = [
        (labels, value, kind)
        for labels, value, kind in load_samples(FIXTURES / capture)
        if wanted is None or dict(labels)["__name__"] in wanted
    ]
    history = History(retention_seconds=ruleset.max_range_seconds + 60)
    state = engine.initial_state()
    cycle_times = []
    t = 1_700_000_000.0
    for i in range(cycles):
        t += 1.0
        scrape = [
            (labels, value + i if kind in ("counter", "histogram") else value) for labels, value, kind in selected
        ]
        start = time.perf_counter()
        history.record(t, scrape)
        state, _ = engine.evaluate(ruleset, history, state, t)
        cycle_times.append(time.perf_counter() - start)
    ordered = sorted(cycle_times)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(
        f"  rules/{pack} ({len(ruleset.rules)} rules, {len(selected)} samples): record + engine "
        f"median {statistics.median(cycle_times) * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    args = parser.parse_args()
    for capture, rules in CASES.items():
        bench(capture, rules, args.cycles)
        bench_pack(capture, PACKS[capture], args.cycles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
