"""A multi-cluster gateway: local region first, spill to other regions in a preference order.

Each region keeps the list of its pods that are ready (as the Endpoints show them).
Two spill policies:

- `none_ready` (default; GKE's multi-cluster Gateway without a per-endpoint rate cap):
  a request from region R goes to a ready pod of R; only when R has none does it go
  to the first region in R's spill order that has one.
- `proportional` (Envoy/Istio locality failover): R keeps min(1, ready fraction x
  `overprovisioning_factor`) of its traffic and the rest flows down the spill order
  the same way, so losing a few pods already moves a matching share away.

With no ready pod anywhere the request is rejected, or with `no_ready_pod: any` sent to
a local pod regardless (fail open).

`balance: utilization` replaces both with GKE's utilization-based waterfall over the pods'
load scores (exporter.sim.utilization); `least_request` is Envoy's power of two choices.
"""

import random
from bisect import bisect_right

from exporter.sim.utilization import UtilizationBalancer, two_choices


class Gateway:
    def __init__(
        self,
        pods_by_region: list[list],
        spill_order: list[list[int]],
        balance: str,
        no_ready_pod: str,
        rng: random.Random,
        spill: str = "none_ready",
        overprovisioning_factor: float = 1.4,
        max_utilization: float = 0.8,
        refresh: float = 5.0,
    ):
        self._pods = pods_by_region
        self._order = [[r] + list(others) for r, others in enumerate(spill_order)]
        self._balance = balance
        self._fail_open = no_ready_pod == "any"
        self._proportional = spill == "proportional"
        self._factor = overprovisioning_factor
        self._rng = rng
        self._ready: list[list] = [list(pods) for pods in pods_by_region]
        self._cursor = [0] * len(pods_by_region)
        self._shares: list[tuple[list[float], list[int]]] = []
        self._recompute()
        self.balancer = None  # set for balance: utilization, which also decides the spill
        if balance == "utilization":
            self.balancer = UtilizationBalancer(pods_by_region, self._order, max_utilization, refresh, rng)

    def update(self, region: int, ready_pods: list) -> None:
        self._ready[region] = ready_pods
        self._recompute()
        if self.balancer is not None:
            self.balancer.update(region, ready_pods)

    def route(self, origin: int):
        """(pod, serving region) for a request from `origin`; pod is None when rejected."""
        if self.balancer is not None:
            pod, region = self.balancer.route(origin)
            return (pod, region) if pod is not None else self._fail(origin)
        if self._proportional:
            cumulative, regions = self._shares[origin]
            if not regions:
                return self._fail(origin)
            i = 0 if len(regions) == 1 else bisect_right(cumulative, self._rng.random() * cumulative[-1])
            region = regions[min(i, len(regions) - 1)]
            return self._pick(region, self._ready[region]), region
        for region in self._order[origin]:
            ready = self._ready[region]
            if ready:
                return self._pick(region, ready), region
        return self._fail(origin)

    def _fail(self, origin: int):
        if not self._fail_open:
            return None, -1
        return self._pick(origin, self._pods[origin]), origin

    def _recompute(self) -> None:
        if not self._proportional:
            return
        self._shares = []
        for order in self._order:
            remaining, cumulative, regions, total = 1.0, [], [], 0.0
            for region in order:
                healthy = len(self._ready[region]) / len(self._pods[region])
                share = min(remaining, healthy * self._factor)
                if share > 0:
                    total += share
                    cumulative.append(total)
                    regions.append(region)
                    remaining -= share
                if remaining <= 0:
                    break
            self._shares.append((cumulative, regions))

    def _pick(self, region: int, pods: list):
        if len(pods) == 1:
            return pods[0]
        if self._balance == "round_robin":
            i = self._cursor[region] % len(pods)
            self._cursor[region] = i + 1
            return pods[i]
        if self._balance == "random":
            return pods[self._rng.randrange(len(pods))]
        return two_choices(pods, self._rng)
