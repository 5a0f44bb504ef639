"""The kubelet's readiness probe, as Kubernetes documents it.

The container starts unready. The first probe runs `initialDelaySeconds` after start,
then one every `periodSeconds`. A probe succeeds when /health answers 200 within
`timeoutSeconds`. An unready pod becomes ready after `successThreshold` successes in a
row; a ready pod becomes unready after `failureThreshold` failures in a row. Only
these transitions change the Endpoints the gateway routes to.
"""

from exporter.sim.scenario import ProbeSpec


class ReadinessProbe:
    __slots__ = ("spec", "next_at", "ready", "_successes", "_failures", "flips")

    def __init__(self, spec: ProbeSpec, phase: float = 0.0):
        self.spec = spec
        # Kubelets start probing each pod at its own moment; the phase spreads them out.
        self.next_at = spec.initial_delay + phase
        self.ready = False
        self._successes = 0
        self._failures = 0
        self.flips = 0

    def due(self, now: float) -> bool:
        return now + 1e-9 >= self.next_at

    def observe(self, now: float, healthy: bool, latency: float) -> bool:
        """Record one probe at `now`; returns True when readiness changed."""
        self.next_at += self.spec.period
        if self.next_at <= now:  # a long step skipped probes; resume on the period grid
            missed = int((now - self.next_at) // self.spec.period) + 1
            self.next_at += missed * self.spec.period
        success = healthy and latency <= self.spec.timeout
        if success:
            self._successes += 1
            self._failures = 0
            if not self.ready and self._successes >= self.spec.success_threshold:
                self.ready = True
                self.flips += 1
                return True
        else:
            self._failures += 1
            self._successes = 0
            if self.ready and self._failures >= self.spec.failure_threshold:
                self.ready = False
                self.flips += 1
                return True
        return False
