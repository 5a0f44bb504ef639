"""The fleet view and the fail-open guard in /health?verbose and the JSON answers.

One line for the view (in use, or why not and that the pod decides standalone), one for the
guard when the block sets max_unready_fraction (holding the pod in, armed, or inactive without a
view). Neither line is ever the reason a pod is out, so both carry [+]: an operator looking
for [-] finds only what takes the pod out.
"""

from exporter.core.decision import Decision


def fleet_lines(decision: Decision) -> list[str]:
    fleet = decision.fleet
    if fleet is None:
        return []
    if fleet.in_use:
        counts = f"{fleet.pods} pods, {fleet.unready} unready" if fleet.pods is not None else f"{fleet.series} series"
        lines = [f"[+] fleet: ok: {counts} (answer {fleet.age:.0f}s old)"]
    else:
        lines = [f"[+] fleet: not in use, deciding standalone: {fleet.why_not}"]
    limit = fleet.config.max_unready_fraction
    if limit is None:
        return lines
    if decision.fail_open:
        lines.append(f"[+] fail-open guard: holds this pod in (max_unready_fraction {limit:g})")
    elif fleet.in_use:
        lines.append(
            f"[+] fail-open guard: armed (max_unready_fraction {limit:g}): {fleet.unready} of {fleet.pods} pods unready"
        )
    else:
        lines.append("[+] fail-open guard: inactive: no fleet view; busy rules take the pod out as standalone")
    return lines


def fleet_document(decision: Decision) -> dict | None:
    fleet = decision.fleet
    if fleet is None:
        return None
    config, last = fleet.config, fleet.last
    return {
        "url": fleet.url,
        "interval_seconds": config.interval,
        "timeout_seconds": config.timeout,
        "max_age_seconds": config.max_age,
        "max_unready_fraction": config.max_unready_fraction,
        "queries": [{"name": name, "expr": expr} for name, expr in config.queries],
        "in_use": fleet.in_use,
        "not_in_use_because": fleet.why_not or None,
        "pods": fleet.pods,
        "unready": fleet.unready,
        "series": fleet.series,
        "last_ok": None if last is None else last.ok,
        "last_error": None if last is None or last.ok else last.error,
        "last_failure_reason": None if last is None else last.reason,
        "last_success_time": fleet.last_success_time,
        "last_success_age_seconds": fleet.age,
        "duration_seconds": None if last is None else last.duration,
        "guard_holds_pod_in": decision.fail_open,
    }
