"""FedAvg on digits with Flower's simulation engine (Ray): the peer side of `swarm`'s
`learn.strategy = "fedavg"`.

C clients, each holding an IID shard of the digits training set (the same train/test
split as `swarm`, see digits_split.py). Every round the server (Flower's message-API
`FedAvg` strategy) sends the global model to every client (`fraction_train = 1.0`);
each client runs one epoch of SGD on its shard from the global model and returns its
new model with its sample count; the server takes the sample-weighted mean.

The client's model is the one `swarm`'s learner trains: a linear one-vs-rest logistic
regression (one row of weights per class, from zero), log loss, L2 1e-4, constant step
`--lr` (default 0.01), one sample per step, written here in numpy. No federated
evaluation (`fraction_evaluate = 0`); the global model is scored once, on the server,
after the last round, on the 450 test images (`swarm`'s `global_accuracy`).

Ray runs the clients in actor processes, `--client-cpus` CPUs each (Flower's default is
2, which on a 2-core machine means one client at a time; the default here, 1, lets two
run at once). The peak resident memory is the largest sum, over this process and all its
descendants (Ray's GCS, raylet and workers), of their RSS, sampled every 0.2 s (shared
pages, e.g. Ray's object store, count once per process that maps them).

Prints one JSON line on stdout; Flower's and Ray's logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# Ray's worker processes inherit the environment: let them import digits_split too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
)

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from digits_split import iid_shards, load_digits_split  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402

L2 = 1e-4


def sgd_epoch(
    coef: np.ndarray,
    intercept: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    lr: float,
    rng: np.random.Generator,
) -> None:
    """One shuffled pass of per-sample SGD on one-vs-rest log loss, in place."""
    classes = np.arange(coef.shape[0])
    targets = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
    shrink = 1.0 - lr * L2
    for i in rng.permutation(len(y)):
        x, t = X[i], targets[i]
        margin = t * (coef @ x + intercept)
        grad = -t / (1.0 + np.exp(margin))  # d log(1 + exp(-margin)) / d output
        coef *= shrink
        coef -= lr * np.outer(grad, x)
        intercept -= lr * grad


def accuracy(coef: np.ndarray, intercept: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(X @ coef.T + intercept, axis=1) == y))


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    part = int(context.node_config["partition-id"])
    parts = int(context.node_config["num-partitions"])
    config = msg.content["config"]
    seed, lr = int(config["seed"]), float(config["lr"])
    data = load_digits_split(seed)
    rows = iid_shards(len(data.y_train), parts, seed)[part]
    X, y = data.X_train[rows], data.y_train[rows]
    coef, intercept = (a.astype(np.float64) for a in msg.content["arrays"].to_numpy_ndarrays())
    rng = np.random.default_rng([seed, part, int(config["server-round"])])
    for _ in range(int(config["epochs"])):
        sgd_epoch(coef, intercept, X, y, lr, rng)
    reply = RecordDict(
        {
            "arrays": ArrayRecord([coef, intercept]),
            "metrics": MetricRecord({"num-examples": len(y)}),
        }
    )
    return Message(content=reply, reply_to=msg)


def make_server(args: argparse.Namespace, out: dict[str, Any]) -> ServerApp:
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        data = load_digits_split(args.seed)
        shape = (data.n_classes, data.n_features)
        start = [np.zeros(shape), np.zeros(data.n_classes)]

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            if server_round < args.rounds:
                return None  # score the global model once, after the last round
            coef, intercept = arrays.to_numpy_ndarrays()
            acc = accuracy(coef, intercept, data.X_test, data.y_test)
            out["accuracy"] = acc
            return MetricRecord({"accuracy": acc})

        strategy = FedAvg(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=args.clients,
            min_available_nodes=args.clients,
        )
        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(start),
            num_rounds=args.rounds,
            train_config=ConfigRecord({"seed": args.seed, "lr": args.lr, "epochs": args.epochs}),
            evaluate_fn=evaluate,
        )
        out["rounds_aggregated"] = len(result.train_metrics_clientapp)

    return server_app


class PeakRss:
    """Samples the summed RSS of this process and its descendants in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # gone between listing and reading
                total += proc.memory_info().rss
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRss:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--client-cpus", type=float, default=1.0, help="Ray CPUs per client actor")
    args = parser.parse_args(argv)

    out: dict[str, Any] = {}
    backend = {
        "client_resources": {"num_cpus": args.client_cpus, "num_gpus": 0.0},
        "init_args": {"num_cpus": os.cpu_count() or 1},
    }
    # Everything Flower, Ray and the workers print goes to stderr; stdout is ours.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    start = time.perf_counter()
    try:
        with PeakRss() as rss:
            run_simulation(
                server_app=make_server(args, out),
                client_app=client_app,
                num_supernodes=args.clients,
                backend_config=backend,
            )
        seconds = time.perf_counter() - start
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    if "accuracy" not in out:
        print("flower_fedavg: the simulation ended without a final evaluation", file=sys.stderr)
        return 1
    line = {
        "peer": "flower",
        "seconds": round(seconds, 3),
        "accuracy": round(out["accuracy"], 4),
        "clients": args.clients,
        "rounds": args.rounds,
        "rounds_aggregated": out.get("rounds_aggregated"),
        "seed": args.seed,
        "peak_rss_mib": round(rss.peak / 2**20, 1),
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
