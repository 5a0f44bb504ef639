"""A synthetic /metrics page of about 1 MB: the real TGI capture plus many unrelated families.

The families a rule pack reads are a small part of a big page, as on a server that also
exports per-adapter, per-GPU or process metrics. Deterministic, so runs compare.
"""

from pathlib import Path

TARGET_BYTES = 1_000_000


def build(tgi_page: bytes, target: int = TARGET_BYTES) -> bytes:
    parts = [tgi_page.rstrip(b"\n") + b"\n"]
    size = len(parts[0])
    family = 0
    while size < target:
        name = f"synthetic_adapter_latency_seconds_{family}"
        lines = [f"# HELP {name} Per-adapter request latency (synthetic filler).", f"# TYPE {name} histogram"]
        for adapter in range(8):
            labels = f'adapter="lora-{adapter}",model_name="meta-llama/Llama-3.1-8B-Instruct"'
            cumulative = 0
            for i, bound in enumerate((0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)):
                cumulative += (family * 7 + adapter * 3 + i) % 13
                lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {cumulative}')
            lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {cumulative}')
            lines.append(f"{name}_sum{{{labels}}} {cumulative * 0.37:.6f}")
            lines.append(f"{name}_count{{{labels}}} {cumulative}")
        text = ("\n".join(lines) + "\n").encode()
        parts.append(text)
        size += len(text)
        family += 1
    return b"".join(parts)


def write(tgi_capture: Path, directory: Path) -> Path:
    path = directory / "synthetic-1mb.prom"
    path.write_bytes(build(tgi_capture.read_bytes()))
    return path
