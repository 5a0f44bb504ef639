"""The capacity simulation: regions of pods behind a gateway, in virtual time.

Each simulated pod is a ServerModel (the inference server), a sidecar (the project's
real rule engine and readiness policy reading the pod's samples every interval, sim/sidecar.py) and a
kubelet readiness probe reading the sidecar's decision. The gateway routes each
arriving request to a ready pod, preferring the request's own region. Nothing sleeps:
an hour of 24 pods takes seconds.

Order inside one step (t - step, t]: arrivals are routed with the readiness the
gateway knew at the start of the step, faults due by t start or end, every model
advances to t, sidecars that are due evaluate at t, probes that are due read the
decisions, and changed readiness reaches the gateway for the next step.

With a fleet view (`fleet=`), a simulated Prometheus scrapes every pod and each sidecar runs
its fleet queries against it (exporter.sim.prometheus): rules read the late answers as
fleet:<name> series and the fail-open guard acts on the fleet's counts.
With no rule set (`ruleset=None`) there is no sidecar: every pod is always ready.
"""

import heapq
import random
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from exporter.core.fleet_link import FleetLink
from exporter.core.load_score import published, score_for
from exporter.rules.model import RuleSet
from exporter.sim.arrivals import Arrivals
from exporter.sim.faults import FaultSchedule
from exporter.sim.fleet import FleetSpec, fleet_config
from exporter.sim.gateway import Gateway
from exporter.sim.model import ServerModel
from exporter.sim.pages import build_engine
from exporter.sim.probe import ReadinessProbe
from exporter.sim.prometheus import SimClock, SimPoller, SimPrometheus
from exporter.sim.scenario import Scenario
from exporter.sim.sidecar import HISTORY_MARGIN_SECONDS, SimSidecar


@dataclass
class SimPod:
    name: str
    region: int
    model: ServerModel
    probe: ReadinessProbe
    sidecar: SimSidecar
    next_eval: float
    load: float = 0.0  # the sidecar's llm_healthcheck_load, computed only for balance: utilization
    load_score: object = None
    queue: array = field(default_factory=lambda: array("i"))
    running: array = field(default_factory=lambda: array("i"))
    kv: array = field(default_factory=lambda: array("f"))
    ready: bytearray = field(default_factory=bytearray)
    fail_open_seconds: float = 0.0  # time the guard held this pod in


@dataclass
class RegionSeries:
    name: str
    arrivals: array = field(default_factory=lambda: array("i"))  # requests from this region
    served: array = field(default_factory=lambda: array("i"))  # requests this region's pods accepted
    spilled: array = field(default_factory=lambda: array("i"))  # from here, routed to another region
    rejected: array = field(default_factory=lambda: array("i"))  # from here, no ready pod anywhere
    refused: array = field(default_factory=lambda: array("i"))  # from here, turned away by a full server (429)
    failed: array = field(default_factory=lambda: array("i"))  # from here, sent to a crashed server (refused)


@dataclass
class SimResult:
    scenario: Scenario
    rules_label: str
    times: list[float]
    pods: list[SimPod]
    regions: list[RegionSeries]
    requests: list[tuple]  # (arrival, origin region, serving region, queue wait, ttft, e2e) of finished requests
    unfinished: list[tuple]  # (arrival, had its first token?) of requests still in a server at the end
    dropped: int  # requests in a server when it crashed
    fleet: FleetSpec | None
    evaluations: int
    wall_seconds: float
    eval_seconds: float


def simulate(
    scenario: Scenario,
    ruleset: RuleSet | None,
    rules_label: str = "",
    progress: Callable[[float], None] | None = None,
    fleet: FleetSpec | None = None,
    phase_draw: int | None = None,
) -> SimResult:
    """Run the scenario once against `ruleset` (None: no sidecar, every pod always ready);
    `fleet` simulates the Prometheus fleet view and the fail-open guard; `progress(fraction)`
    is called now and then.

    `phase_draw` picks other probe and sidecar phases (when each pod's checks and evaluations
    tick) for the very same requests: how much a verdict owes to that luck."""
    started = time.perf_counter()
    seed = scenario.seed
    has_sidecar = ruleset is not None
    if ruleset is None:
        ruleset = RuleSet(())
    elif any(rule.severity == "warn" for rule in ruleset.rules):
        # Warnings never change readiness; evaluating them would only cost time.
        ruleset = replace(ruleset, rules=tuple(rule for rule in ruleset.rules if rule.severity != "warn"))
    names = ruleset.metric_names
    interval = scenario.sidecar_interval or ruleset.scrape.interval or 1.0
    phase_rng = random.Random(f"{seed}:phases" if phase_draw is None else f"{seed}:phases:{phase_draw}")

    # With a fleet view: Prometheus, and each sidecar's poller and FleetLink (built below).
    fleet_block = fleet_config(fleet, ruleset) if fleet is not None and has_sidecar else None
    prometheus = None
    if fleet_block is not None:
        targets = [
            (f"{region.name}-{k + 1}", region.name) for region in scenario.regions for k in range(region.replicas)
        ]
        prometheus = SimPrometheus(
            fleet_block, fleet.scrape_interval, targets, scenario.engine, random.Random(f"{seed}:fleet")
        )
    clock = SimClock()
    pollers: list[SimPoller] = []
    poll_rng = random.Random(f"{seed}:fleet:queries")

    pods: list[SimPod] = []
    by_region: list[list[SimPod]] = []
    families, engines, scraped = [], [], []
    for r, region in enumerate(scenario.regions):
        engine = build_engine(scenario.engine, region.model)
        engines.append(engine)
        families.append(engine.families_for(names))
        wanted = engine.wanted_quantities(names)
        if prometheus is not None:
            scraped.append(engine.families_for(prometheus.names))
            wanted.update(engine.wanted_quantities(prometheus.names))
        members = []
        for k in range(region.replicas):
            name = f"{region.name}-{k + 1}"
            model = ServerModel(region.model, random.Random(f"{seed}:pod:{name}"), wanted, keep_log=True)
            probe = ReadinessProbe(scenario.probe, phase_rng.uniform(0, scenario.probe.period))
            # Pods start as if they had been serving for a while: ready, with no backlog.
            probe.ready = True
            link = None
            if prometheus is not None:
                poller = SimPoller(fleet_block, clock, prometheus, poll_rng)
                pollers.append(poller)
                link = FleetLink(clock, lambda config, clock, poller=poller: poller)
                link.install(fleet_block, ruleset.max_range_seconds + HISTORY_MARGIN_SECONDS, 20_000)
            pod = SimPod(name, r, model, probe, SimSidecar(ruleset, link), phase_rng.uniform(0, interval))
            members.append(pod)
            pods.append(pod)
        by_region.append(members)

    index = {region.name: r for r, region in enumerate(scenario.regions)}
    spill = [[index[n] for n in region.spill_to] for region in scenario.regions]
    gateway = Gateway(
        by_region,
        spill,
        scenario.balance,
        scenario.no_ready_pod,
        random.Random(f"{seed}:gateway"),
        scenario.spill,
        scenario.overprovisioning_factor,
        scenario.max_utilization,
        scenario.refresh,
    )
    balancer = gateway.balancer
    faults = FaultSchedule(scenario.faults, {pod.name: pod.model for pod in pods})
    arrivals = [Arrivals(region.load, random.Random(f"{seed}:arrivals:{region.name}")) for region in scenario.regions]
    lengths = [random.Random(f"{seed}:requests:{region.name}") for region in scenario.regions]
    configs = [region.model for region in scenario.regions]
    regions = [RegionSeries(region.name) for region in scenario.regions]

    step = scenario.step
    steps = max(1, round(scenario.duration / step))
    times: list[float] = []
    evaluations = 0
    eval_seconds = 0.0
    report_every = max(1, steps // 200)
    nregions = len(regions)

    for k in range(1, steps + 1):
        t = k * step
        arrived = [0] * nregions
        served = [0] * nregions
        spilled = [0] * nregions
        rejected = [0] * nregions
        refused = [0] * nregions
        failed = [0] * nregions
        batches = [[(a, r) for a in arrivals[r].take_until(t)] for r in range(nregions)]
        for a, r in heapq.merge(*batches) if nregions > 1 else batches[0]:
            cfg = configs[r]
            prompt = cfg.prompt_tokens.draw(lengths[r])
            output = cfg.output_tokens.draw(lengths[r])
            arrived[r] += 1
            pod, where = gateway.route(r)
            if pod is None:
                rejected[r] += 1
                continue
            if where != r:
                spilled[r] += 1
            model = pod.model
            if model.arrive(a, prompt, output, r) is None:
                if model.down:
                    failed[r] += 1
                else:
                    refused[r] += 1
            else:
                served[where] += 1

        changed = set()
        faults.apply(t)
        if prometheus is not None:
            clock.now = t
            if prometheus.due(t):
                pages = [engines[p.region].samples(p.model, scraped[p.region]) for p in pods]
                prometheus.scrape(t, pages, [p.sidecar.ready for p in pods])
            for poller in pollers:
                poller.poll_if_due(t)
        for pod in pods:
            model = pod.model
            model.advance_to(t)
            if has_sidecar and t + 1e-9 >= pod.next_eval:
                pod.next_eval += interval
                if pod.next_eval <= t:
                    pod.next_eval = t + interval
                tick = time.perf_counter()
                samples = engines[pod.region].samples(model, families[pod.region])
                ready = pod.sidecar.evaluate(t, samples)
                if pod.sidecar.fail_open:
                    pod.fail_open_seconds += interval
                if balancer is not None:  # the same computation as the sidecar's /load
                    pod.load_score = score_for(
                        ruleset.score, pod.load_score, pod.sidecar.history, t, bool(samples), not samples, False
                    )
                    pod.load = published(pod.load_score, ruleset.score, ready, "serving").value
                eval_seconds += time.perf_counter() - tick
                evaluations += 1
            probe = pod.probe
            if probe.due(t) and probe.observe(t, pod.sidecar.ready, scenario.sidecar_latency):
                changed.add(pod.region)
            pod.queue.append(model.queue_size)
            pod.running.append(model.running)
            pod.kv.append(model.kv_usage)
            pod.ready.append(probe.ready)
        for r in changed:
            gateway.update(r, [p for p in by_region[r] if p.probe.ready])
        if balancer is not None and balancer.due(t):
            balancer.refresh(t, lambda p: p.load)
        for r, series in enumerate(regions):
            series.arrivals.append(arrived[r])
            series.served.append(served[r])
            series.spilled.append(spilled[r])
            series.rejected.append(rejected[r])
            series.refused.append(refused[r])
            series.failed.append(failed[r])
        times.append(t)
        if progress is not None and k % report_every == 0:
            progress(k / steps)

    # Finished requests only; those still in flight at the end have no latency yet.
    requests = sorted(
        (arrival, origin, pod.region, wait, ttft, e2e)
        for pod in pods
        for arrival, wait, ttft, e2e, origin in pod.model.log
    )
    unfinished = [(r.arrival, r.first_token > 0) for pod in pods for r in pod.model.in_flight()]
    return SimResult(
        scenario,
        rules_label,
        times,
        pods,
        regions,
        requests,
        unfinished,
        faults.lost_in_crashes,
        fleet,
        evaluations,
        time.perf_counter() - started,
        eval_seconds,
    )
