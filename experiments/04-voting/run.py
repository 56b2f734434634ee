"""Ensemble voting against the binomial and any-of laws, and what correlated errors do.

    python experiments/04-voting/run.py [--repeat 10] [--jobs 2]

Part 1 runs the hazards scenario (its judges only: a short run) over sensor noise and
seeds with `swarm.sweep`: five different scikit-learn learners judge the same readings,
and the summary puts their majority, quorum and any-of beside the binomial laws for
their mean accuracy. Part 2 draws votes with `swarm.protocols.consensus.voting`, with a
share `rho` of common-mode trials (every voter right or wrong together), and compares
majority accuracy with the mixture law rho*p + (1 - rho)*majority_law(p, k).
Both print Markdown tables (part 1: mean ± 1.96 standard errors over the seeds); the
README holds the measured ones.
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np

import swarm
from swarm.protocols.consensus import voting

NOISE = (0.25, 0.5, 1.0)  # hazards.sensor_noise: how hard the judges' task is
K = (1, 3, 5, 9, 15)
RHO = (0.0, 0.2, 0.5, 0.8)
P = 0.7
TRIALS = 200_000


def _mean_ci(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f}"


def judges(repeat: int, jobs: int) -> None:
    rows = swarm.sweep(
        "edge-guardian",
        {"hazards.sensor_noise": list(NOISE)},
        repeat=repeat,
        jobs=jobs,
        run__duration=5.0,
    )
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    m = "results.compound_judges.measured."
    i = "results.compound_judges.independent."
    print(
        "| sensor noise | member accuracy p | error correlation | majority of 5 | "
        "binomial law | independent voters (simulated) | any-of recall | any-of law |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for noise in NOISE:
        mine = [
            r for r in rows if float(r["hazards.sensor_noise"]) == noise and r["status"] == "ok"
        ]

        def col(key: str, mine: list = mine) -> list[float]:
            return [float(r[key]) for r in mine]

        print(
            f"| {noise} | {_mean_ci(col(m + 'mean_member_accuracy'))} "
            f"| {_mean_ci(col(m + 'error_correlation'))} | {_mean_ci(col(m + 'majority'))} "
            f"| {_mean_ci(col(m + 'majority_law'))} | {_mean_ci(col(i + 'majority'))} "
            f"| {_mean_ci(col(m + 'any_of_recall'))} | {_mean_ci(col(m + 'any_of_law'))} |"
        )


def correlation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    print(f"\nmajority accuracy of k voters, each right w.p. p = {P}, {TRIALS:,} trials:\n")
    print("| k | " + " | ".join(f"rho = {r}: measured / law" for r in RHO) + " |")
    print("|---|" + "---|" * len(RHO))
    for k in K:
        cells = []
        for rho in RHO:
            votes = voting.simulate_votes(P, k, TRIALS, rng, correlation=rho)
            measured = float(np.mean(voting.majority(votes) == 1))
            law = rho * P + (1 - rho) * voting.majority_law(P, k)
            sigma = math.sqrt(law * (1 - law) / TRIALS)
            cells.append(f"{measured:.4f} / {law:.4f} ({(measured - law) / sigma:+.1f}σ)")
        print(f"| {k} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="seeds per noise level (10)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated votes (1)")
    args = parser.parse_args()
    judges(args.repeat, args.jobs)
    correlation(args.seed)


if __name__ == "__main__":
    main()
