"""How long `llm-healthcheck simulate` takes: 1 hour x 24 replicas at 1 s resolution.

Runs the shipped spill-over scenario (3 regions x 8 pods) once per rule set and prints
the wall time, how much of it the rule engine took (the pods' pages, history, PromQL and
hysteresis), and the rest (queueing models, gateway, probes). The target is 10 s per run
on a 2-core box. The load average is printed beside the figures: on a shared machine
the best of a few runs (--repeat) says more than one.

    .venv/bin/python -m bench.bench_simulate [--duration 1h] [--repeat N] [--rules FILE ...]
    .venv/bin/python -m bench.bench_simulate --profile 25    # where the time goes
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from dataclasses import replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from exporter.config.durations import parse_duration
from exporter.rules.loader import load_rules, seed_ruleset
from exporter.sim.cluster import simulate
from exporter.sim.scenario import load_scenario, resolve_scenario

TARGET_SECONDS = 10.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="spillover")
    parser.add_argument("--duration", default="1h")
    parser.add_argument("--repeat", type=int, default=1, help="runs per rule set; the best is shown")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="profile one run per rule set and print the N costliest functions",
    )
    parser.add_argument("--rules", nargs="*", help="rule files to time (default: the seed rule and rules/tgi.yaml)")
    args = parser.parse_args(argv)

    scenario = load_scenario(resolve_scenario(args.scenario))
    scenario = replace(scenario, duration=parse_duration(args.duration), step=1.0)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sets = [("seed: sum(tgi_queue_size) > 15", seed_ruleset("tgi_queue_size", 15))]
    files = args.rules if args.rules is not None else [os.path.join(root, "rules", "tgi.yaml")]
    for path in files:
        if os.path.exists(path):
            sets.append((os.path.relpath(path, root), load_rules([path])))

    span = f"{scenario.duration / 3600:g} h" if scenario.duration >= 3600 else f"{scenario.duration / 60:g} min"
    print(
        f"scenario {scenario.name}: {span} x {scenario.replicas} replicas, "
        f"step {scenario.step:g} s, {os.cpu_count()} cpus, load average {_load()}"
    )
    if args.profile:
        for label, ruleset in sets:
            _profile(scenario, ruleset, label, args.profile)
        return 0
    print(f"{'rules':<34} {'wall s':>7} {'engine s':>9} {'other s':>8} {'evals':>7} {'us/eval':>8}  target")
    for label, ruleset in sets:
        runs = []
        for _ in range(max(1, args.repeat)):
            started = time.perf_counter()
            result = simulate(scenario, ruleset, label)
            runs.append((time.perf_counter() - started, result))
        wall, result = min(runs, key=lambda run: run[0])
        per_eval = 1e6 * result.eval_seconds / max(result.evaluations, 1)
        verdict = "ok" if wall <= TARGET_SECONDS else f"over {TARGET_SECONDS:g} s"
        spread = f"  (worst of {len(runs)}: {max(w for w, _ in runs):.2f} s)" if len(runs) > 1 else ""
        print(
            f"{label:<34} {wall:7.2f} {result.eval_seconds:9.2f} {wall - result.eval_seconds:8.2f} "
            f"{result.evaluations:7d} {per_eval:8.0f}  {verdict}{spread}"
        )
    print(f"load average after: {_load()}")
    return 0


def _profile(scenario, ruleset, label: str, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    simulate(scenario, ruleset, label)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\n== {label} (cProfile roughly doubles the cost of small functions) ==")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
