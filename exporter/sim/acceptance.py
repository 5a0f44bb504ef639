"""The issue's acceptance inequalities, checked on panel rows.

Per cell (scenario x gateway mode), for every pack row:
- fleet: a `+fleet` row loses at most min(none, seed) + 0.2 percentage points and its p95
  queue wait is at most 1.05 x min(none, seed) + 0.5 s;
- standalone: a row without the fleet view loses at most none + 0.5 pp, and summed over
  every cell of the panel its lost % and its p95 are below the single threshold's (where the
  threshold loses nothing at all, losing nothing holds);
- sick pods (scenarios named sick-*): lost % and p95 at most half of none's and below seed's
  (where seed's p95 is 0.00 s nothing can be below it, so an equal 0.00 s holds);
- hovering: at least 90 % fewer flips than seed, and no more pod-seconds unready.
"""

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    criterion: str
    where: str  # "scenario/mode policy", or "panel policy"
    holds: bool
    detail: str  # the figures compared


def cells(rows) -> dict:
    by_cell: dict = defaultdict(dict)
    for row in rows:
        by_cell[(row.scenario, row.mode)][row.policy.name] = row
    return by_cell


def checks(rows) -> list[Check]:
    out: list[Check] = []
    sums: dict = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # policy -> its lost, p95; seed's on the same cells
    for (scenario, mode), policies in cells(rows).items():
        none, seed = policies.get("none"), policies.get("seed")
        if none is None or seed is None:
            continue
        n, s = none.outcome, seed.outcome
        for name, row in policies.items():
            if row.policy.kind not in ("pack", "rules") or not row.policy.files:
                continue
            o = row.outcome
            where = f"{scenario}/{mode} {name}"
            if row.policy.fleet:
                lost_cap = min(n.lost_pct, s.lost_pct) + 0.2
                p95_cap = 1.05 * min(n.wait[1], s.wait[1]) + 0.5
                out.append(Check("fleet lost", where, o.lost_pct <= lost_cap, f"{o.lost_pct:.2f}% <= {lost_cap:.2f}%"))
                out.append(Check("fleet p95", where, o.wait[1] <= p95_cap, f"{o.wait[1]:.2f}s <= {p95_cap:.2f}s"))
            else:
                cap = n.lost_pct + 0.5
                out.append(Check("standalone lost", where, o.lost_pct <= cap, f"{o.lost_pct:.2f}% <= {cap:.2f}%"))
                total = sums[name]
                total[0] += o.lost_pct
                total[1] += o.wait[1]
                total[2] += s.lost_pct
                total[3] += s.wait[1]
            if scenario.startswith("sick"):
                lost_ok = o.lost_pct <= n.lost_pct / 2 and o.lost_pct < s.lost_pct
                below = o.wait[1] < s.wait[1] or round(o.wait[1], 2) == round(s.wait[1], 2) == 0
                p95_ok = o.wait[1] <= n.wait[1] / 2 and below
                out.append(
                    Check(
                        "sick lost",
                        where,
                        lost_ok,
                        f"{o.lost_pct:.2f}% vs none/2 {n.lost_pct / 2:.2f}%, seed {s.lost_pct:.2f}%",
                    )
                )
                out.append(
                    Check(
                        "sick p95",
                        where,
                        p95_ok,
                        f"{o.wait[1]:.2f}s vs none/2 {n.wait[1] / 2:.2f}s, seed {s.wait[1]:.2f}s",
                    )
                )
            if scenario == "hovering":
                flips_ok = o.flips <= 0.1 * s.flips
                out.append(Check("hovering flips", where, flips_ok, f"{o.flips} <= 10% of {s.flips}"))
                unready_ok = o.unready_seconds <= s.unready_seconds
                out.append(
                    Check(
                        "hovering unready",
                        where,
                        unready_ok,
                        f"{o.unready_seconds:.0f} <= {s.unready_seconds:.0f} pod-s",
                    )
                )
    for name, (lost, p95, seed_lost, seed_p95) in sorted(sums.items()):
        # Where the threshold loses nothing over the whole panel, nothing can lose less: 0 = 0 holds.
        lost_ok = lost < seed_lost or round(lost, 2) == round(seed_lost, 2) == 0
        out.append(Check("panel lost sum", f"panel {name}", lost_ok, f"{lost:.2f} < seed {seed_lost:.2f}"))
        out.append(Check("panel p95 sum", f"panel {name}", p95 < seed_p95, f"{p95:.1f}s < seed {seed_p95:.1f}s"))
    return out
