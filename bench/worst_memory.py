"""Worst-case memory of the whole sidecar (gunicorn master + worker) at the default caps.

Every cache and buffer that grows with what the upstream prints is bounded (see
exporter.core.memory_bounds); this run fills all of them at once and reads the peak:
- pages just under SCRAPE_MAX_BODY_BYTES, the part the rules do not read as padding;
- as many selected series as the history may hold at this interval and range (the sample
  budget's cap), every one kept for the whole retention so the sample budget fills, each with
  as much label text as the history's label budget and the page can carry (at the default
  caps the body cap binds first);
- four page variants whose values differ, so every sample is a new float, and whose label
  text overflows the parser's label cache.
The peak is read from the kernel (VmHWM of each process: the most it ever held resident),
summed over master and worker, and beside it the PSS at the end, nearer to what the
container's memory cgroup charges (shared pages once).
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.health import start_sidecar
from exporter.config.settings import Settings
from exporter.core import memory_bounds
from exporter.core.scrape import LABEL_VALUE_LIMIT_BYTES

INTERVAL_S = 0.5  # the scrape interval of the run: retention fills in 65 s
RANGE_S = 5  # the rules' longest range: the history keeps it plus 60 s
VARIANTS = 4
RULES = """rules:
  - name: worst_rate
    expr: sum(rate(llm_worst_series[5s]))
    above: 1.0e+15
  - name: worst_count
    expr: count(llm_worst_series)
    above: 1.0e+15
"""


@dataclass(frozen=True)
class WorstMemory:
    series: int  # selected series per page (the history's cap at this interval and range)
    label_bytes_per_series: int
    body_bytes: int
    scrapes: int
    failed_scrapes: int
    peak_rss_kib: int  # sum of VmHWM over master and worker
    end_rss_kib: int
    end_pss_kib: int


def measure(settle_s: float = 8.0, body_cap: int | None = None) -> WorstMemory:
    defaults = Settings()
    retention = RANGE_S + 60.0
    series = memory_bounds.series_cap(defaults.history_max_series, retention, INTERVAL_S)
    body_cap = body_cap or defaults.max_body_bytes
    # Label text per series: what fills the history's label budget, unless the page cannot
    # carry that much (then the body cap is what binds).
    per_series = min(
        memory_bounds.HISTORY_MAX_LABEL_BYTES // series - 500,
        (body_cap - (64 << 10)) // series - 100,
        8 * LABEL_VALUE_LIMIT_BYTES,
    )
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "worst.yaml"
        rules.write_text(RULES)
        bodies = [_write_page(Path(tmp) / f"page{v}.prom", v, series, per_series, body_cap) for v in range(VARIANTS)]
        up_port = procs.free_port()
        upstream = procs.start(["-m", "bench.worst_upstream", str(up_port), *map(str, bodies)])
        procs.wait_until(upstream, up_port, "/-/count", lambda s: s == 200)
        sidecar, port = start_sidecar(
            f"http://127.0.0.1:{up_port}/metrics",
            {
                "SCRAPE_INTERVAL": f"{int(INTERVAL_S * 1000)}ms",
                "RULES_PATH": str(rules),
                "SCRAPE_MAX_BODY_BYTES": str(body_cap),
            },
        )
        try:
            deadline = time.monotonic() + retention + settle_s
            while time.monotonic() < deadline:
                if sidecar.poll() is not None:
                    raise RuntimeError("sidecar exited during the worst-case memory run")
                time.sleep(1.0)
            tree = procs.tree_memory_kib(sidecar.pid)
            pids = [sidecar.pid, *procs.children(sidecar.pid)]
            peak = sum(_hwm_kib(pid) for pid in pids)
            scrapes = int(procs.get(up_port, "/-/count")[1])
            failed = _failed(port)
            return WorstMemory(
                series, per_series, bodies[0].stat().st_size, scrapes, failed, peak, tree["rss"], tree["pss"]
            )
        finally:
            procs.stop(sidecar)
            procs.stop(upstream)


def _write_page(path: Path, variant: int, series: int, label_bytes: int, body_cap: int) -> Path:
    values = max(1, -(-label_bytes // LABEL_VALUE_LIMIT_BYTES))
    size = label_bytes // values
    lines = []
    for i in range(series):
        labels = ",".join(f'l{k}="{i:06d}{"x" * (size - 6)}"' for k in range(values))
        lines.append(f"llm_worst_series{{{labels}}} {variant * 1_000_003 + i}.5\n")
    text = "".join(lines)
    pad_line = 'llm_worst_padding{pad="' + "p" * 4000 + '"} 1\n'
    room = body_cap - len(text) - 1024
    text += pad_line * max(0, room // len(pad_line))
    path.write_text(text)
    return path


def manifest_limit_mib() -> int:
    """The smallest memory limit the shipped manifests give the sidecar container, in MiB."""
    import yaml

    limits = []
    for path in sorted((procs.REPO / "deploy" / "kubernetes").glob("**/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {}) if isinstance(doc, dict) else {}
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                limit = container.get("resources", {}).get("limits", {}).get("memory", "")
                if "healthcheck" in container.get("name", "") and limit.endswith("Mi"):
                    limits.append(int(limit[:-2]))
    if not limits:
        raise RuntimeError("no memory limit for the healthcheck container in deploy/kubernetes")
    return min(limits)


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _failed(port: int) -> int:
    text = procs.get(port, "/metrics")[1].decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("llm_healthcheck_scrape_failures_total{")
        )
    )


if __name__ == "__main__":
    import sys

    print(measure(body_cap=int(sys.argv[1]) if len(sys.argv) > 1 else None))
