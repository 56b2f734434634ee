"""The milliwatt mesh: readings delivered against the power each hearable draws.

    python experiments/milliwatt-mesh/plot.py sweeps/milliwatt-mesh

Reads the sweep's results.csv, prints a Markdown table per (mesh.wake, mesh.power_budget)
with means over the seeds (and the highest device's mean draw over all of them), and
draws readings.png beside this script: readings that reached another device against the
fleet's mean draw per device, one line per wake.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = ("mesh.wake", "mesh.power_budget")


def rows_by_point(rows: list[dict[str, str]]) -> dict[tuple[str, float], list[dict[str, str]]]:
    groups: dict[tuple[str, float], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((row[KEYS[0]], float(row[KEYS[1]])), []).append(row)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep's output folder (--out)")
    args = parser.parse_args()
    with (args.sweep / "results.csv").open(encoding="utf-8") as file:
        groups = rows_by_point(list(csv.DictReader(file)))
    head = ("wake", "budget (mW)", "mean draw (mW)", "highest device (mW)", "readings reached")
    print("| " + " | ".join(head) + " | delivery ratio | mJ per reading reached |")
    print("|---|---|---|---|---|---|---|")
    lines: dict[str, list[tuple[float, float]]] = {}
    # per wake: no budget first, then the budgets from the largest down
    order = sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] != 0, -g[0][1]))
    for (wake, budget), runs in order:

        def mean(key: str, runs: list[dict[str, str]] = runs) -> float:
            return statistics.fmean(float(r[key]) for r in runs)

        draw = mean("results.device_power_w.mean") * 1e3
        top = max(float(r["results.device_power_w.max"]) for r in runs) * 1e3
        reached = mean("results.readings_reached")
        cap = f"{budget * 1e3:g}" if budget > 0 else "none"
        print(
            f"| {wake} | {cap} | {draw:.3f} | {top:.3f} | {reached:,.0f} | "
            f"{mean('results.delivery_ratio'):.3f} | "
            f"{mean('results.joules_per_reading_reached') * 1e3:.2f} |"
        )
        lines.setdefault(wake, []).append((draw, reached))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for wake, points in sorted(lines.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=f"{wake} wake")
    ax.set_xlabel("mean draw per hearable (mW)")
    ax.set_ylabel("readings that reached another device")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title("tiny-pioneer: 300 earbuds, 600 s, duty cycle 0.25")
    fig.tight_layout()
    fig.savefig(HERE / "readings.png", dpi=110)
    print(f"wrote {HERE / 'readings.png'}")


if __name__ == "__main__":
    main()
