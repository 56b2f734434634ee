"""One fleet in several processes through mosquitto: merged metrics, a dead shard survived."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from swarm.broker.server import MosquittoServer
from swarm.cli import main
from swarm.run.shards import run_sharded
from swarm.scenario import from_dict


def scenario(name: str, count: int = 200, rounds: int = 60, **run: Any):
    return from_dict(
        {
            "run": {"name": name, "seed": 5, "rounds": rounds, **run},
            "fleet": {"count": count},
            "gossip": {"period": 0.1},
            "broker": {"connections": "shared"},
        }
    )


def test_two_shards_run_one_fleet(mosquitto: MosquittoServer, tmp_path) -> None:
    summary = run_sharded(scenario("two"), mosquitto.url, 2, out_dir=tmp_path)
    assert summary["shards"] == {"count": 2, "dead": []}
    assert summary["agents"] == 200
    assert summary["results"]["residue"] == 0.0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    informed = [row["informed"] for row in rows]
    assert informed == sorted(informed) and informed[0] == 1 and informed[-1] == 200
    assert [row["round"] for row in rows] == list(range(len(rows)))
    assert summary["messages"]["delivered"] > 0
    assert json.loads((tmp_path / "summary.json").read_text())["shards"]["count"] == 2


def _kill_shard(index: int, count: int) -> bool:
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if "worker" in cmdline and f"{index}/{count}" in cmdline:
            child.send_signal(signal.SIGKILL)
            return True
    return False


def test_a_shard_killed_mid_run_is_noticed_and_the_run_goes_on(
    mosquitto: MosquittoServer,
) -> None:
    killed: list[bool] = []

    def on_round(row: dict[str, Any]) -> None:
        if row["round"] == 3 and not killed:
            killed.append(_kill_shard(1, 2))

    run = scenario("kill", rounds=30, stop_when_done=False)
    summary = run_sharded(run, mosquitto.url, 2, on_round=on_round)
    assert killed == [True]
    assert summary["shards"]["dead"] == [1]
    assert summary["rounds"] == 30  # the surviving shard ran to the end
    assert summary["results"]["residue"] >= 0.5 - 1e-9  # the dead half is not counted as informed


def test_a_killed_per_agent_shard_leaves_one_last_will_per_agent(
    mosquitto: MosquittoServer, tmp_path
) -> None:
    killed: list[bool] = []

    def on_round(row: dict[str, Any]) -> None:
        if row["round"] == 3 and not killed:
            killed.append(_kill_shard(1, 2))

    data = scenario("wills", count=40, rounds=30, stop_when_done=False).to_dict()
    data["broker"] = {"connections": "per-agent"}
    summary = run_sharded(from_dict(data), mosquitto.url, 2, on_round=on_round, out_dir=tmp_path)
    assert killed == [True]
    assert summary["shards"]["dead"] == [1]
    assert summary["agents_lost"] == 20  # every agent of shard 1 (odd indices)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    lost = sorted(e["agent"] for e in events if e["event"] == "lost")
    assert lost == [f"a{i:02d}" for i in range(1, 40, 2)]


def test_the_coordinator_republishes_merged_rows(mosquitto: MosquittoServer) -> None:
    watcher = subprocess.Popen(
        ["mosquitto_sub", "-p", str(mosquitto.port), "-t", "swarm/watched/metrics", "-F", "%t"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)  # subscribed before the run starts
        summary = run_sharded(scenario("watched", rounds=20), mosquitto.url, 2)
        time.sleep(0.3)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    assert out.splitlines() == ["swarm/watched/metrics"] * (summary["rounds"] + 1)


@pytest.mark.parametrize("connections", ["shared", "per-agent"])
def test_shards_run_on_a_broker_with_authentication(connections: str) -> None:
    data = scenario(f"auth-{connections}", count=40, rounds=40).to_dict()
    data["broker"] = {"connections": connections}
    with MosquittoServer(users={"fleet": "secret"}) as guarded:
        summary = run_sharded(from_dict(data), guarded.url, 2)
    assert summary["shards"]["dead"] == []
    assert summary["results"]["residue"] == 0.0
    assert summary["messages"]["dropped_spoofed"] == 0


def test_a_worker_without_a_coordinator_says_so(mosquitto: MosquittoServer) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "swarm",
            "worker",
            "--broker",
            mosquitto.url,
            "--run",
            "ghost",
            "--shard",
            "0/2",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SWARM_RUN_KEY": "ab" * 32},
    )
    assert done.returncode == 1
    assert "no scenario for run 'ghost'" in done.stderr


def test_a_worker_without_the_run_key_says_where_to_get_it(monkeypatch, capsys) -> None:
    monkeypatch.delenv("SWARM_RUN_KEY", raising=False)
    assert main(["worker", "--broker", "mqtt://h:1", "--run", "r", "--shard", "0/2"]) == 2
    assert "SWARM_RUN_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("SWARM_RUN_KEY", "not hex")
    assert main(["worker", "--broker", "mqtt://h:1", "--run", "r", "--shard", "0/2"]) == 2
    assert "SWARM_RUN_KEY is not hexadecimal" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--shards", "2"], "--shards needs --broker"),
        (["run", "--broker", "mqtt://h:1", "--shards", "100000"], "at most 256"),
        (["run", "--broker", "mqtt://h:1", "--shards", "3", "--agents", "2"], "fleet's 2 agents"),
        (["worker", "--broker", "mqtt://h:1", "--run", "r", "--shard", "2/2"], "0 <= I < N"),
        (["worker", "--broker", "mqtt://h:1", "--run", "r", "--shard", "x"], "use I/N"),
        (["worker", "--broker", "http://h", "--run", "r", "--shard", "0/1"], "mqtt://"),
    ],
)
def test_shard_options_are_checked(argv, needle, capsys) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_shards_on_two_bridged_mosquittos_are_one_fleet(mosquitto: MosquittoServer) -> None:
    bridge = [
        "connection to-coordinator",
        f"address 127.0.0.1:{mosquitto.port}",
        "topic swarm/# both 0",
        "cleansession true",
        "restart_timeout 1",
    ]
    with MosquittoServer(extra_config=bridge) as second:
        # Give the bridge a moment to connect before anyone publishes.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _bridge_up(second):
            time.sleep(0.1)
        summary = run_sharded(
            scenario("bridged"), mosquitto.url, 2, worker_urls=[mosquitto.url, second.url]
        )
    assert summary["shards"] == {"count": 2, "dead": []}
    assert summary["results"]["residue"] == 0.0


def _bridge_up(server: MosquittoServer) -> bool:
    """Mosquitto reports each bridge's state on $SYS/broker/connection/<name>/state."""
    probe = subprocess.run(
        [
            "mosquitto_sub",
            "-p",
            str(server.port),
            "-t",
            "$SYS/broker/connection/#",
            "-C",
            "1",
            "-W",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() == "1"


@pytest.mark.parametrize(
    "argv",
    [
        ["broker", "--port", "99999"],
        ["worker", "--broker", "mqtt://h:1", "--run", "r", "--shard", "0/1", "--timeout", "-5"],
        ["worker", "--broker", "mqtt://h:1", "--run", "r", "--shard", "0/1", "--timeout", "x"],
    ],
)
def test_out_of_range_numbers_are_argument_errors(argv) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
