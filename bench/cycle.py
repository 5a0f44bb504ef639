"""Evaluation cycle CPU time (scrape + select + parse + evaluate) beside a full parse.

For each capture the matching shipped rule pack is loaded into a real Evaluator, which scrapes
the capture from a loopback upstream in another process. The figure is the CPU time of the
thread running `Evaluator.cycle()` (time.thread_time, so the upstream's work is not counted),
next to prometheus_client parsing the whole page, the cost a naive sidecar pays every cycle.
The evaluator's clock steps 1 s per cycle, as in production, so history holds what a real
sidecar's would.
"""

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench import procs

# capture name prefix -> the shipped rule pack that reads that server's metrics
PACKS = (
    ("tgis-", "tgi.yaml"),
    ("tgi-", "tgi.yaml"),
    ("vllm-", "vllm.yaml"),
    ("sglang-", "sglang.yaml"),
    ("triton-", "triton-trtllm.yaml"),
    ("llamacpp-", "llamacpp.yaml"),
    ("synthetic-", "tgi.yaml"),
)


@dataclass(frozen=True)
class CycleResult:
    capture: str
    size: int
    pack: str
    cycle_ms: float  # median CPU per cycle
    full_parse_ms: float  # median CPU of a full prometheus_client parse
    samples: int  # samples the cycle kept

    @property
    def ratio(self) -> float:
        return self.cycle_ms / self.full_parse_ms if self.full_parse_ms else float("nan")


class _StepClock:
    def __init__(self):
        self.now = 1_700_000_000.0
        self.mono = 1000.0

    def time(self):
        return self.now

    def monotonic(self):
        return self.mono

    def step(self, seconds: float = 1.0):
        self.now += seconds
        self.mono += seconds


def pack_for(capture: str) -> str:
    for prefix, pack in PACKS:
        if capture.startswith(prefix):
            return pack
    raise ValueError(f"no rule pack known for {capture}")


def measure(captures: list[Path], cycles: int = 200, parses: int = 30) -> list[CycleResult]:
    port = procs.free_port()
    upstream = procs.start(["-m", "bench.upstream", str(port), *map(str, captures)])
    try:
        procs.wait_until(upstream, port, "/-/count", lambda s: s == 200)
        return [_measure_one(port, path, cycles, parses) for path in captures]
    finally:
        procs.stop(upstream)


def _measure_one(port: int, capture: Path, cycles: int, parses: int) -> CycleResult:
    from exporter.config.settings import load_settings
    from exporter.serve.evaluator import Evaluator

    pack = pack_for(capture.name)
    settings = load_settings(
        {
            "RULES_PATH": str(procs.REPO / "rules" / pack),
            "METRICS_ENDPOINT": f"http://127.0.0.1:{port}/files/{capture.name}",
            "SCRAPE_TIMEOUT": "900ms",
        }
    )
    clock = _StepClock()
    evaluator = Evaluator(settings, clock=clock)
    try:
        # Warm up until the history is at its steady size (retention is range + 60 s).
        warmup = int(evaluator.ruleset.max_range_seconds) + 61
        for _ in range(warmup):
            clock.step()
            evaluator.cycle()
        costs = []
        for _ in range(cycles):
            clock.step()
            started = time.thread_time()
            decision = evaluator.cycle()
            costs.append(time.thread_time() - started)
            if not decision.scrape.ok:
                raise RuntimeError(f"{capture.name}: scrape failed: {decision.scrape.error}")
    finally:
        evaluator.stop()
    body = capture.read_bytes()
    return CycleResult(
        capture.name,
        len(body),
        pack,
        statistics.median(costs) * 1000,
        _full_parse_ms(body, parses),
        decision.scrape.series,
    )


def _full_parse_ms(body: bytes, repeats: int) -> float:
    costs = []
    for _ in range(repeats):
        started = time.thread_time()
        for family in text_string_to_metric_families(body.decode("utf-8")):
            for _sample in family.samples:
                pass
        costs.append(time.thread_time() - started)
    return statistics.median(costs) * 1000
