"""Chaos: a sharded fleet on mosquitto under a bounded adversary and one broker restart.

The adversary listens to the run, then publishes garbage, well-formed forgeries and
replays of what it heard (on the topics they came from and on others) on every topic of
the run, anonymously on an open broker or as an authenticated non-fleet user under
`--auth`. The run must complete, its summary must be strict JSON whose counters add up,
and nothing the adversary sent may show up in the results.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from swarm import topics, wire
from swarm.broker.mqtt import BrokerUnavailable, BrokerUrl, MqttLink
from swarm.broker.server import MosquittoServer
from swarm.metrics import MessageCounters
from swarm.run.shards import run_sharded
from swarm.scenario import from_dict

RUN = "chaos"
ROUNDS = 60
BUDGET = 3000  # messages the adversary may publish in all


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


def _forgeries() -> list[tuple[str, bytes]]:
    """Garbage and well-formed lies for every topic the run uses."""

    def env(kind: str, src: str, body: Any) -> bytes:
        return wire.encode(wire.Envelope(kind, src, 7, 0.0, 0, body))

    inbox = topics.inbox(RUN, "a003")
    forged_bundle = env("bundle", "shard1", [[inbox, env("push", "a010", [[1, 0, b"lie"]])]])
    out = [
        (topics.metrics(RUN), env("metrics", "observer", {"round": 10**6, "time": math.nan})),
        (topics.metrics(RUN), env("metrics", "observer", {})),
        (topics.status(RUN), env("metrics", "observer", {"round": -5, "finished": True})),
        (topics.events(RUN, "crash"), env("event", "observer", {"event": "crash", "agent": "x"})),
        (topics.events(RUN, "lost"), env("event", "a001", {"event": "lost", "agent": "a001"})),
        (topics.control(RUN, "stop"), env("control", "coordinator", {"round": 2})),
        (topics.control(RUN, "start"), env("control", "coordinator", {"t0": 0.0, "shards": 2})),
        (topics.control(RUN, "scenario"), env("control", "coordinator", {"toml": "x"})),
        (topics.control(RUN, "pause"), b"\xc1 not a control"),
        (topics.shard_metrics(RUN, 0), env("metrics", "shard0", {"round": 3, "alive": -1})),
        (topics.shard_result(RUN, 1), env("metrics", "shard1", {"messages": {"sent": -1}})),
        (topics.shard_status(RUN, 1), env("event", "shard1", {"state": "dead", "shard": 1})),
        (f"{topics.bundle(RUN, 0)}/swarm-{RUN}-shard1-0", forged_bundle),
        (f"{topics.bundle(RUN, 1)}/swarm-{RUN}-shard0-1", b"garbage"),
        (f"{inbox}/{RUN}.a010", env("push", "a010", [[1, 0, b"lie"]])),
        (topics.region(RUN, "r0"), b"\x00" * 64),
    ]
    return out


class Adversary:
    """Publishes at most BUDGET messages from its own thread and loop until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.heard = 0
        self.refused: str | None = None  # why the broker would not let it in
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        link = MqttLink(BrokerUrl.parse(self.url), "mallory", MessageCounters(), capacity=5000)
        link.subscribe(f"{topics.ROOT}/{RUN}/#")
        try:
            await link.open(timeout=5)
        except BrokerUnavailable as exc:
            self.refused = str(exc)
            return
        loop = asyncio.get_running_loop()
        forgeries = _forgeries()
        heard: list[tuple[str, bytes]] = []
        try:
            while not self.stop.is_set() and self.sent < BUDGET:
                await link.wait(loop.time() + 0.05)
                for message in link.drain():
                    self.heard += 1
                    if len(heard) < 400:
                        heard.append((message.topic, message.payload))
                replays = heard[-12:]
                # Replays where they were heard, and moved to the topic of another message.
                moved = [(replays[i - 1][0], p) for i, (_, p) in enumerate(replays)]
                for topic, payload in forgeries + replays + moved:
                    if self.sent >= BUDGET:
                        break
                    link.publish(topic, payload)
                    self.sent += 1
                await asyncio.sleep(0.05)
        finally:
            link.close()
            await link.closed_task()


def _scenario():
    return from_dict(
        {
            "run": {"name": RUN, "seed": 3, "rounds": ROUNDS, "stop_when_done": False},
            "fleet": {"count": 60},
            "gossip": {"period": 0.1},
            "broker": {"connections": "shared", "grace": 5.0},
        }
    )


@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "authenticated"])
def test_a_sharded_fleet_survives_an_adversary_and_a_broker_restart(tmp_path: Path, auth):
    users = {"fleet": "fleet-pw", "mallory": "mallory-pw"} if auth else {}
    roles = {"mallory": "agent"} if auth else {}
    with MosquittoServer(users=users, roles=roles) as broker:
        fleet_url = broker.url
        attackers = [Adversary(broker.url_for("agent") if auth else broker.url)]
        if auth:  # and someone without an account, who must not get in at all
            attackers.append(Adversary(f"mqtt://127.0.0.1:{broker.port}"))
        for attacker in attackers:
            attacker.thread.start()

        def restart() -> None:
            broker.stop()
            time.sleep(0.3)
            broker.start()

        restarter = threading.Timer(7.0, restart)  # a few rounds into the run
        restarter.start()
        try:
            summary = run_sharded(_scenario(), fleet_url, 2, out_dir=tmp_path, timeout=30)
        finally:
            restarter.join()
            for attacker in attackers:
                attacker.stop.set()
                attacker.thread.join(timeout=20)

    assert attackers[0].refused is None and attackers[0].sent > 100  # it did attack
    if auth:
        assert attackers[1].refused is not None and attackers[1].sent == 0

    text = (tmp_path / "summary.json").read_text()
    assert _strict(text) == _strict(json.dumps(summary))
    assert summary["complete"] is True, summary.get("incomplete")
    assert summary["rounds"] == ROUNDS
    assert summary["shards"] == {"count": 2, "dead": []}

    messages = summary["messages"]
    # The fleet's own messages add up; what it received from others is counted apart.
    assert messages["sent"] == messages["delivered"] + messages["dropped"] + summary["lost"]
    assert summary["lost"] >= 0  # nothing foreign was counted as delivered
    assert messages["received_foreign"] > 0
    by_topic = summary["received_foreign_by_topic"]
    assert sum(by_topic.values()) == messages["received_foreign"]
    assert {"shard/metrics", "events"} <= set(by_topic)  # heard where the adversary spoke
    assert summary["agents_lost"] == 0

    rows = [_strict(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    recorded = [row["round"] for row in rows]
    missing = [r for first, last in summary["missing_rounds"] for r in range(first, last + 1)]
    assert sorted(recorded + missing) == list(range(ROUNDS + 1))
    assert all(row["alive"] == 60 for row in rows)

    events = [_strict(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    # Only the fleet's own words: gaps, and its answers refusing the adversary's controls.
    assert {e["event"] for e in events} <= {"gap", "rejoined", "control"}
    assert not any(e.get("ok") for e in events if e["event"] == "control")
    assert [[e["first"], e["last"]] for e in events if e["event"] == "gap"] == summary[
        "missing_rounds"
    ]
    assert summary["crashes"] == []
