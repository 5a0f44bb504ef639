"""The requests a scenario sends: arrival times, origin region and lengths, as the simulator draws them.

The simulator (exporter.sim.cluster) draws each region's arrivals from
`Random("{seed}:arrivals:{region}")` and, per arrival in order, the prompt then the
output length from `Random("{seed}:requests:{region}")`. Arrivals do not depend on how
time is sliced (exporter.sim.arrivals), so drawing a region's whole run at once gives the
very requests the simulator routes step by step. The testbed replays this list against a
real load balancer, so the simulator and the testbed differ only in what the balancer and
the servers do with the same requests, never in the dice.
"""

import random
from dataclasses import dataclass

from exporter.sim.arrivals import Arrivals
from exporter.sim.scenario import Scenario


@dataclass(frozen=True)
class PlannedRequest:
    at: float  # seconds since the run started
    region: int  # index of the origin region in scenario.regions
    prompt: int  # tokens
    output: int  # tokens


def run_length(scenario: Scenario) -> float:
    """The simulated span: the simulator runs whole steps."""
    return max(1, round(scenario.duration / scenario.step)) * scenario.step


def planned_requests(scenario: Scenario) -> list[PlannedRequest]:
    end = run_length(scenario)
    planned = []
    for r, region in enumerate(scenario.regions):
        arrivals = Arrivals(region.load, random.Random(f"{scenario.seed}:arrivals:{region.name}"))
        lengths = random.Random(f"{scenario.seed}:requests:{region.name}")
        cfg = region.model
        for at in arrivals.take_until(end):
            prompt = cfg.prompt_tokens.draw(lengths)
            output = cfg.output_tokens.draw(lengths)
            planned.append(PlannedRequest(at, r, prompt, output))
    planned.sort(key=lambda p: (p.at, p.region))
    return planned
