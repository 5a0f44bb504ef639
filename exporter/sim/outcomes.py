"""What a run did to users, in the panel's terms: requests lost and how long the rest waited.

Lost = rejected (no ready pod anywhere) + refused (a full server's 429) + failed (sent to a
crashed server) + dropped (in a server when it crashed) + timed out (no first token within
the scenario's `client_timeout`, default 60 s; counted after the fact, so
the model keeps serving a request whose client has gone, which slightly overstates the
load the other requests see). Queue waits include the requests still queued at the end,
at the wait they had by then, so a stalled server's queue is not left out of the p95.
"""

from dataclasses import dataclass

from exporter.sim.cluster import SimResult
from exporter.sim.report import quantile


@dataclass(frozen=True)
class Outcome:
    arrivals: int
    rejected: int
    refused: int
    failed: int
    dropped: int
    timed_out: int
    wait: tuple[float, float, float]  # p50, p95, p99 seconds in the queue
    ttft_p95: float
    flips: int  # readiness changes the gateway saw
    unready_seconds: float  # pod-seconds out of rotation
    spilled: int
    fail_open_seconds: float  # pod-seconds the guard held a pod in

    @property
    def lost(self) -> int:
        return self.rejected + self.refused + self.failed + self.dropped + self.timed_out

    @property
    def lost_pct(self) -> float:
        return 100.0 * self.lost / self.arrivals if self.arrivals else 0.0

    @property
    def spilled_pct(self) -> float:
        return 100.0 * self.spilled / self.arrivals if self.arrivals else 0.0


def outcome(result: SimResult) -> Outcome:
    timeout = result.scenario.client_timeout
    end = result.times[-1] if result.times else 0.0
    waits = [r[3] for r in result.requests]
    ttfts = [r[4] for r in result.requests]
    timed_out = sum(1 for ttft in ttfts if ttft > timeout)
    for arrival, has_token in result.unfinished:
        if not has_token:
            waits.append(end - arrival)
            if end - arrival > timeout:
                timed_out += 1
    waits.sort()
    ttfts.sort()
    step = result.scenario.step
    return Outcome(
        arrivals=sum(sum(r.arrivals) for r in result.regions),
        rejected=sum(sum(r.rejected) for r in result.regions),
        refused=sum(sum(r.refused) for r in result.regions),
        failed=sum(sum(r.failed) for r in result.regions),
        dropped=result.dropped,
        timed_out=timed_out,
        wait=(quantile(waits, 0.5), quantile(waits, 0.95), quantile(waits, 0.99)),
        ttft_p95=quantile(ttfts, 0.95),
        flips=sum(p.probe.flips for p in result.pods),
        unready_seconds=sum(len(p.ready) - sum(p.ready) for p in result.pods) * step,
        spilled=sum(sum(r.spilled) for r in result.regions),
        fail_open_seconds=sum(p.fail_open_seconds for p in result.pods),
    )
