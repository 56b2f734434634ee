"""Push gossip to everyone as a bare loop: the algorithm alone, no messages, no engine.

Every round each informed node tells one other node drawn uniformly at random (a
complete graph, fanout 1), until all know. This is the floor any emulator of the same
protocol is measured against: what `swarm` adds on top (envelopes, a broker, a network
model, per-agent state, metrics) is the difference. Needs only numpy.

    python benchmarks/peers/bare_push.py --nodes 10000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def rounds_to_all(n: int, rng: np.random.Generator) -> int:
    informed = np.zeros(n, dtype=bool)
    informed[0] = True
    rounds = 0
    while not informed.all():
        senders = np.flatnonzero(informed)
        # Another node than oneself: draw among n - 1 and skip over the sender.
        peers = rng.integers(n - 1, size=senders.size)
        peers += peers >= senders
        informed[peers] = True
        rounds += 1
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    rounds = rounds_to_all(args.nodes, np.random.default_rng(args.seed))
    seconds = time.perf_counter() - started
    print(json.dumps({"nodes": args.nodes, "rounds": rounds, "seconds": seconds}))


if __name__ == "__main__":
    main()
