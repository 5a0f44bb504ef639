"""The decision panel: every shipped scenario x gateway mode x policy, on the same arrivals.

A policy is what decides each pod's readiness:
- `none`: no sidecar, every pod always ready (what the gateway does on its own);
- `seed`: the scenario's single threshold, `sum(METRIC) > N` (the Go sidecar);
- each shipped pack for the scenario's engine, standalone (no fleet view);
- the same pack `+fleet`: with its fleet view, rules/fleet/<engine>.yaml (queries to a
  simulated, lagging Prometheus, exporter.sim.prometheus, and the file's fail-open guard);
- any rule file given with --rules (standalone and +fleet), or seed:METRIC:N.

Every run of one scenario draws the same requests (arrivals and lengths are seeded per
region, not per pod), so the rows of a cell differ only by their readiness decisions.
"""

import multiprocessing
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from exporter.sim.outcomes import Outcome

# The gateway modes the panel runs, one line each: (name, Scenario fields it sets).
GATEWAY_MODES: tuple[tuple[str, dict], ...] = (
    ("none_ready", {"spill": "none_ready"}),
    ("proportional", {"spill": "proportional"}),
    ("utilization", {"balance": "utilization"}),  # GKE's waterfall on the pods' load scores
)

# Scenarios kept aside: the packs were not tuned on them; the panel reports them apart.
HELD_OUT = ("diurnal", "sick-vllm", "testbed-busy", "testbed-spill")  # the testbed's two arrived after tuning

PACKS_DIR = Path(__file__).resolve().parents[2] / "rules"
# Shipped packs per simulated engine. A pack's `+fleet` row loads it with its fleet view,
# rules/fleet/<engine>.yaml (the queries, interval and fail-open guard the pack recommends).
PACKS: dict[str, tuple[str, ...]] = {
    "tgi": ("tgi.yaml",),
    "vllm": ("vllm.yaml",),
    "sglang": ("sglang.yaml",),
}
FLEET_DIR = "fleet"
_SCENARIO = "scenario"  # Policy.fraction: take the scenario's fleet.max_unready_fraction

# --quick (the CI test): these scenarios, whole, under the first gateway mode only, so every
# inequality is still judged on real cells; spillover and diurnal, the longest, are left to
# the full panel.
QUICK_SCENARIOS = ("hovering", "flash-crowd", "slow-ramp", "sick-tgi", "sick-vllm")
QUICK_MODES = ("none_ready",)


@dataclass(frozen=True)
class Policy:
    name: str  # as shown in the table: none, seed, tgi.yaml, tgi.yaml+fleet
    kind: str  # none | seed | pack | rules
    files: tuple[str, ...] = ()
    metric: str = ""
    threshold: float = 0.0
    fleet: bool = False
    fraction: float | str | None = _SCENARIO  # the guard's max_unready_fraction; None: the guard off


@dataclass(frozen=True)
class Row:
    scenario: str
    mode: str
    policy: Policy
    held_out: bool
    outcome: Outcome
    wall_seconds: float


def policies_for(scenario, extra: list | None = None, packs_dir: Path = PACKS_DIR) -> list[Policy]:
    out = [Policy("none", "none")]
    seed = scenario.rules
    out.append(Policy("seed", "seed", metric=seed.metric, threshold=seed.threshold))
    for pack in PACKS.get(scenario.engine, ()):
        path = packs_dir / pack
        if path.exists():
            out.append(Policy(pack, "pack", (str(path),)))
            view = packs_dir / FLEET_DIR / pack
            files = (str(path), str(view)) if view.exists() else (str(path),)
            out.append(Policy(pack + "+fleet", "pack", files, fleet=True))
    for spec in extra or ():
        if spec.files:
            label = ",".join(os.path.basename(f) for f in spec.files)
            out.append(Policy(label, "rules", spec.files))
            out.append(Policy(label + "+fleet", "rules", spec.files, fleet=True))
        else:
            out.append(Policy(f"seed:{spec.metric}:{spec.threshold:g}", "rules", (), spec.metric, spec.threshold))
    return out


def load_policy(policy: Policy):
    from exporter.rules.loader import load_rules, seed_ruleset

    if policy.kind == "none":
        return None
    if policy.files:
        return load_rules(list(policy.files))
    return seed_ruleset(policy.metric, policy.threshold)


def check_policies(policies: list[Policy]) -> None:
    """Load every rule set once up front, so a bad file stops the panel before any run."""
    for policy in policies:
        load_policy(policy)


def run_one(scenario, mode: str, policy: Policy) -> Row:
    from exporter.sim.cluster import simulate
    from exporter.sim.outcomes import outcome

    settings = dict(GATEWAY_MODES)[mode]
    cell = replace(scenario, **settings)
    ruleset = load_policy(policy)
    fleet = None
    if policy.fleet:
        # A rule file with its own fleet: block runs with it (its queries, interval and guard);
        # the scenario's fleet: settings give Prometheus' scrape interval and the rest.
        fleet = scenario.fleet
        if getattr(ruleset, "fleet", None) is None and policy.fraction != _SCENARIO:
            fleet = replace(fleet, max_unready_fraction=policy.fraction)
    started = time.perf_counter()
    result = simulate(cell, ruleset, policy.name, fleet=fleet)
    return Row(scenario.name, mode, policy, scenario.name in HELD_OUT, outcome(result), time.perf_counter() - started)


def jobs_for(scenarios, extra=None, modes=None) -> list[tuple]:
    jobs = []
    for scenario in scenarios:
        for mode, _ in GATEWAY_MODES:
            if modes is not None and mode not in modes:
                continue
            for policy in policies_for(scenario, extra):
                jobs.append((scenario, mode, policy))
    return jobs


_JOBS: list[tuple] = []


def _run_job(index: int):
    scenario, mode, policy = _JOBS[index]
    return index, run_one(scenario, mode, policy)


def default_workers() -> int:
    return min(2, os.cpu_count() or 1)


def run_panel(jobs: list[tuple], workers: int | None = None, progress=None) -> list[Row]:
    """Every job, on `workers` processes (default: the cores, at most 2); rows in job order."""
    global _JOBS
    workers = workers or default_workers()
    rows: list[Row | None] = [None] * len(jobs)
    # Longest first, so the last job to finish is a short one.
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i]))
    done = 0
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        _JOBS = jobs  # inherited by the forked workers: scenarios hold rate functions, not picklable
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for index, row in pool.imap_unordered(_run_job, order):
                    rows[index] = row
                    done += 1
                    if progress is not None:
                        progress(done / len(jobs))
        finally:
            _JOBS = []
    else:
        for index in order:
            rows[index] = run_one(*jobs[index])
            done += 1
            if progress is not None:
                progress(done / len(jobs))
    return [row for row in rows if row is not None]


def _cost(job) -> float:
    scenario, _, policy = job
    return scenario.replicas * scenario.duration * (0.3 if policy.kind == "none" else 1.0)
