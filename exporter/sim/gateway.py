"""A multi-cluster gateway: local region first, spill to the next region with a ready pod.

Each region keeps the list of its pods that are ready (as the Endpoints show them). A
request from region R goes to a ready pod of R; if R has none, to the first region in
R's spill order that has one. With no ready pod anywhere the request is rejected, or
with `no_ready_pod: any` sent to a local pod regardless (fail open).
"""

import random


class Gateway:
    def __init__(self, pods_by_region: list[list], spill_order: list[list[int]], balance: str,
                 no_ready_pod: str, rng: random.Random):  # fmt: skip
        self._pods = pods_by_region
        self._spill = spill_order
        self._balance = balance
        self._fail_open = no_ready_pod == "any"
        self._rng = rng
        self._ready: list[list] = [[] for _ in pods_by_region]
        self._cursor = [0] * len(pods_by_region)

    def update(self, region: int, ready_pods: list) -> None:
        self._ready[region] = ready_pods

    def route(self, origin: int):
        """(pod, serving region) for a request from `origin`; pod is None when rejected."""
        ready = self._ready[origin]
        region = origin
        if not ready:
            for other in self._spill[origin]:
                if self._ready[other]:
                    region, ready = other, self._ready[other]
                    break
            else:
                if not self._fail_open:
                    return None, -1
                ready = self._pods[origin]
        return self._pick(region, ready), region

    def _pick(self, region: int, pods: list):
        if len(pods) == 1:
            return pods[0]
        if self._balance == "round_robin":
            i = self._cursor[region] % len(pods)
            self._cursor[region] = i + 1
            return pods[i]
        if self._balance == "random":
            return pods[self._rng.randrange(len(pods))]
        return min(pods, key=lambda p: p.model.in_system)
