"""Sick pods: the per-pod `faults:` list of a scenario, and applying it to the server models.

    faults:
      - {region: us-east, pod: 2, at: 10m, for: 15m, kind: slow, factor: 0.3}
      - {region: us-west, pod: 1, at: 20m, for: 5m, kind: stall}
      - {region: europe, pod: 4, at: 30m, for: 2m, kind: crash}
      - {region: us-east, pod: 5, at: 5m, for: 20m, kind: kv_leak, factor: 0.05}

- slow: every forward pass takes 1/factor as long (a throttled GPU, a noisy neighbour).
- stall: the server accepts requests and makes no progress: the queue grows, token and
  forward-pass counters stop (a wedged NCCL call, a dead engine loop behind a live HTTP server).
- crash: the process dies at `at`: queued and running requests are lost, connections (requests
  and /metrics scrapes) are refused for `for` (the restart and the model load), then a fresh
  process starts with zeroed counters.
- kv_leak: KV blocks are held without any request owning them, `factor` of the cache more each
  minute (default 0.05), so KV usage climbs without load until nothing can be admitted; at the
  end of `for` the blocks are freed (the pod was restarted by someone).

The engines' metric pages read the same model, so rules see what a real server shows.
"""

from dataclasses import dataclass

KINDS = ("slow", "stall", "crash", "kv_leak")
_KEYS = ("region", "pod", "at", "for", "kind", "factor")


@dataclass(frozen=True)
class FaultSpec:
    region: str
    pod: int  # 1-based, as in the pod names ("us-east-2")
    at: float
    duration: float
    kind: str
    factor: float

    @property
    def pod_name(self) -> str:
        return f"{self.region}-{self.pod}"


def parse_faults(reader, value, replicas: dict[str, int]) -> tuple[FaultSpec, ...]:
    """Read `faults:` with the scenario reader (its problems carry file:line:col)."""
    where = ("faults",)
    if value is None:
        return ()
    if not isinstance(value, list):
        reader.fail(where, "must be a list of faults such as {region: us-east, pod: 1, at: 10m, for: 5m, kind: stall}")
        return ()
    faults = []
    for i, item in enumerate(value):
        here = where + (i,)
        data = reader.mapping(item, here, _KEYS)
        if not data:
            continue
        region = reader.text(data.get("region"), here + ("region",), None)
        if region is None:
            reader.fail(here, "needs region:")
        elif region not in replicas:
            reader.fail(here + ("region",), f"{region!r} is not a region of this scenario")
            region = None
        pod = reader.number(data.get("pod"), here + ("pod",), minimum=1, integer=True, default=1)
        if region is not None and pod is not None and pod > replicas[region]:
            reader.fail(here + ("pod",), f"region {region} has {replicas[region]} pods, got {pod}")
            region = None
        kind = reader.choice(data.get("kind"), here + ("kind",), KINDS, None)
        if kind is None and "kind" not in data:
            reader.fail(here, f"needs kind: one of {', '.join(KINDS)}")
        at = reader.duration(data.get("at"), here + ("at",), 0.0, positive=False)
        duration = reader.duration(data.get("for"), here + ("for",), None)
        if duration is None and "for" not in data:
            reader.fail(here, "needs for: (how long the fault lasts)")
        default_factor = {"slow": 0.5, "kv_leak": 0.05}.get(kind or "", 1.0)
        factor = reader.number(data.get("factor"), here + ("factor",), above=0, default=default_factor)
        if kind == "slow" and factor is not None and factor >= 1:
            reader.fail(here + ("factor",), f"a slow pod runs at factor x its speed; must be below 1, got {factor:g}")
        if "factor" in data and kind in ("stall", "crash"):
            reader.fail(here + ("factor",), f"kind {kind} takes no factor")
        if region is None or kind is None or duration is None or factor is None or at is None:
            continue
        faults.append(FaultSpec(region, int(pod), at, duration, kind, factor))
    return tuple(faults)


class FaultSchedule:
    """Starts and ends each fault at its time; the simulation calls apply(t) once per step."""

    def __init__(self, faults, models_by_name: dict):
        self._pending = sorted(((f.at, f) for f in faults), key=lambda x: x[0])
        self._models = models_by_name
        self._active: list[FaultSpec] = []
        self.lost_in_crashes = 0

    def apply(self, t: float) -> None:
        while self._pending and self._pending[0][0] <= t + 1e-9:
            _, fault = self._pending.pop(0)
            self._start(fault, t)
        for fault in list(self._active):
            model = self._models[fault.pod_name]
            if t + 1e-9 >= fault.at + fault.duration:
                self._active.remove(fault)
                self._end(fault, model, t)
            elif fault.kind == "kv_leak":
                budget = model.config.kv_cache_tokens
                leaked = int(budget * min(1.0, fault.factor * (t - fault.at) / 60.0))
                model.kv_leaked = max(model.kv_leaked, leaked)

    def _start(self, fault: FaultSpec, t: float) -> None:
        model = self._models[fault.pod_name]
        model.advance_to(t)
        if fault.kind == "slow":
            model.set_speed(fault.factor)
        elif fault.kind == "stall":
            model.stalled = True
        elif fault.kind == "crash":
            self.lost_in_crashes += model.crash()
        self._active.append(fault)

    def _end(self, fault: FaultSpec, model, t: float) -> None:
        model.advance_to(t)
        if fault.kind == "slow":
            model.set_speed(1.0)
        elif fault.kind == "stall":
            model.stalled = False
            model.resume(fault.duration)
        elif fault.kind == "crash":
            model.restart()
        elif fault.kind == "kv_leak":
            model.kv_leaked = 0
            model.resume()
