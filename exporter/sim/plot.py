"""The PNG of a simulation run: queues, readiness, where traffic went, queue wait.

matplotlib is imported here only (the `sim` extra); nothing else in the sidecar needs it.
"""

import math

from exporter.sim.cluster import SimResult
from exporter.sim.report import quantile

QUEUE_METRIC = {"tgi": "tgi_queue_size", "vllm": "vllm:num_requests_waiting", "sglang": "sglang:num_queue_reqs"}


def plot_run(result: SimResult, path, thresholds: list | None = None) -> None:
    """thresholds: trip values, or (trip, recover_below) pairs whose band is shaded."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.colors import ListedColormap

    scenario = result.scenario
    times = [t / 60 for t in result.times]  # minutes read better than seconds on an hour
    regions = [r.name for r in result.regions]
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True, gridspec_kw={"height_ratios": [3, 2.2, 2, 2]})
    title = f"{scenario.name}: {len(result.pods)} pods in {len(regions)} regions, rules: {result.rules_label}"
    fig.suptitle(title, fontsize=11)

    ax = axes[0]
    seen = set()
    for pod in result.pods:
        label = regions[pod.region] if pod.region not in seen else None
        seen.add(pod.region)
        ax.plot(times, pod.queue, color=colors(pod.region % 10), linewidth=0.7, alpha=0.75, label=label)
    for entry in thresholds or []:
        value, recover = entry if isinstance(entry, tuple) else (entry, None)
        ax.axhline(value, color="black", linestyle="--", linewidth=0.9)
        ax.annotate(f"threshold {value:g}", (times[0], value), xytext=(2, 3), textcoords="offset points", fontsize=8)
        if recover is not None and recover < value:
            # The hysteresis band: a pod out of service comes back only below its lower edge.
            ax.axhspan(recover, value, color="grey", alpha=0.15, linewidth=0)
            ax.axhline(recover, color="black", linestyle=":", linewidth=0.9)
            ax.annotate(
                f"recovers below {recover:g}",
                (times[0], recover),
                xytext=(2, 3),
                textcoords="offset points",
                fontsize=8,
            )
    ax.set_ylabel(f"queue per pod\n({QUEUE_METRIC[scenario.engine]})")
    ax.legend(loc="upper right", fontsize=8, ncol=len(regions))

    ax = axes[1]
    grid = [list(pod.ready) for pod in result.pods]
    extent = (times[0] - (times[1] - times[0] if len(times) > 1 else 0), times[-1], len(grid) - 0.5, -0.5)
    ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        extent=extent,
        cmap=ListedColormap(["#d62728", "#2ca02c"]),
        vmin=0,
        vmax=1,
    )
    ax.set_yticks(range(len(result.pods)))
    ax.set_yticklabels([p.name for p in result.pods], fontsize=max(4, 9 - len(result.pods) // 6))
    ax.set_ylabel("ready (green)\nper pod")

    ax = axes[2]
    window = max(1, int(round(30 / scenario.step)))  # 30 s moving sums keep Poisson noise readable
    total = _moving_sum([sum(r.arrivals[k] for r in result.regions) for k in range(len(times))], window)
    shares = []
    for series in result.regions:
        served = _moving_sum(list(series.served), window)
        shares.append([s / n if n else 0.0 for s, n in zip(served, total)])
    for attr in ("refused", "rejected"):
        lost = _moving_sum([sum(getattr(r, attr)[k] for r in result.regions) for k in range(len(times))], window)
        shares.append([s / n if n else 0.0 for s, n in zip(lost, total)])
    ax.stackplot(
        times,
        shares,
        colors=[colors(r % 10) for r in range(len(regions))] + ["#e377c2", "#444444"],
        labels=[f"served in {n}" for n in regions] + ["refused (429)", "no ready pod"],
        alpha=0.85,
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("traffic share\nby serving region")
    ax.legend(loc="lower right", fontsize=7, ncol=len(regions) + 2)

    ax = axes[3]
    bin_steps = max(1, int(round(max(scenario.step, scenario.duration / 180) / scenario.step)))
    centers, p95 = _binned_wait_p95(result, bin_steps)
    ax.plot([c / 60 for c in centers], p95, color="black", linewidth=1.0)
    ax.set_ylabel("p95 queue wait (s)\nby arrival time")
    ax.set_xlabel("time (minutes)")
    ax.set_ylim(bottom=0)

    for ax in axes:
        ax.grid(True, linewidth=0.3, alpha=0.6)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _moving_sum(values: list[int], window: int) -> list[float]:
    out, acc = [], 0
    for k, v in enumerate(values):
        acc += v
        if k >= window:
            acc -= values[k - window]
        out.append(acc)
    return out


def _binned_wait_p95(result: SimResult, bin_steps: int) -> tuple[list[float], list[float]]:
    width = bin_steps * result.scenario.step
    count = max(1, int(math.ceil(len(result.times) / bin_steps)))
    bins: list[list[float]] = [[] for _ in range(count)]
    for arrival, _, _, wait, _, _ in result.requests:
        bins[min(int(arrival // width), count - 1)].append(wait)
    centers = [(k + 0.5) * width for k in range(count)]
    return centers, [quantile(sorted(b), 0.95) for b in bins]
