"""The scaling wall: coordination against fleet size and against geography.

    python experiments/07-scaling-wall/run.py [--repeat 3] [--jobs 2] [--largest 100000]

Part 1 sweeps size.toml over fleet.count (10 to 100,000): rounds until every node has the
value by push-pull anti-entropy, beside Karp et al.'s log3 n + O(log log n). Part 2 sweeps
spread.toml over the distance between three regions (one site to three continents): the
simulated seconds of one ring all-reduce iteration, beside the network model's
prediction and the light-speed floor (the same distance at c, in vacuum). Both print
Markdown tables; the README holds the measured ones.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import swarm
from swarm.broker.network import SPEED_OF_LIGHT_KM_S

HERE = Path(__file__).resolve().parent
SIZES = (10, 100, 1_000, 10_000, 100_000)
AREAS_KM = (0.1, 50.0, 1_000.0, 4_000.0, 12_000.0)  # site, city, country, continent, 3 continents
RING = 12  # spread.toml's fleet.count
LIGHT_FRACTION, HOP_KM, HOP_DELAY_S, LATENCY_S = 0.67, 500.0, 0.0005, 0.000005  # its network


def _records(rows: object) -> list[dict]:
    return rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)  # type: ignore[attr-defined]


def _mean_ci(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.1f}"
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.1f} ± {half:.1f}"


def size(repeat: int, jobs: int, largest: int) -> None:
    sizes = [n for n in SIZES if n <= largest]
    rows = _records(
        swarm.sweep(HERE / "size.toml", {"fleet.count": sizes}, repeat=repeat, jobs=jobs)
    )
    print("| n | rounds until all agree | log3 n + log2 ln n | messages per node |")
    print("|---|---|---|---|")
    for n in sizes:
        mine = [r for r in rows if int(r["fleet.count"]) == n and r["status"] == "ok"]
        rounds = [float(r["results.rounds_to_all"]) for r in mine]
        traffic = [float(r["results.traffic"]) for r in mine]
        law = math.log(n, 3) + math.log2(math.log(n))
        print(f"| {n:,} | {_mean_ci(rounds)} | {law:.1f} | {_mean_ci(traffic)} |")


def spread(jobs: int) -> None:
    rows = _records(swarm.sweep(HERE / "spread.toml", {"fleet.area_km": list(AREAS_KM)}, jobs=jobs))
    steps = 2 * (RING - 1)
    print(
        "\n| regions apart (km) | ring s per iteration | model: 2(N−1)(α + d/0.67c + hops·δ) "
        "| light floor 2(N−1)·d/c | measured / floor | against one site |"
    )
    print("|---|---|---|---|---|---|")
    base = None
    for area in AREAS_KM:
        (row,) = [r for r in rows if float(r["fleet.area_km"]) == area]
        measured = float(row["results.allreduce.ring_seconds_per_iteration"])
        base = base or measured
        chord = area / 2 * math.sqrt(3)  # three region centres on a circle of diameter area
        hops = 1 + int(chord // HOP_KM)
        model = steps * (
            LATENCY_S + chord / (LIGHT_FRACTION * SPEED_OF_LIGHT_KM_S) + hops * HOP_DELAY_S
        )
        floor = steps * chord / SPEED_OF_LIGHT_KM_S
        print(
            f"| {chord:,.1f} | {measured:.6f} | {model:.6f} | {floor:.6f} "
            f"| {measured / floor:,.1f} | {measured / base:,.0f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="seeds per size (3)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--largest", type=int, default=100_000, help="largest fleet (100000)")
    args = parser.parse_args()
    size(args.repeat, args.jobs, args.largest)
    spread(args.jobs)


if __name__ == "__main__":
    main()
