"""Utilization-based balancing (GKE custom metrics) and power of two choices (Envoy), for the gateway.

GKE's model, as its docs describe it (docs/load-balancing.md cites them): the load balancer
reads each endpoint's reported utilization (here the sidecar's llm_healthcheck_load), fills
the region closest to the client up to `max_utilization` and sends what does not fit to the
next region in preference order ("waterfall by region"); within a region, endpoints with more
headroom get more traffic. The balancer learns the scores only every `refresh` seconds, so
it steers on a picture that is up to one period old: that lag is part of the physics. Between
reports it counts what it has sent each pod against that pod's headroom (as a balancer that
knows each endpoint's capacity does), so one pod that looked idle at the last report does
not take a whole region's traffic until the next.

Capacity is not configured; it is inferred as a utilization-driven balancer must: a region's
ready pods that took Σλ requests/s at utilizations summing to ΣU take Σλ · max_utilization / ΣU
each at the target, and the region can take that times its ready pods (so a pod turning unready takes
its share of the capacity with it at once). A region whose pods took nothing borrows the
fleet's per-pod figure, or is open without limit if no pod has one yet. Each period:

1. every origin's demand (requests/s it sent in the last period) fills its own region first;
2. what does not fit flows down that origin's spill order into the capacity left;
3. what fits nowhere is spread over every region in proportion to its capacity at the target
   (the fleet is over the target everywhere, so each region runs equally far over it).

Readiness still applies at once: only ready pods are candidates, whatever their score.
"""

import math
import random
from bisect import bisect_right

# Weight of the newest period in the per-pod capacity estimate (an exponential moving average).
SMOOTHING = 0.3


def waterfall(demand: list[float], capacity: list[float], orders: list[list[int]]) -> list[list[float]]:
    """Requests/s from each origin to each region: local first, then down each origin's order.

    `orders[o]` is origin o's preference order, starting with o itself. Pure, for the unit test."""
    n = len(demand)
    left = list(capacity)
    flows = [[0.0] * n for _ in range(n)]
    rest = list(demand)
    for o in range(n):  # every region serves its own clients before anyone's overflow
        take = min(rest[o], left[o])
        flows[o][o] += take
        left[o] -= take
        rest[o] -= take
    for o in range(n):
        for region in orders[o][1:]:
            if rest[o] <= 0:
                break
            take = min(rest[o], left[region])
            flows[o][region] += take
            left[region] -= take
            rest[o] -= take
    # Over the target everywhere: what is left is spread in proportion to each region's capacity
    # at the target, so every region runs equally far over it (nowhere is better).
    finite = [c if math.isfinite(c) else 0.0 for c in capacity]
    total = sum(finite)
    for o in range(n):
        if rest[o] > 0:
            if total <= 0:
                flows[o][o] += rest[o]
                continue
            for region in range(n):
                flows[o][region] += rest[o] * finite[region] / total
    return flows


def per_pod_capacity(sent_rates: list[float], utilizations: list[float], max_utilization: float) -> float | None:
    """Requests/s one pod takes at `max_utilization`: the ready pods took Σλ at utilizations ΣU, so
    each takes Σλ · max_utilization / ΣU (a ratio of sums over every ready pod, including those
    that got nothing because they were full); None while nothing was sent or no pod reports any
    load, since neither says anything about capacity."""
    rate, load = sum(sent_rates), sum(utilizations)
    return rate * max_utilization / load if rate > 0 and load > 0 else None


def headroom(utilizations: list[float], sent: list[int], per_request: float) -> list[float]:
    """Each pod's room as the balancer sees it: 1 - its last reported score, less what the balancer
    has sent it since (`per_request` of utilization each). Shares within a region follow this."""
    return [max(0.0, 1.0 - u - per_request * n) for u, n in zip(utilizations, sent)]


class UtilizationBalancer:
    """Routes with the waterfall plan made at the last refresh; `refresh(t, load_of)` replans."""

    def __init__(
        self,
        pods_by_region: list[list],
        orders: list[list[int]],
        max_utilization: float,
        period: float,
        rng: random.Random,
    ):
        self._pods = pods_by_region
        self._orders = orders
        self._max = max_utilization
        self.period = period
        self._rng = rng
        n = len(pods_by_region)
        self._ready: list[list] = [list(p) for p in pods_by_region]
        self._seen: dict = {}  # id(pod) -> score the balancer last read
        self._demand = [0] * n  # requests per origin since the last refresh
        self._sent: dict = {}  # id(pod) -> requests sent to it since the last refresh
        self._plan = [[(1.0,), (o,)] for o in range(n)]  # per origin: cumulative shares, regions
        self._next = 0.0
        self._since = 0.0
        self._pod_capacity: list[float] = [math.inf] * n
        self._per_pod: list[float | None] = [None] * n  # smoothed requests/s one pod takes at the target

    def update(self, region: int, ready_pods: list) -> None:
        self._ready[region] = ready_pods

    def due(self, t: float) -> bool:
        return t + 1e-9 >= self._next

    def refresh(self, t: float, load_of) -> None:
        """Read every pod's score now (`load_of(pod)`) and replan from the last period's traffic."""
        elapsed = max(t - self._since, 1e-9)
        self._seen = {id(pod): load_of(pod) for pods in self._pods for pod in pods}
        n = len(self._pods)
        per_pod = self._per_pod
        for region in range(n):
            ready = self._ready[region]
            rates = [self._sent.get(id(p), 0) / elapsed for p in ready]
            measured = per_pod_capacity(rates, [self._seen[id(p)] for p in ready], self._max)
            if measured is not None:  # smoothed: one period's few requests are a noisy sample
                old = per_pod[region]
                per_pod[region] = measured if old is None else SMOOTHING * measured + (1 - SMOOTHING) * old
        known = [c for c in per_pod if c is not None]
        fleet = sum(known) / len(known) if known else math.inf
        self._pod_capacity = [fleet if c is None else c for c in per_pod]
        capacity = [len(self._ready[r]) * c for r, c in enumerate(self._pod_capacity)]
        demand = [count / elapsed for count in self._demand]
        flows = waterfall(demand, capacity, self._orders)
        for origin in range(n):
            total = sum(flows[origin])
            if total <= 0:  # no demand last period: send it home, or down the order if home is full
                region = next((r for r in self._orders[origin] if capacity[r] > 0), origin)
                self._plan[origin] = [(1.0,), (region,)]
                continue
            cumulative, regions, running = [], [], 0.0
            for region, flow in enumerate(flows[origin]):
                if flow > 0:
                    running += flow / total
                    cumulative.append(running)
                    regions.append(region)
            self._plan[origin] = [tuple(cumulative), tuple(regions)]
        self._demand = [0] * n
        self._sent = {}
        self._since = t
        self._next = t + self.period

    def route(self, origin: int):
        """(pod, region) for one request, or (None, -1) when the planned region has no ready pod
        and neither has any region of the origin's order."""
        self._demand[origin] += 1
        cumulative, regions = self._plan[origin]
        i = 0 if len(regions) == 1 else bisect_right(cumulative, self._rng.random() * cumulative[-1])
        region = regions[min(i, len(regions) - 1)]
        if not self._ready[region]:
            region = next((r for r in self._orders[origin] if self._ready[r]), -1)
            if region < 0:
                return None, -1
        pods = self._ready[region]
        if len(pods) == 1:
            pod = pods[0]
        else:
            # At the target a pod takes capacity x period requests per period: each one sent
            # since the last report uses up that share of its headroom.
            capacity = self._pod_capacity[region]
            per_request = self._max / (capacity * self.period) if capacity > 0 else 1.0
            room = headroom(
                [self._seen.get(id(p), 0.0) for p in pods], [self._sent.get(id(p), 0) for p in pods], per_request
            )
            # No headroom anywhere in the region: fall back to the proxy's own choice, the pod
            # with fewer requests in flight of two (Envoy's least_request).
            pod = _draw(pods, room, self._rng) if sum(room) > 0 else two_choices(pods, self._rng)
        self._sent[id(pod)] = self._sent.get(id(pod), 0) + 1
        return pod, region


def _draw(pods: list, weights: list[float], rng: random.Random):
    """One pod with probability proportional to its weight; any pod alike when none has weight."""
    total = sum(weights)
    if total <= 0:
        return pods[rng.randrange(len(pods))]
    x = rng.random() * total
    for pod, weight in zip(pods, weights):
        x -= weight
        if x <= 0:
            return pod
    return pods[-1]


def two_choices(pods: list, rng: random.Random):
    """Envoy's least_request: of two endpoints drawn at random, the one with fewer requests in flight."""
    a, b = rng.sample(pods, 2)
    return a if a.model.in_system <= b.model.in_system else b
