"""One fleet in several processes (or machines), with the MQTT broker as the fabric.

The coordinator (`swarm run --broker URL --shards N`) publishes the scenario and a start
time as retained control messages, starts N workers (`swarm worker`), merges the
metrics each shard publishes for its slice of the fleet, tells the shards to stop once
the fleet is done, and writes one summary. Workers elsewhere can join with
`swarm worker --broker URL --run ID --shard I/N`: they read the same retained messages.
A shard whose process dies is noticed (its exit, or its last will) and the run goes on
without it; the summary names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from swarm import __version__, topics, wire
from swarm.broker.mqtt import BrokerUrl, MqttLink
from swarm.broker.url import redact
from swarm.fleet import EVENT, METRICS, Fleet, RoundCallback, observe
from swarm.fleet.recorder import JsonLines
from swarm.metrics import MessageCounters
from swarm.placement import place_agents
from swarm.run.runner import compare_clean, finish, run_outputs
from swarm.scenario import Scenario, loads

__all__ = ["run_sharded", "run_worker"]

CONTROL = wire.register_kind("control")
START_DELAY = 4.0  # seconds between publishing the start time and round 0 (workers load
# scikit-learn and their data in that time)


def _envelope(kind: str, src: str, body: Any) -> bytes:
    return wire.encode(wire.Envelope(kind, src, 0, 0.0, 0, body))


# -- worker ------------------------------------------------------------------------------


async def _control_messages(link: MqttLink, run_id: str, timeout: float) -> tuple[str, float]:
    """Wait for the retained scenario and start time of `run_id`."""
    scenario_topic = topics.control(run_id, "scenario")
    start_topic = topics.control(run_id, "start")
    found: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found) < 2:
        if not await link.wait(deadline):
            raise RuntimeError(
                f"no scenario for run {run_id!r} on {link.url} within {timeout:.0f}s: "
                "is its coordinator (`swarm run --shards N`) running?"
            )
        for message in link.drain():
            with contextlib.suppress(wire.MalformedMessage):
                body = wire.decode(message.payload).body
                if message.topic == scenario_topic and isinstance(body, dict):
                    found["toml"] = body.get("toml")
                elif message.topic == start_topic and isinstance(body, dict):
                    found["t0"] = body.get("t0")
    if not isinstance(found["toml"], str) or not isinstance(found["t0"], int | float):
        raise RuntimeError(f"run {run_id!r}: malformed scenario or start message")
    return found["toml"], float(found["t0"])


async def run_worker(url: str, run_id: str, shard: int, shards: int, timeout: float = 60) -> int:
    """Run slice `shard` of `shards` of the run the coordinator announced on `url`."""
    counters = MessageCounters()
    control = MqttLink(BrokerUrl.parse(url), f"swarm-{run_id}-worker{shard}", counters, qos=1)
    control.subscribe(topics.control(run_id, "scenario"))
    control.subscribe(topics.control(run_id, "start"))
    control.subscribe(topics.control(run_id, "stop"))
    await control.open()
    try:
        text, t0 = await _control_messages(control, run_id, timeout)
        scenario = loads(text, f"scenario of run {run_id!r}")
        fleet = Fleet(scenario, broker_url=url, shard=(shard, shards))
        stop_topic = topics.control(run_id, "stop")
        control.set_handler(
            lambda topic, payload: fleet.world.rounds.stop() if topic == stop_topic else None
        )
        summary = await fleet.run(start_at=t0)
        result = {
            "shard": shard,
            "partial": fleet.partial_results(),
            "messages": summary["messages"],
            "crashes": summary["crashes"],
            "sim_time": summary["sim_time"],
            "reconnects": summary["reconnects"],
            "backpressure": summary["backpressure"],
            "topology": summary["topology"],
        }
        control.publish(
            topics.shard_result(run_id, shard), _envelope(METRICS, control.client_id, result)
        )
        await control.settle()
    finally:
        control.close()
        await control.closed_task()
    return 0


# -- coordinator -------------------------------------------------------------------------


@dataclass
class _Merge:
    """Collects the shards' per-round slices and emits merged rows in round order."""

    scenario: Scenario
    shards: int
    sink: TextIO | None = None
    on_round: RoundCallback | None = None
    publish: Callable[[dict[str, Any]], None] | None = None  # merged rows onto the broker
    events_sink: TextIO | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    parts: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)
    done_round: int | None = None
    malformed: int = 0

    def __post_init__(self) -> None:
        self._files = (JsonLines(self.sink), JsonLines(self.events_sink))

    @property
    def write_error(self) -> OSError | None:
        return self._files[0].error or self._files[1].error

    @property
    def live(self) -> set[int]:
        return set(range(self.shards)) - self.dead

    def add_part(self, shard: int, part: dict[str, Any]) -> None:
        self.parts.setdefault(int(part["round"]), {})[shard] = part
        self.emit()

    def emit(self) -> None:
        """Merge every complete round, oldest first (a dead shard no longer holds one up)."""
        while self.parts:
            round = min(self.parts)
            got = self.parts[round]
            if not self.live <= set(got):
                return
            del self.parts[round]
            row, done = observe.merge_rows(
                self.scenario, [got[s] for s in sorted(got) if s in self.live] or list(got.values())
            )
            self.rows.append(row)
            self._files[0].write(row)
            if self.publish is not None:
                self.publish(row)
            if self.on_round is not None:
                self.on_round(row)
            if self.done_round is None and (
                (done and self.scenario.run.stop_when_done) or round >= self.scenario.max_rounds
            ):
                self.done_round = round

    def add_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._files[1].write(event)

    def finished(self) -> bool:
        return self.live <= set(self.results)


async def _coordinate(
    scenario: Scenario,
    url: str,
    shards: int,
    merge: _Merge,
    timeout: float,
    worker_urls: list[str],
) -> dict[str, Any]:
    run_id = scenario.run.name
    counters = MessageCounters()
    link = MqttLink(BrokerUrl.parse(url), f"swarm-{run_id}-coordinator", counters, qos=1)
    for pattern in ("metrics", "result", "status"):
        link.subscribe(f"{topics.ROOT}/{run_id}/shard/+/{pattern}")
    link.subscribe(topics.events_filter(run_id))
    await link.open()
    t0 = time.time() + START_DELAY
    me = link.client_id
    published = 0

    def publish_row(row: dict[str, Any]) -> None:
        # The merged fleet view, on the same topic a one-process run uses.
        nonlocal published
        envelope = wire.Envelope(METRICS, me, published, row["time"], 0, row)
        link.publish(topics.metrics(run_id), wire.encode(envelope))
        published += 1

    merge.publish = publish_row
    link.publish_retained(
        topics.control(run_id, "scenario"), _envelope(CONTROL, me, {"toml": scenario.to_toml()})
    )
    link.publish_retained(
        topics.control(run_id, "start"), _envelope(CONTROL, me, {"t0": t0, "shards": shards})
    )
    await link.settle()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "swarm",
                "worker",
                "--broker",
                url,
                "--run",
                run_id,
                "--shard",
                f"{i}/{shards}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(shards)
    ]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_DELAY + scenario.max_rounds * scenario.gossip.period + timeout
    stop_sent = False
    try:
        while not merge.finished():
            if loop.time() > deadline:
                raise RuntimeError(f"sharded run {run_id!r} did not finish in time")
            await link.wait(loop.time() + 0.2)
            for message in link.drain():
                _take(message.topic, message.payload, merge, run_id)
            for i, worker in enumerate(workers):
                if worker.poll() not in (None, 0) and i not in merge.results:
                    merge.dead.add(i)
            merge.emit()
            if merge.done_round is not None and not stop_sent:
                link.publish(
                    topics.control(run_id, "stop"),
                    _envelope(CONTROL, me, {"round": merge.done_round}),
                )
                stop_sent = True
    finally:
        for topic in ("scenario", "start"):
            link.publish_retained(topics.control(run_id, topic), b"")  # clear for the next run
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.settle(), 5)
        link.close()
        await link.closed_task()
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=10)
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stderr is not None:
                worker.stderr.close()
    return {"t0": t0}


def _take(topic: str, payload: bytes, merge: _Merge, run_id: str) -> None:
    prefix = f"{topics.ROOT}/{run_id}/shard/"
    if topics.matches(topics.events_filter(run_id), topic):
        try:
            event = wire.decode(payload)
        except wire.MalformedMessage:
            merge.malformed += 1
            return
        if event.kind == EVENT and isinstance(event.body, dict):
            merge.add_event(event.body)
        else:
            merge.malformed += 1
        return
    try:
        envelope = wire.decode(payload)
        shard_text, kind = topic[len(prefix) :].split("/")
        shard = int(shard_text)
    except (wire.MalformedMessage, ValueError):
        merge.malformed += 1
        return
    body = envelope.body
    if not 0 <= shard < merge.shards or not isinstance(body, dict):
        merge.malformed += 1
    elif kind == "metrics" and envelope.kind == METRICS and "round" in body:
        merge.add_part(shard, body)
    elif kind == "result" and envelope.kind == METRICS:
        merge.results[shard] = body
    elif kind == "status" and envelope.kind == EVENT and body.get("state") == "dead":
        if shard not in merge.results:
            merge.dead.add(shard)
    else:
        merge.malformed += 1


def run_sharded(
    scenario: Scenario,
    url: str,
    shards: int,
    *,
    out_dir: Path | None = None,
    on_round: RoundCallback | None = None,
    timeout: float = 60.0,
    worker_urls: list[str] | None = None,
    show: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run `scenario` in `shards` worker processes through the broker at `url`.

    `worker_urls` points workers at other brokers (round-robin), e.g. mosquittos bridged
    to the coordinator's: the fleet is one as long as the brokers forward `swarm/#`.
    """
    started = time.perf_counter()
    with run_outputs(out_dir) as (sink, events_sink):
        merge = _Merge(scenario, shards, sink, on_round, events_sink=events_sink)
        asyncio.run(_coordinate(scenario, url, shards, merge, timeout, worker_urls or [url]))
    summary = _summary(scenario, url, merge, time.perf_counter() - started)
    compare_clean(summary, scenario)
    finish(out_dir, summary, show, merge.write_error)
    return summary


def _summary(scenario: Scenario, url: str, merge: _Merge, wall: float) -> dict[str, Any]:
    results = [merge.results[s] for s in sorted(merge.results)]
    messages = MessageCounters()
    for r in results:
        messages.add(MessageCounters(**r["messages"]))
    messages.dropped_malformed += merge.malformed
    classes: dict[str, int] = {}
    for kind in place_agents(scenario).kinds:
        classes[kind] = classes.get(kind, 0) + 1
    return {
        "scenario": scenario.to_dict(),
        "seed": scenario.run.seed,
        "version": __version__,
        "agents": scenario.fleet.count,
        "broker": redact(url),
        "classes": classes,
        "topology": results[0]["topology"] if results else None,
        "rounds": merge.rows[-1]["round"] if merge.rows else 0,
        "sim_time": max((r["sim_time"] for r in results), default=0.0),
        "wall_time": wall,
        "messages": messages.as_dict(),
        "crashes": [c for r in results for c in r["crashes"]],
        "shards": {"count": merge.shards, "dead": sorted(merge.dead)},
        # per-agent mode: agents whose last will the broker published (their process died)
        "agents_lost": sum(1 for event in merge.events if event.get("event") == "lost"),
        "reconnects": sum(r["reconnects"] for r in results),
        "backpressure": {
            key: sum(r.get("backpressure", {}).get(key, 0) for r in results)
            for key in ("held_rounds", "held_seconds")
        },
        "lost": max(0, messages.sent - messages.delivered - messages.dropped),
        "results": observe.results(scenario, [r["partial"] for r in results], merge.rows),
    }
