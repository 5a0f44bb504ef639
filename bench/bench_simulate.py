"""How long `llm-healthcheck simulate` takes: 1 hour x 24 replicas at 1 s resolution.

Runs the shipped spill-over scenario (3 regions x 8 pods) once per rule set and prints
the wall time, how much of it the rule engine took (history + PromQL + hysteresis), and
the rest (queueing models, gateway, probes). The target is 10 s per run on a 2-core box.

    .venv/bin/python bench/bench_simulate.py [--duration 1h] [--rules FILE ...]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from exporter.ruleset import load_rules, parse_duration, seed_ruleset  # noqa: E402
from exporter.sim.cluster import simulate  # noqa: E402
from exporter.sim.scenario import load_scenario, resolve_scenario  # noqa: E402

TARGET_SECONDS = 10.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="spillover")
    parser.add_argument("--duration", default="1h")
    parser.add_argument("--rules", nargs="*", help="rule files to time (default: the seed rule and rules/tgi.yaml)")
    args = parser.parse_args(argv)

    scenario = load_scenario(resolve_scenario(args.scenario))
    from dataclasses import replace

    scenario = replace(scenario, duration=parse_duration(args.duration), step=1.0)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sets = [("seed: sum(tgi_queue_size) > 15", seed_ruleset("tgi_queue_size", 15))]
    files = args.rules if args.rules is not None else [os.path.join(root, "rules", "tgi.yaml")]
    for path in files:
        if os.path.exists(path):
            sets.append((os.path.relpath(path, root), load_rules([path])))

    print(f"scenario {scenario.name}: {scenario.duration / 3600:g} h x {scenario.replicas} replicas, "
          f"step {scenario.step:g} s, {os.cpu_count()} cpus")  # fmt: skip
    print(f"{'rules':<34} {'wall s':>7} {'engine s':>9} {'other s':>8} {'evals':>7} {'us/eval':>8}  target")
    worst = 0.0
    for label, ruleset in sets:
        started = time.perf_counter()
        result = simulate(scenario, ruleset, label)
        wall = time.perf_counter() - started
        worst = max(worst, wall)
        per_eval = 1e6 * result.eval_seconds / max(result.evaluations, 1)
        verdict = "ok" if wall <= TARGET_SECONDS else f"over {TARGET_SECONDS:g} s"
        print(f"{label:<34} {wall:7.2f} {result.eval_seconds:9.2f} {wall - result.eval_seconds:8.2f} "
              f"{result.evaluations:7d} {per_eval:8.0f}  {verdict}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
