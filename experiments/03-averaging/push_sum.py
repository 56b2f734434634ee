"""Push-sum's rounds to a relative error, against fleet size and the error asked for.

    python experiments/03-averaging/push_sum.py [--repeat 5] [--jobs 2]

Sweeps push-sum.toml over fleet.count and reads each run's variance of the estimates per
round (`results.variance`). The rounds to a relative error ε are the first round whose
standard deviation of the estimates is below ε times the true mean. Kempe, Dobra and
Gehrke (2003, theorem 3.1) bound them by O(log n + log 1/ε + log 1/δ): the script fits
rounds = a + b·log2 n + c·log2(1/ε) and prints the table and the fit in Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import numpy as np

import swarm

HERE = Path(__file__).resolve().parent
SIZES = (100, 1_000, 10_000)
ERRORS = (1e-2, 1e-4, 1e-6)


def rounds_to(variances: list[float], mean: float, error: float) -> int | None:
    for round, variance in enumerate(variances):
        if math.sqrt(max(variance, 0.0)) <= error * abs(mean):
            return round
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="seeds per size (5)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (2)")
    args = parser.parse_args()
    rows = swarm.sweep(
        HERE / "push-sum.toml", {"fleet.count": list(SIZES)}, repeat=args.repeat, jobs=args.jobs
    )
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    fit_x, fit_y = [], []
    head = " | ".join(f"rounds to ε = {e:g}" for e in ERRORS)
    print(f"| n | {head} | variance shrink per round | mass error |")
    print("|---|" + "---|" * (len(ERRORS) + 2))
    for n in SIZES:
        mine = [r for r in rows if int(r["fleet.count"]) == n and r["status"] == "ok"]
        cells = []
        for error in ERRORS:
            found = []
            for r in mine:
                variances = json.loads(r["results.variance"])
                got = rounds_to(variances, float(r["results.true_mean"]), error)
                if got is not None:
                    found.append(got)
                    fit_x.append([1.0, math.log2(n), math.log2(1 / error)])
                    fit_y.append(got)
            mean = statistics.fmean(found) if found else math.nan
            cells.append(f"{mean:.1f} ({min(found)}–{max(found)})" if found else "not reached")
        drift = max(abs(float(r["results.mass_error"])) for r in mine)
        shrink = statistics.fmean(float(r["results.variance_per_cycle"]) for r in mine)
        print(f"| {n:,} | " + " | ".join(cells) + f" | {shrink:.3f} | {drift:.1e} |")
    a, b, c = np.linalg.lstsq(np.array(fit_x), np.array(fit_y, dtype=float), rcond=None)[0]
    print(f"\nfit: rounds = {a:.2f} + {b:.2f}·log2 n + {c:.2f}·log2(1/ε)")


if __name__ == "__main__":
    main()
