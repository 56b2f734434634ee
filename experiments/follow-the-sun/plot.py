"""Follow the sun: carbon and accuracy of green and random client selection, from a sweep.

    python experiments/follow-the-sun/plot.py sweeps/follow-the-sun

Reads the sweep's results.csv (one row per run, each with its random-selection variant),
prints a Markdown table per grid.solar_share (means over the seeds, and the worst seed's
accuracy change) and draws co2.png beside this script: kilograms of CO2e of both
policies against the depth of the midday dip.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def table(rows: list[dict[str, str]]) -> list[tuple[float, float, float, float, float, float]]:
    """Per solar_share: green kg, random kg, CO2 change %, accuracy change (points): mean
    and worst, and green's accuracy."""
    groups: dict[float, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(float(row["grid.solar_share"]), []).append(row)
    out = []
    for share, runs in sorted(groups.items()):
        green = [float(r["results.energy.co2_g"]) / 1000 for r in runs]
        random = [float(r["results.variants.random.co2_g"]) / 1000 for r in runs]
        change = [float(r["results.variants.random.co2_change"]) * 100 for r in runs]
        points = [
            (
                float(r["results.global_accuracy"])
                - float(r["results.variants.random.global_accuracy"])
            )
            * 100
            for r in runs
        ]
        out.append(
            (
                share,
                statistics.fmean(green),
                statistics.fmean(random),
                statistics.fmean(change),
                statistics.fmean(points),
                min(points),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep's output folder (--out)")
    args = parser.parse_args()
    with (args.sweep / "results.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    found = table(rows)
    head = ("solar_share", "green (kg CO2e)", "random (kg CO2e)", "change", "accuracy change")
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|")
    for share, green, random, change, points, worst in found:
        print(
            f"| {share:g} | {green:.1f} | {random:.1f} | {change:+.1f}% | "
            f"{points:+.2f} pt, {worst:+.2f} pt |"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = [f[0] for f in found]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(shares, [f[2] for f in found], "o-", label="random selection")
    ax.plot(shares, [f[1] for f in found], "o-", label="green selection")
    ax.set_xlabel("midday dip of each grid's intensity (grid.solar_share)")
    ax.set_ylabel("kg CO2e in a simulated day")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title("30 GPUs, FedAvg, three regions eight hours apart")
    fig.tight_layout()
    fig.savefig(HERE / "co2.png", dpi=110)
    print(f"wrote {HERE / 'co2.png'}")


if __name__ == "__main__":
    main()
