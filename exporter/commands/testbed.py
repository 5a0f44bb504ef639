"""`llm-healthcheck testbed`: a scenario's requests through real HAProxy to real sidecars and fake servers."""

import argparse
import re
import sys
from pathlib import Path

HELP = """Run a scenario live: fake inference servers, real sidecars, real HAProxy, real requests.

For each --policy (none: no health check; seed: the seed's single threshold; or a
rule file) it starts one fake server and one sidecar per pod on 127.0.0.1, HAProxy
health-checking the sidecars (option httpchk GET /health, inter/fall/rise from the
scenario's probe block), and replays the scenario's seeded arrivals open-loop against
HAProxy. Prints lost %, p50/p95/p99 latency, flips and pod-seconds unready per
policy and writes CSVs into --out. --compare-sim runs the simulator on the same
requests and prints both side by side. One run is one draw of when each pod evaluates
and is checked: --repeat K runs each policy K times and, with --phase-draws N, compares
the medians with the simulator's medians over N draws. Wall-clock: a 3-minute scenario
takes about 3 minutes per policy and run. Needs haproxy (apt-get install haproxy)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario file, or a shipped scenario name")
    parser.add_argument(
        "--policy",
        action="append",
        metavar="none|seed|RULES",
        help="repeatable; default: none and seed",
    )
    parser.add_argument(
        "--balance",
        choices=("round_robin", "least_request", "random"),
        help="HAProxy balance (roundrobin, leastconn, random); default: the scenario's gateway.balance",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds (default 60)")
    parser.add_argument("--duration", metavar="DURATION", help="override the scenario's duration (e.g. 2m)")
    parser.add_argument("--out", type=Path, default=Path("testbed-output"), help="directory for CSVs and logs")
    parser.add_argument("--compare-sim", action="store_true", help="also run the simulator and compare")
    parser.add_argument(
        "--phase-draws",
        type=int,
        default=0,
        metavar="N",
        help="with --compare-sim, also run the simulator for N other probe/sidecar phase draws and show its range",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="K",
        help="run each policy with sidecars K times (another draw of their start delays each time) and rank "
        "by the medians; `none` has no sidecars and runs once",
    )
    parser.add_argument(
        "--agent-check",
        action="store_true",
        help="also give HAProxy an agent-check on each sidecar (weight from the load score, drain when unready)",
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from exporter.config.errors import ConfigError
    from exporter.sim import haproxy
    from exporter.sim.scenario import load_scenario, resolve_scenario
    from exporter.sim.testbed import TestbedError, check_scenario

    if not args.timeout > 0:
        return _fail("--timeout must be above 0")
    if args.repeat < 1:
        return _fail("--repeat must be at least 1")
    try:
        scenario = load_scenario(resolve_scenario(args.scenario))
        if args.duration:
            from exporter.commands.simulate import _duration

            scenario = replace(scenario, duration=_duration(args.duration))
        policies = [_policy(text) for text in (args.policy or ["none", "seed"])]
        rulesets = [_ruleset(p) for p in policies]
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        check_scenario(scenario)
        haproxy.haproxy_binary()
    except (TestbedError, haproxy.HAProxyUnavailable) as err:
        return _fail(str(err))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return _fail(f"cannot create {args.out}: {err.strerror or err}")
    if args.balance:  # the simulator then balances the same way
        scenario = replace(scenario, balance=args.balance)
    return _run_all(scenario, policies, rulesets, scenario.balance, args)


def _run_all(scenario, policies, rulesets, balance, args) -> int:
    from exporter.sim import verdict
    from exporter.sim.testbed import TestbedError, run_testbed
    from exporter.sim.workload import planned_requests

    planned = len(planned_requests(scenario))
    print(
        f"testbed {scenario.name}: {scenario.replicas} pods, {planned} requests over {scenario.duration:g}s, "
        f"HAProxy balance {balance}, {len(policies)} "
        f"polic{'y' if len(policies) == 1 else 'ies'}",
        file=sys.stderr,
        flush=True,
    )
    rows, runs = [], []
    # Round by round, so a slow stretch of the machine falls on every policy alike.
    for k in range(args.repeat):
        for policy, ruleset in zip(policies, rulesets):
            if k > 0 and policy.rules is None:
                continue  # no sidecars, no checks: nothing to draw again
            more = f" (run {k + 1} of {args.repeat})" if args.repeat > 1 else ""
            print(f"  running policy {policy.label}{more} ...", file=sys.stderr, flush=True)
            workdir = args.out / "logs" / _slug(policy.label) / (f"run{k + 1}" if args.repeat > 1 else "")
            try:
                run = run_testbed(
                    scenario, policy, ruleset, balance, args.timeout, workdir, args.agent_check, run_index=k
                )
            except TestbedError as err:
                return _fail(f"{err} (logs in {workdir})")
            runs.append(run)
            rows.append(verdict.row_from_testbed(run))
    base = args.out / scenario.name
    written = [Path(f"{base}-testbed.csv"), Path(f"{base}-requests.csv"), Path(f"{base}-timeline.csv")]
    written.append(Path(f"{base}-haproxy.cfg"))
    verdict.write_rows_csv(rows, written[0])
    verdict.write_requests_csv(runs, written[1])
    verdict.write_timeline_csv(runs, written[2])
    written[3].write_text(runs[-1].config_text + "\n")
    shown = f"{balance} + agent-check" if args.agent_check else balance
    print(format_title(scenario, shown, "testbed (real HAProxy, real sidecars)"))
    print(verdict.format_table(rows, "")[1:])
    by_policy = [[r for r in rows if r.policy == p.label] for p in policies]  # each policy's runs, in order
    real = rows
    if args.repeat > 1:
        real = [verdict.median_row(runs_of) for runs_of in by_policy]
        print()
        print(verdict.format_table(real, f"testbed, median of each figure over {args.repeat} runs"))
    if args.compare_sim:
        sims = [verdict.row_from_sim(scenario, rs, p.label, args.timeout) for p, rs in zip(policies, rulesets)]
        print()
        print(verdict.format_table(sims, format_title(scenario, balance, "simulator (same requests)")))
        written.append(Path(f"{base}-sim.csv"))
        verdict.write_rows_csv(sims, written[-1])
        spreads = []
        if args.phase_draws > 0:
            spreads = [
                verdict.phase_spread(scenario, rs, p.label, args.timeout, args.phase_draws)
                for p, rs in zip(policies, rulesets)
            ]
        print()
        if args.repeat > 1 and spreads:
            # Many runs against many draws: medians against medians.
            medians = [verdict.median_row(draws) for draws in spreads]
            title = f"testbed median of {args.repeat} runs vs simulator median of {args.phase_draws} phase draws"
            print(verdict.format_side_by_side(real, medians, title))
        else:
            print(verdict.format_side_by_side(real, sims, "testbed vs simulator"))
        if spreads:
            print()
            print(
                verdict.format_spread(spreads, by_policy, f"simulator over {args.phase_draws} phase draws vs testbed")
            )
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def format_title(scenario, balance, what) -> str:
    return f"{what}: scenario {scenario.name}, {scenario.replicas} pods, {balance}, {scenario.duration:g}s"


def _policy(text: str):
    from exporter.sim.rules_argument import parse_rules_argument
    from exporter.sim.testbed import Policy

    if text == "none":
        return Policy("none", None)
    return Policy(text, parse_rules_argument(text))


def _ruleset(policy):
    from exporter.rules.model import RuleSet

    if policy.rules is None:
        return RuleSet(rules=())
    from exporter.commands.simulate import _load

    if len(policy.rules.files) > 1:
        from exporter.config.errors import ConfigError, Problem

        raise ConfigError([Problem(policy.label, message="the testbed takes one rule file or directory per policy")])
    return _load(policy.rules)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "policy"


def _fail(message: str) -> int:
    print(f"llm-healthcheck testbed: {message}", file=sys.stderr)
    return 2
