"""Gossip learning on digits with gossipy: the peer side of `swarm run mobile-nomad`.

N nodes on a complete graph, each holding an IID shard of the digits training set (the
same train/test split as `swarm`, see digits_split.py). Once per round every node pushes
its model to one random peer (gossipy's PUSH protocol, fanout 1); the receiver averages
the two models and then runs one local epoch of SGD on its shard (gossipy's
MERGE_UPDATE), so on average every node trains one epoch per round, as in `swarm`.

The model is a single linear layer, started from zero. With `--loss ovr` (default) it is
trained with one-vs-rest log loss, the loss `swarm`'s learner uses; `--loss softmax`
uses cross-entropy instead. SGD with a constant step (`--lr`, default 0.01), L2 1e-4 as
weight decay, one sample per step (`--batch-size 1`, what `swarm` does). torch runs
on one thread (`--threads`), as `swarm` runs on one core.

gossipy's own per-round evaluation is switched off (the simulator gets no test set):
accuracy is measured once, after the last round, as the mean over nodes of each node's
accuracy on the 450 test images (`swarm`'s `accuracy`).

Prints one JSON line on stdout; gossipy's progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _stub_torchvision() -> None:
    """gossipy.data imports torchvision at module level but uses it only to download
    CIFAR-10 / FashionMNIST. PyPI's torchvision wheels are linked against CUDA builds of
    torch and fail to import beside the CPU torch, so stand in an empty module when the
    real one cannot be imported; nothing on this path touches it."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # not installed, or built for another torch
        sys.modules["torchvision"] = types.ModuleType("torchvision")


_stub_torchvision()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from digits_split import iid_shards, load_digits_split  # noqa: E402
from gossipy import set_seed  # noqa: E402
from gossipy.core import AntiEntropyProtocol, CreateModelMode, StaticP2PNetwork  # noqa: E402
from gossipy.data import DataDispatcher  # noqa: E402
from gossipy.data.handler import ClassificationDataHandler  # noqa: E402
from gossipy.model import TorchModel  # noqa: E402
from gossipy.model.handler import TorchModelHandler  # noqa: E402
from gossipy.node import GossipNode  # noqa: E402
from gossipy.simul import GossipSimulator  # noqa: E402

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ZeroLinear(TorchModel):
    """One linear layer (one row of weights per class) whose weights start at zero."""

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_classes)
        self.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def init_weights(self) -> None:
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()


def make_loss(kind: str, n_classes: int) -> Loss:
    if kind == "softmax":
        return F.cross_entropy

    def one_vs_rest(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # One binary log loss per class, summed over classes, averaged over the batch.
        target = F.one_hot(y, n_classes).to(logits.dtype)
        per_sample = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return per_sample.sum(dim=1).mean()

    return one_vs_rest


def run(args: argparse.Namespace) -> dict[str, object]:
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    data = load_digits_split(args.seed)
    X_train = torch.tensor(data.X_train, dtype=torch.float32)
    y_train = torch.tensor(data.y_train, dtype=torch.long)
    X_test = torch.tensor(data.X_test, dtype=torch.float32)
    y_test = torch.tensor(data.y_test, dtype=torch.long)

    # An empty evaluation set: gossipy then skips its per-round evaluation of every node.
    handler = ClassificationDataHandler(
        X_train, y_train, X_te=X_test[:0], y_te=y_test[:0], test_size=0.0
    )
    dispatcher = DataDispatcher(handler, n=args.nodes, eval_on_user=False, auto_assign=False)
    shards = iid_shards(len(y_train), args.nodes, args.seed)
    dispatcher.set_assignments([s.tolist() for s in shards], None)

    model = TorchModelHandler(
        net=ZeroLinear(data.n_features, data.n_classes),
        optimizer=torch.optim.SGD,
        optimizer_params={"lr": args.lr, "weight_decay": 1e-4},
        criterion=make_loss(args.loss, data.n_classes),
        local_epochs=1,
        batch_size=args.batch_size,
        create_model_mode=CreateModelMode.MERGE_UPDATE,
    )
    nodes = GossipNode.generate(
        data_dispatcher=dispatcher,
        p2p_net=StaticP2PNetwork(args.nodes, None),  # no adjacency: a complete graph
        model_proto=model,
        round_len=args.round_len,
        sync=True,
    )
    simulator = GossipSimulator(
        nodes=nodes,
        data_dispatcher=dispatcher,
        delta=args.round_len,
        protocol=AntiEntropyProtocol.PUSH,
    )
    with contextlib.redirect_stdout(sys.stderr):
        simulator.init_nodes(seed=args.seed)
        simulator.start(n_rounds=args.rounds)

    with torch.no_grad():
        scores = [
            (node.model_handler.model(X_test).argmax(dim=1) == y_test).double().mean().item()
            for node in nodes.values()
        ]
    return {
        "accuracy": sum(scores) / len(scores),
        "accuracy_min": min(scores),
        "accuracy_max": max(scores),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--loss", choices=("ovr", "softmax"), default="ovr")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: the model is tiny; torch's default of one per "
        "core ran 2.5x slower here)",
    )
    parser.add_argument(
        "--round-len",
        type=int,
        default=100,
        help="gossipy time steps per round (each node wakes at a random step of it)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args)
    seconds = time.perf_counter() - start
    line = {
        "peer": "gossipy",
        "seconds": round(seconds, 3),
        "accuracy": round(float(result["accuracy"]), 4),
        "nodes": args.nodes,
        "rounds": args.rounds,
        "seed": args.seed,
        "loss": args.loss,
        "accuracy_spread": [
            round(float(result["accuracy_min"]), 4),
            round(float(result["accuracy_max"]), 4),
        ],
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
