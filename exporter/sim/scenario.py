"""Scenario files for `llm-healthcheck simulate`: regions, replicas, load, probes, rules.

    name: regional-spike
    duration: 1h                 # a Prometheus duration or seconds
    step: 1s                     # resolution of the recorded series
    seed: 7
    engine: tgi                  # tgi | vllm | sglang: which metric names the pods print
    rules: {metric: tgi_queue_size, threshold: 15}   # or a rule file / list of files, relative to this file
    probe:                       # the pod's readinessProbe, Kubernetes spelling and defaults
      periodSeconds: 10
      timeoutSeconds: 1
      failureThreshold: 3
      successThreshold: 1
      initialDelaySeconds: 0
    sidecar: {interval: 1s, latency: 2ms}   # evaluation interval (default: the rules' scrape.interval)
    gateway:
      balance: round_robin       # round_robin | random | least_request (two choices) | utilization (GKE waterfall)
      no_ready_pod: reject       # reject | any: what happens when no region has a ready pod
      spill: none_ready          # none_ready | proportional (Envoy-style, see exporter.sim.gateway)
      overprovisioning_factor: 1.4   # proportional only
      max_utilization: 0.8       # utilization only: a region fills to this mean load score, then spills
      refresh: 5s                # utilization only: how often the balancer reads the pods' scores
    model: {max_batch_size: 16, ...}        # server model for every pod (see exporter.sim.model)
    regions:
      - name: us-east
        replicas: 4
        load: {shape: spike, base: 8, peak: 20, start: 900, duration: 600, rise: 60}
        spill_to: [us-west]      # preference order when no local pod is ready; default: the others in order
        model: {...}             # overrides for this region's pods

Every problem is reported at once, as `file:line:col: message`.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from exporter.config.errors import ConfigError, Problem
from exporter.config.yamldoc import parse_document
from exporter.sim.faults import FaultSpec
from exporter.sim.fleet import FleetSpec
from exporter.sim.model import ModelConfig
from exporter.sim.profiles import RateFn
from exporter.sim.scenario_extras import read_extras

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
BALANCES = ("round_robin", "random", "least_request", "utilization")
NO_READY = ("reject", "any")
SPILLS = ("none_ready", "proportional")
GATEWAY_KEYS = ("balance", "no_ready_pod", "spill", "overprovisioning_factor", "max_utilization", "refresh")
_TOP_KEYS = (
    "name",
    "description",
    "duration",
    "step",
    "seed",
    "engine",
    "rules",
    "probe",
    "sidecar",
    "gateway",
    "model",
    "regions",
    "faults",
    "fleet",
    "client_timeout",
)
_PROBE_KEYS = {
    "periodSeconds": ("period", 10.0),
    "timeoutSeconds": ("timeout", 1.0),
    "failureThreshold": ("failure_threshold", 3),
    "successThreshold": ("success_threshold", 1),
    "initialDelaySeconds": ("initial_delay", 0.0),
}
_MODEL_NUMBERS = {
    "max_batch_size": int,
    "kv_cache_tokens": int,
    "prefill_seconds": float,
    "prefill_seconds_per_token": float,
    "decode_seconds": float,
    "decode_seconds_per_request": float,
    "max_concurrent_requests": int,
}
_LENGTH_KEYS = ("kind", "mean", "sigma", "low", "high")


@dataclass(frozen=True)
class ProbeSpec:
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay: float = 0.0


@dataclass(frozen=True)
class RulesSpec:
    """Either rule files or the seed's single threshold (`sum(metric) > threshold`)."""

    files: tuple[str, ...] = ()
    metric: str = "tgi_queue_size"
    threshold: float = 15.0

    @property
    def label(self) -> str:
        if self.files:
            return ", ".join(os.path.relpath(f) if os.path.isabs(f) else f for f in self.files)
        return f"sum({self.metric}) > {self.threshold:g}"


@dataclass(frozen=True)
class RegionSpec:
    name: str
    replicas: int
    load: RateFn
    spill_to: tuple[str, ...]
    model: ModelConfig


@dataclass(frozen=True)
class Scenario:
    name: str
    file: str
    description: str
    duration: float
    step: float
    seed: int
    engine: str
    rules: RulesSpec
    probe: ProbeSpec
    sidecar_interval: float | None
    sidecar_latency: float
    balance: str
    no_ready_pod: str
    spill: str
    overprovisioning_factor: float
    regions: tuple[RegionSpec, ...]
    max_utilization: float = 0.8
    refresh: float = 5.0

    @property
    def replicas(self) -> int:
        return sum(r.replicas for r in self.regions)

    # Read by exporter.sim.scenario_extras; declared here, after the others, with defaults.
    faults: tuple[FaultSpec, ...] = ()
    fleet: FleetSpec = FleetSpec()  # the fleet view's lag and guard when a run simulates one
    client_timeout: float = 60.0  # a client gives up on a request without its first token by then


def resolve_scenario(name_or_path: str) -> Path:
    """A path to a file, or the name of a shipped scenario (`spillover` -> scenarios/spillover.yaml)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        return path
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def shipped_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = f"; shipped scenarios: {', '.join(shipped_scenarios())}"
        raise ConfigError([Problem(file, message="no such file" + hint)]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([Problem(file, message=f"cannot read: {getattr(err, 'strerror', None) or err}")]) from None
    from exporter.sim.scenario_reader import Reader  # the reader builds this module's Scenario

    doc = parse_document(text)
    reader = Reader(file, doc.spots)
    for p in doc.problems:
        reader.problems.append(Problem(file, p.line, p.col, None, p.message))
    if doc.value is None or reader.problems:
        if not reader.problems:
            reader.fail((), "the file is empty; a scenario needs at least regions:")
        raise ConfigError(sorted(reader.problems))
    scenario = reader.scenario(doc.value, path)
    if isinstance(doc.value, dict):
        scenario = read_extras(reader, doc.value, scenario)
    if reader.problems:
        raise ConfigError(sorted(set(reader.problems)))
    return scenario
