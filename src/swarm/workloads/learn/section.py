"""The [learn] section: what the fleet learns, how models meet, and the server's defenses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarm.scenario.schema import ScenarioError, rule
from swarm.workloads.learn.compression import MODES
from swarm.workloads.learn.datasets import DATASETS
from swarm.workloads.learn.learner import MODELS

__all__ = ["AGGREGATORS", "STRATEGIES", "LearnSection", "check"]

STRATEGIES = ("gossip", "fedavg", "allreduce", "async")
STALENESS = ("none", "inverse")
AGGREGATORS = ("mean", "median", "trimmed-mean", "krum", "multi-krum", "bulyan", "foolsgold")


SELECTIONS = ("random", "battery", "green")


@dataclass(frozen=True)
class LearnSection:
    dataset: str = rule("digits", "data the fleet learns from", choices=DATASETS)
    strategy: str = rule(
        "gossip",
        "how models meet: gossip averaging, federated averaging, ring all-reduce, or an "
        "asynchronous parameter server (async)",
        choices=STRATEGIES,
    )
    model: str = rule(
        "linear",
        "local model: linear (one-vs-rest logistic SGD in numpy), sklearn:SGDClassifier "
        "(the same model through scikit-learn, much slower) or mlp (one ReLU hidden layer, "
        "softmax output, minibatch SGD in numpy)",
        choices=MODELS,
    )
    hidden: int = rule(32, "mlp: hidden units", min=1, max=4096)
    compression: str = rule("none", "encoding of the updates devices send", choices=MODES)
    topk_ratio: float = rule(0.1, "topk: share of entries sent", above=0.0, max=1.0)
    iid: bool = rule(True, "shuffle data evenly (false: each agent sees few classes)")
    classes_per_agent: int = rule(2, "non-IID: classes in each agent's shard", min=1)
    shard_size: int = rule(0, "samples per agent (0 = split the training set evenly)", min=0)
    overlap: bool = rule(
        False,
        "agents draw their learn.shard_size samples each on their own, so shards may "
        "share samples and the fleet may outgrow the data (false: disjoint shards)",
    )
    fraction_fit: float = rule(
        0.5, "fedavg: share of clients trained per round", above=0.0, max=1.0
    )
    backup: int = rule(
        0,
        "fedavg: backup workers: ask this many clients more and aggregate the first "
        "fraction_fit arrivals (Chen et al. 2016)",
        min=0,
        max=10_000,
    )
    deadline: int = rule(
        1,
        "fedavg: rounds the server waits for the clients it asked before it aggregates "
        "what arrived (1: every round is one period; more: synchronous rounds that wait "
        "for stragglers, up to this many periods)",
        min=1,
        max=10_000,
    )
    selection: str = rule(
        "random",
        "fedavg: how the server picks each round's clients: random, battery (the best "
        "charged first, as they report it), or green (those whose region's grid is the "
        "cleanest right now: follow the sun)",
        choices=SELECTIONS,
    )
    compare_selection: bool = rule(
        True, "fedavg, selection not random: also run with random selection, report both"
    )
    staleness: str = rule(
        "none",
        "async: how the server weighs an update computed from an old model: none (in full) "
        "or inverse (1 / (1 + staleness), Zhang et al. 2016)",
        choices=STALENESS,
    )
    local_epochs: int = rule(1, "passes over the local shard per round", min=1, max=1000)
    batch_size: int = rule(32, "minibatch size of local training", min=1)
    learning_rate: float = rule(0.01, "SGD step size (eta0)", above=0.0)
    aggregator: str = rule(
        "mean",
        "fedavg: how the server combines updates: mean (FedAvg), or a robust rule "
        "(median, trimmed-mean, krum, multi-krum, bulyan, foolsgold)",
        choices=AGGREGATORS,
    )
    byzantine: int = rule(1, "fedavg: attackers per aggregation the robust rule assumes (f)", min=0)
    trim: float = rule(0.2, "trimmed-mean: share cut from each end per coordinate", min=0.0)
    clip_norm: float = rule(
        0.0, "fedavg: clip each update to this L2 norm first (0 = off)", min=0.0
    )
    reputation: bool = rule(
        False, "fedavg: ignore clients whose updates the rule kept rejecting (reputation)"
    )
    target_accuracy: float = rule(
        0.0,
        "fleet accuracy whose first arrival the summary times (time_to_accuracy); 0 = none",
        min=0.0,
        max=1.0,
    )


def check(s: Any) -> None:
    """Rules across [learn] keys, and the Sybil behaviours a learning fleet admits."""
    learn, sybil = s.learn, s.sybil
    if learn.overlap and learn.shard_size == 0:
        raise ScenarioError(
            "learn.overlap = true needs learn.shard_size (the samples each agent draws), "
            "e.g. learn.shard_size = 8"
        )
    if learn.trim >= 0.5:
        raise ScenarioError(f"learn.trim = {learn.trim}: must be < 0.5 (it is cut from each end)")
    if learn.aggregator != "mean" and learn.strategy != "fedavg":
        raise ScenarioError(
            f"learn.aggregator = {learn.aggregator!r}: robust aggregation runs on the fedavg "
            f'server; learn.strategy is {learn.strategy!r} (set learn.strategy = "fedavg")'
        )
    if s.checkpoint.interval > 0 and s.fleet.workload != "learn":  # models are what is saved
        raise ScenarioError(
            f"checkpoint.interval = {s.checkpoint.interval:g}: checkpoints save learning "
            f'models (fleet.workload = "learn"); fleet.workload = {s.fleet.workload!r} keeps '
            "nothing worth saving (set 0)"
        )
    if learn.selection != "random" and learn.strategy != "fedavg":
        raise ScenarioError(
            f"learn.selection = {learn.selection!r}: the fedavg server picks clients; "
            f'learn.strategy is {learn.strategy!r} (set learn.strategy = "fedavg")'
        )
    if sybil.count == 0 or s.fleet.workload != "learn":
        return
    if learn.strategy in ("allreduce", "async"):
        raise ScenarioError(
            f'sybil.count > 0 with learn.strategy = "{learn.strategy}": this job admits '
            "no outsiders; attack fedavg or gossip"
        )
    if sybil.behaviour == "eclipse" and learn.strategy != "gossip":
        raise ScenarioError(
            'sybil.behaviour = "eclipse" surrounds a gossip peer view; '
            'learn.strategy must be "gossip"'
        )
    if sybil.behaviour == "label-flip" and sybil.source_class == sybil.target_class:
        raise ScenarioError(
            f"sybil.target_class = {sybil.target_class}: must differ from sybil.source_class"
        )
