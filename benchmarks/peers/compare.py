"""Time `swarm` against gossipy and Flower on the same learning work, side by side.

Each run is a whole process (interpreter start, imports, data, simulation, evaluation),
timed from outside by the wall clock. Peer and `swarm` runs alternate, `--repeat` times
each, and the table shows medians. Only the standard library is used, so any Python 3.11
runs this file; each peer runs under the interpreter of its own virtualenv.

    python benchmarks/peers/compare.py --swarm .venv/bin/swarm \\
        --gossipy-python /work/peers/gossipy/bin/python \\
        --flower-python /work/peers/flower/bin/python

A peer whose interpreter is not given is skipped. The accuracy compared for FedAvg is
the global (server) model's: `swarm`'s `results.global_accuracy`; its `results.accuracy`
(the mean over agents, stale client models included) is listed in the notes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Work:
    key: str
    title: str
    peer: str  # "gossipy" or "flower"
    agents: int  # gossip nodes, or FedAvg clients
    rounds: int


WORKS: dict[str, Work] = {
    w.key: w
    for w in (
        Work("gossip-100x100", "gossip learning, 100 nodes x 100 rounds", "gossipy", 100, 100),
        Work("fedavg-200x30", "FedAvg, 200 clients x 30 rounds", "flower", 200, 30),
        Work("fedavg-1000x30", "FedAvg, 1,000 clients x 30 rounds", "flower", 1000, 30),
        # Rounds: until everyone knows (about 23 at this size).
        Work("push-10000", "push gossip to all, 10,000 nodes", "bare", 10000, 0),
    )
}
DEFAULT_WORKS = ("gossip-100x100", "fedavg-200x30")


@dataclass
class Run:
    seconds: float
    peak_rss_mib: float  # largest single process (getrusage of the child and its reaped children)
    summary: dict[str, Any]


@dataclass
class Side:
    runs: list[Run] = field(default_factory=list)

    def median(self, key: str) -> float | None:
        values = [r.summary[key] for r in self.runs if r.summary.get(key) is not None]
        return statistics.median(values) if values else None

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rss(self) -> float:
        return statistics.median(r.peak_rss_mib for r in self.runs)


def swarm_command(swarm: str, work: Work, seed: int) -> list[str]:
    if work.peer == "bare":
        return [
            *(swarm, "run", "fleet", "--agents", str(work.agents), "--seed", str(seed)),
            *("--set", "network.topology=complete", "--set", "gossip.protocol=push"),
            *("--set", "gossip.fanout=1", "--quiet", "--json"),
        ]
    common = ["--seed", str(seed), "--set", f"run.rounds={work.rounds}", "--quiet", "--json"]
    if work.peer == "gossipy":
        return [
            swarm,
            "run",
            "mobile-nomad",
            "--agents",
            str(work.agents),
            *common,
            "--set",
            "learn.iid=true",
            "--set",
            "network.topology=complete",
            "--set",
            "gossip.fanout=1",
            "--set",
            "learn.compression=none",
        ]
    # FedAvg: agent 0 is the server, so N clients need N + 1 agents.
    return [
        swarm,
        "run",
        "sybil-fedavg",
        "--agents",
        str(work.agents + 1),
        *common,
        "--set",
        "sybil.count=0",
        "--set",
        "learn.fraction_fit=1.0",
        "--set",
        "learn.aggregator=mean",
    ]


def peer_command(python: str, work: Work, seed: int) -> list[str]:
    if work.peer == "bare":
        script = str(HERE / "bare_push.py")
        return [python, script, "--nodes", str(work.agents), "--seed", str(seed)]
    if work.peer == "gossipy":
        script, size = "gossipy_digits.py", ["--nodes", str(work.agents)]
    else:
        script, size = "flower_fedavg.py", ["--clients", str(work.agents)]
    return [python, str(HERE / script), *size, "--rounds", str(work.rounds), "--seed", str(seed)]


def timed(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """Run `cmd` to completion: wall seconds, peak RSS in MiB, its stdout."""
    with tempfile.TemporaryFile() as out, log.open("ab") as err:
        err.write(("$ " + " ".join(cmd) + "\n").encode())
        err.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"exit status {proc.returncode}: {' '.join(cmd)} (see {log})")
    return seconds, usage.ru_maxrss / 1024, text


def last_json(text: str) -> dict[str, Any]:
    """The JSON object a run printed: all of stdout, or else its last line that is one."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON object on stdout: {text[:200]!r}")


def swarm_figures(summary: dict[str, Any], work: Work) -> dict[str, Any]:
    results = summary.get("results", {})
    figures = {"mean_accuracy": results.get("accuracy"), "wall_time": summary.get("wall_time")}
    if work.peer == "bare":
        return {"wall_time": summary.get("wall_time"), "rounds": results.get("rounds_to_all")}
    if work.peer == "gossipy":
        figures["accuracy"] = results.get("accuracy")
    else:
        figures["accuracy"] = results.get("global_accuracy")
        figures["aggregations"] = results.get("aggregations")
    return figures


def measure(
    work: Work, peer_python: str, swarm: str, seed: int, repeat: int, log: Path
) -> tuple[Side, Side]:
    peer, ours = Side(), Side()
    for i in range(repeat):
        for name, cmd, side in (
            (work.peer, peer_command(peer_python, work, seed), peer),
            ("swarm", swarm_command(swarm, work, seed), ours),
        ):
            seconds, rss, text = timed(cmd, log)
            summary = last_json(text)
            if name == "swarm":
                summary = swarm_figures(summary, work)
            side.runs.append(Run(seconds, rss, summary))
            print(
                f"  {work.key} {name} run {i + 1}/{repeat}: {seconds:.1f} s, "
                f"accuracy {summary.get('accuracy')}",
                file=sys.stderr,
                flush=True,
            )
    return peer, ours


def ratio(peer: float, ours: float) -> str:
    """peer / swarm, with the inverse spelled out when swarm is the slower one."""
    if peer >= ours:
        return f"{peer / ours:.1f}"
    return f"{peer / ours:.3f} (swarm {ours / peer:.0f}x slower)"


def fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--swarm", default=shutil.which("swarm"), help="the swarm executable")
    parser.add_argument("--gossipy-python", help="python of the gossipy virtualenv")
    parser.add_argument("--flower-python", help="python of the Flower virtualenv")
    parser.add_argument(
        "--bare-python",
        default=sys.executable,
        help="python with numpy for the bare push loop (default: this one)",
    )
    parser.add_argument(
        "--work",
        action="append",
        choices=[*WORKS, "all"],
        help=f"repeatable; default: {', '.join(DEFAULT_WORKS)}",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "peers-compare.log",
        help="where the runs' stderr goes (appended)",
    )
    parser.add_argument("--raw", type=Path, help="also write every run's figures here (JSON)")
    args = parser.parse_args(argv)
    if not args.swarm:
        parser.error("swarm is not on PATH: give --swarm")
    keys = args.work or list(DEFAULT_WORKS)
    works = list(WORKS.values()) if "all" in keys else [WORKS[k] for k in dict.fromkeys(keys)]
    pythons = {
        "gossipy": args.gossipy_python,
        "flower": args.flower_python,
        "bare": args.bare_python,
    }

    rows: list[str] = []
    notes: list[str] = []
    raw: dict[str, Any] = {}
    for work in works:
        python = pythons[work.peer]
        if not python:
            notes.append(f"{work.title}: skipped, no --{work.peer}-python given")
            continue
        print(f"{work.title}: {args.repeat} runs each", file=sys.stderr, flush=True)
        peer, ours = measure(work, python, args.swarm, args.seed, args.repeat, args.log)
        rows.append(
            f"| {work.title} | {peer.seconds:.1f} | {fmt(peer.median('accuracy'), 3)} "
            f"| {ours.seconds:.1f} | {fmt(ours.median('accuracy'), 3)} "
            f"| {ratio(peer.seconds, ours.seconds)} |"
        )
        memory = (
            f"peak RSS {peer.rss:.0f} MiB largest process"
            + (
                f", {peer.median('peak_rss_mib'):.0f} MiB summed over its process tree"
                if peer.median("peak_rss_mib") is not None
                else ""
            )
            + f" vs swarm {ours.rss:.0f} MiB"
        )
        inside = f"{work.peer}'s own timer {fmt(peer.median('seconds'), 3)} s"
        inside += f", swarm's wall_time {fmt(ours.median('wall_time'), 1)} s"
        extra = ""
        if work.peer == "bare":
            extra = (
                f"; rounds to inform all: bare {fmt(peer.median('rounds'), 0)}, "
                f"swarm {fmt(ours.median('rounds'), 0)}"
            )
        if work.peer == "flower":
            extra = f"; swarm mean accuracy over agents {fmt(ours.median('mean_accuracy'), 3)}"
        notes.append(f"{work.title}: {memory}; {inside}{extra}")
        raw[work.key] = {
            "peer": [r.__dict__ for r in peer.runs],
            "swarm": [r.__dict__ for r in ours.runs],
        }

    print(
        "| work | peer seconds | peer accuracy | swarm seconds | swarm accuracy "
        "| ratio (peer/swarm) |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    if args.raw:
        args.raw.write_text(json.dumps(raw, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
