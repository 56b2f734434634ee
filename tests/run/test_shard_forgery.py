"""A sharded run hears only its own processes: forgeries on its topics steer nothing.

The coordinator and its workers seal what they publish with the run key (see
`swarm.seal`). Anonymous messages on `control/stop`, `shard/<i>/status`,
`shard/<i>/metrics` or `events/#` once stopped a run (exit 0), marked live shards dead,
and wrote forged rows and events: now they are counted in `received_foreign` and dropped.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from swarm import seal, topics, wire
from swarm.broker.mqtt import BrokerUrl, MqttLink
from swarm.broker.server import MosquittoServer
from swarm.cli import main
from swarm.metrics import MessageCounters
from swarm.run.shards import CONTROL, run_worker

RUN = "forged-shards"


def _forgeries(tmp_path: Path) -> list[tuple[str, Path]]:
    def envelope(kind: str, src: str, body: object) -> bytes:
        return wire.encode(wire.Envelope(kind, src, 0, 0.0, 0, body))

    forged = [
        (topics.control(RUN, "stop"), envelope("control", "coordinator", {"round": 3})),
        (topics.shard_status(RUN, 1), envelope("event", "shard1", {"state": "dead", "shard": 1})),
        (topics.shard_metrics(RUN, 0), envelope("metrics", "shard0", {"round": 10**6})),
        (topics.shard_metrics(RUN, 1), envelope("metrics", "shard1", {"round": 2, "t": math.nan})),
        (topics.shard_result(RUN, 0), envelope("metrics", "shard0", {"messages": {}})),
        (topics.events(RUN, "crash"), envelope("event", "observer", {"event": "crash"})),
        (topics.events(RUN, "lost"), envelope("event", "a001", {"event": "lost"})),
    ]
    out = []
    for i, (topic, payload) in enumerate(forged):
        path = tmp_path / f"forged{i}"
        path.write_bytes(payload)
        out.append((topic, path))
    return out


def _forge(port: int, stop: threading.Event, payloads: list[tuple[str, Path]]) -> None:
    pub = shutil.which("mosquitto_pub")
    assert pub, "mosquitto_pub is missing: apt-get install mosquitto-clients"
    for _ in range(40):  # bounded: at most 280 messages
        if stop.is_set():
            return
        for topic, path in payloads:
            subprocess.run(
                [pub, "-p", str(port), "-q", "1", "-t", topic, "-f", str(path)],
                capture_output=True,
                timeout=10,
            )


def test_forged_shard_messages_steer_nothing(mosquitto: MosquittoServer, tmp_path, capsys):
    stop = threading.Event()
    forger = threading.Thread(target=_forge, args=(mosquitto.port, stop, _forgeries(tmp_path)))
    out = tmp_path / "out"
    argv = ["run", "rumor", "--broker", mosquitto.url, "--shards", "2", "--agents", "60"]
    argv += ["--json", "--out", str(out), "--set", f"run.name={RUN}", "--set", "run.rounds=40"]
    argv += ["--set", "gossip.period=0.1", "--set", "run.stop_when_done=false"]
    forger.start()
    try:
        status = main(argv)
    finally:
        stop.set()
        forger.join()
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["complete"] is True
    assert summary["rounds"] == 40
    assert summary["shards"] == {"count": 2, "dead": []}
    assert summary["messages"]["received_foreign"] > 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["round"] for row in rows] == list(range(41))
    assert (out / "events.jsonl").read_text() == ""


def test_a_dead_coordinators_retained_start_is_not_run(mosquitto: MosquittoServer) -> None:
    key = seal.new_key()

    async def leave_behind() -> None:
        link = MqttLink(
            BrokerUrl.parse(mosquitto.url), "old-coordinator", MessageCounters(), key=key
        )
        await link.open()
        toml = 'run = { name = "stale" }\n'
        for name, body in (("scenario", {"toml": toml}), ("start", {"t0": time.time() - 600})):
            payload = wire.encode(wire.Envelope(CONTROL, "old", 0, 0.0, 0, body))
            link.publish_retained(topics.control("stale", name), payload)
        await link.settle()
        link.close()
        await link.closed_task()

    asyncio.run(leave_behind())
    with pytest.raises(RuntimeError, match=r"6\d\d s old: its coordinator is gone"):
        asyncio.run(run_worker(mosquitto.url, "stale", 0, 2, key, timeout=1.5))
    # A worker with another key cannot read them at all, and says so.
    with pytest.raises(RuntimeError, match="did not open with SWARM_RUN_KEY"):
        asyncio.run(run_worker(mosquitto.url, "stale", 0, 2, seal.new_key(), timeout=1.5))
