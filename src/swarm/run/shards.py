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
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from swarm import __version__, seal, topics, wire
from swarm.broker.mqtt import BrokerUrl, MqttLink, unreachable_for
from swarm.broker.url import redact
from swarm.fleet import EVENT, METRICS, Fleet, RoundCallback, observe
from swarm.fleet.fleet import agents_lost
from swarm.fleet.recorder import JsonLines
from swarm.metrics import MessageCounters
from swarm.placement import place_agents
from swarm.run.runner import compare_clean, compare_variants, finish, interruptible, run_outputs
from swarm.scenario import Scenario, loads

__all__ = ["run_sharded", "run_worker"]

CONTROL = wire.register_kind("control")
START_DELAY = 4.0  # seconds between publishing the start time and round 0 (workers load
# scikit-learn and their data in that time)
STALE_START = 2.0  # a start this many seconds past is a dead coordinator's leftover
RESULT_TIMEOUT = 5.0  # seconds a worker tries to hand over its result
LATE_RESULTS = 0.8  # seconds an interrupted coordinator waits for the shards' results


def _envelope(kind: str, src: str, body: Any) -> bytes:
    return wire.encode(wire.Envelope(kind, src, 0, 0.0, 0, body))


# -- worker ------------------------------------------------------------------------------


async def _control_messages(link: MqttLink, run_id: str, timeout: float) -> tuple[str, float]:
    """Wait for the retained scenario and start time of `run_id`, sealed by its coordinator.

    A start time already past is what a coordinator that died left behind: ignored.
    """
    scenario_topic = topics.control(run_id, "scenario")
    start_topic = topics.control(run_id, "start")
    found: dict[str, Any] = {}
    stale: float | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found) < 2:
        if not await link.wait(deadline):
            why = "is its coordinator (`swarm run --shards N`) running?"
            if stale is not None:
                age = time.time() - stale
                why = f"the only start seen is {age:.0f} s old: its coordinator is gone"
            elif link.counters.received_foreign:
                foreign = link.counters.received_foreign
                why = (
                    f"{foreign} message(s) did not open with {seal.KEY_ENVIRONMENT}: "
                    "is it the coordinator's key?"
                )
            raise RuntimeError(
                f"no scenario for run {run_id!r} on {link.url} within {timeout:.0f}s: {why}"
            )
        for message in link.drain():
            with contextlib.suppress(wire.MalformedMessage):
                body = wire.decode(message.payload).body
                if message.topic == scenario_topic and isinstance(body, dict):
                    if isinstance(body.get("toml"), str):
                        found["toml"] = body["toml"]
                elif message.topic == start_topic and isinstance(body, dict):
                    t0 = body.get("t0")
                    if not isinstance(t0, int | float) or t0 != t0:
                        continue
                    if t0 < time.time() - STALE_START:
                        stale = float(t0)
                    else:
                        found["t0"] = float(t0)
    return found["toml"], found["t0"]


async def run_worker(
    url: str, run_id: str, shard: int, shards: int, key: bytes, timeout: float = 60
) -> int:
    """Run slice `shard` of `shards` of the run the coordinator announced on `url`.

    `key` is the run's (see `swarm.seal`): without it the worker can neither read the
    coordinator's messages nor be heard by it.
    """
    counters = MessageCounters()
    control = MqttLink(
        BrokerUrl.parse(url), f"swarm-{run_id}-worker{shard}", counters, qos=1, key=key
    )
    control.subscribe(topics.control(run_id, "scenario"))
    control.subscribe(topics.control(run_id, "start"))
    control.subscribe(topics.control(run_id, "stop"))
    await control.open()
    try:
        text, t0 = await _control_messages(control, run_id, timeout)
        scenario = loads(text, f"scenario of run {run_id!r}")
        fleet = Fleet(scenario, broker_url=url, shard=(shard, shards), key=key)
        stop_topic = topics.control(run_id, "stop")
        control.set_handler(
            lambda topic, payload: fleet.world.rounds.stop() if topic == stop_topic else None
        )
        summary = await interruptible(fleet.interrupt, fleet.run(start_at=t0))
        result = {
            "incomplete": fleet.failure,
            "shard": shard,
            "partial": fleet.partial_results(),
            "messages": summary["messages"],
            "crashes": summary["crashes"],
            "sim_time": summary["sim_time"],
            "reconnects": summary["reconnects"],
            "received_foreign_by_topic": summary["received_foreign_by_topic"],
            "backpressure": summary["backpressure"],
            "topology": summary["topology"],
        }
        control.publish(
            topics.shard_result(run_id, shard), _envelope(METRICS, control.client_id, result)
        )
        with contextlib.suppress(TimeoutError):  # a broker gone for good takes it with it
            await asyncio.wait_for(control.settle(), RESULT_TIMEOUT)
    finally:
        control.close()
        await control.closed_task()
    if fleet.failure is not None:
        print(f"swarm worker {shard}/{shards}: {fleet.failure}", file=sys.stderr)
        return 1
    return 0


# -- coordinator -------------------------------------------------------------------------


@dataclass
class _Merge:
    """Collects the shards' per-round slices and emits merged rows in round order.

    Everything it takes has been opened with the run key (see `swarm.seal`), so it came
    from one of the run's processes; it still checks shape and range, and counts what
    fails in `malformed` rather than trusting it.
    """

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
    events_refused: int = 0  # beyond one sender's share (see `event_cap`)
    failure: str | None = None  # why the run ended before its end, if it did
    missing: list[list[int]] = field(default_factory=list)  # rounds no row was merged for
    suspects: dict[int, float] = field(default_factory=dict)  # shard -> will heard at
    foreign_by_topic: dict[str, int] = field(default_factory=dict)  # the coordinator's
    _events_by: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._files = (JsonLines(self.sink), JsonLines(self.events_sink))
        # A sender's share of events.jsonl: one per agent and then some (crashes, wills).
        self.event_cap = 2 * (self.scenario.fleet.count + self.scenario.sybil.count) + 100

    @property
    def write_error(self) -> OSError | None:
        return self._files[0].error or self._files[1].error

    @property
    def live(self) -> set[int]:
        return set(range(self.shards)) - self.dead

    def interrupt(self, why: str) -> None:
        if self.failure is None:
            last = self.rows[-1]["round"] if self.rows else 0
            self.failure = f"{why} in round {last} of {self.scenario.max_rounds}"

    def add_part(self, shard: int, part: dict[str, Any]) -> None:
        round = part.get("round")
        if type(round) is not int or not 0 <= round <= self.scenario.max_rounds:
            self.malformed += 1
            return
        if self.rows and round <= self.rows[-1]["round"]:
            return  # a round already merged (a redelivery)
        self.suspects.pop(shard, None)  # it speaks: not dead
        self.parts.setdefault(round, {})[shard] = part
        self.emit()

    def emit(self) -> None:
        """Merge every complete round, oldest first (a dead shard no longer holds one up)."""
        while self.parts:
            round = min(self.parts)
            got = self.parts[round]
            if not self.live <= set(got):
                if not any(
                    later > round and self.live <= set(self.parts[later]) for later in self.parts
                ):
                    return
                # A later round is whole: a shard's part of this one was lost on the way
                # (the broker restarted); it is stated as missing, not waited for.
                del self.parts[round]
                continue
            del self.parts[round]
            try:
                row, done = observe.merge_rows(
                    self.scenario,
                    [got[s] for s in sorted(got) if s in self.live] or list(got.values()),
                )
            except (KeyError, TypeError, ValueError):
                self.malformed += 1
                continue
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

    def add_event(self, src: str, event: dict[str, Any]) -> None:
        count = self._events_by.get(src, 0)
        if count >= self.event_cap:
            self.events_refused += 1
            return
        self._events_by[src] = count + 1
        self.events.append(event)
        self._files[1].write(event)

    def add_result(self, shard: int, result: dict[str, Any]) -> None:
        messages = result.get("messages")
        if not (
            isinstance(messages, dict)
            and set(messages) <= set(MessageCounters().as_dict())
            and all(type(v) is int for v in messages.values())
            and isinstance(result.get("partial"), dict)
            and isinstance(result.get("crashes"), list)
        ):
            self.malformed += 1
            return
        self.results[shard] = result

    def finished(self) -> bool:
        return self.live <= set(self.results)


async def _coordinate(
    scenario: Scenario,
    url: str,
    shards: int,
    merge: _Merge,
    timeout: float,
    worker_urls: list[str],
    key: bytes,
    counters: MessageCounters,
) -> dict[str, Any]:
    run_id = scenario.run.name
    link = MqttLink(
        BrokerUrl.parse(url),
        f"swarm-{run_id}-coordinator",
        counters,
        qos=1,
        key=key,
        foreign_topics=merge.foreign_by_topic,
    )
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
    environment = {**os.environ, seal.KEY_ENVIRONMENT: key.hex()}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "swarm",
                "worker",
                "--broker",
                worker_urls[i % len(worker_urls)],
                "--run",
                run_id,
                "--shard",
                f"{i}/{shards}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment,
        )
        for i in range(shards)
    ]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_DELAY + scenario.max_rounds * scenario.gossip.period + timeout
    grace = scenario.broker.grace
    stop_sent = False
    stop_by: float | None = None  # when an interrupted run stops waiting for results
    last_words: dict[int, str] = {}  # a dead worker's last line on stderr
    try:
        while not merge.finished():
            now = loop.time()
            if now > deadline:
                merge.interrupt(f"the shards did not finish within {timeout:g} s of the end")
                break
            if unreachable_for([link], now) > grace:
                merge.interrupt(
                    f"lost the broker at {redact(url)} for more than {grace:g} s (broker.grace)"
                )
                break
            if merge.failure is not None:
                if stop_by is None:
                    stop_by = now + LATE_RESULTS
                elif now > stop_by:
                    break
            await link.wait(min(now + 0.2, stop_by or now + 0.2))
            for message in link.drain():
                _take(message.topic, message.payload, merge, run_id)
            for i, worker in enumerate(workers):
                if worker.poll() not in (None, 0) and i not in merge.results:
                    if i not in merge.dead:
                        last_words[i] = _last_line(worker)
                    merge.dead.add(i)
            for shard, since in list(merge.suspects.items()):
                if shard in merge.results:
                    del merge.suspects[shard]
                elif workers[shard].poll() is None:
                    continue  # its process runs: a broker restart, or it is about to say why
                elif time.monotonic() - since > grace:
                    merge.dead.add(shard)
                    del merge.suspects[shard]
            merge.emit()
            if not merge.live:  # nobody left to finish the run
                for i, worker in enumerate(workers):
                    if i not in last_words and worker.poll() is not None:
                        last_words[i] = _last_line(worker)
                why = next((words for words in last_words.values() if words), "no word")
                merge.interrupt(f"every shard ended before handing in its result ({why})")
                break
            if (merge.done_round is not None or merge.failure is not None) and not stop_sent:
                link.publish(
                    topics.control(run_id, "stop"),
                    _envelope(CONTROL, me, {"round": merge.done_round}),
                )
                stop_sent = True
    finally:
        for topic in ("scenario", "start"):
            link.publish_retained(topics.control(run_id, topic), b"")  # clear for the next run
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.settle(), 1 if merge.failure else 5)
        link.close()
        await link.closed_task()
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=1 if merge.failure else 10)
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stderr is not None:
                worker.stderr.close()
    return {"t0": t0}


def _take(topic: str, payload: bytes, merge: _Merge, run_id: str) -> None:
    """One message the run key opened: a shard's part, result or death, or an event."""
    prefix = f"{topics.ROOT}/{run_id}/shard/"
    try:
        envelope = wire.decode(payload)
    except wire.MalformedMessage:
        merge.malformed += 1
        return
    body = envelope.body
    if not isinstance(body, dict):
        merge.malformed += 1
        return
    if topics.matches(topics.events_filter(run_id), topic):
        if envelope.kind == EVENT:
            merge.add_event(str(envelope.src), body)
        else:
            merge.malformed += 1
        return
    shard_text, _, kind = topic[len(prefix) :].partition("/")
    shard = int(shard_text) if shard_text.isdigit() else -1
    if not 0 <= shard < merge.shards:
        merge.malformed += 1
    elif kind == "metrics" and envelope.kind == METRICS:
        merge.add_part(shard, body)
    elif kind == "result" and envelope.kind == METRICS:
        merge.add_result(shard, body)
    elif kind == "status" and envelope.kind == EVENT and body.get("state") == "dead":
        # The broker publishes a shard's will when it loses the connection, which a broker
        # restart does too: dead only if the shard stays silent (see _Merge.suspects).
        if shard not in merge.results:
            merge.suspects.setdefault(shard, time.monotonic())
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
    The run key is `SWARM_RUN_KEY` when set (for workers started elsewhere), else new.
    """
    started = time.perf_counter()
    key = seal.key_from_environment() or seal.new_key()
    counters = MessageCounters()  # the coordinator's own link
    with run_outputs(out_dir) as (sink, events_sink):
        merge = _Merge(scenario, shards, sink, on_round, events_sink=events_sink)
        coordinate = _coordinate(
            scenario, url, shards, merge, timeout, worker_urls or [url], key, counters
        )
        asyncio.run(interruptible(merge.interrupt, coordinate))
        merge.missing = observe.missing_rounds(merge.rows)
        for event in observe.gap_events(merge.missing):
            merge.add_event("coordinator", event)
    summary = _summary(scenario, url, merge, time.perf_counter() - started, counters)
    compare_clean(summary, scenario)
    compare_variants(summary, scenario)
    finish(out_dir, summary, show, merge.write_error)
    return summary


def _summary(
    scenario: Scenario, url: str, merge: _Merge, wall: float, coordinator: MessageCounters
) -> dict[str, Any]:
    results = [merge.results[s] for s in sorted(merge.results)]
    messages = MessageCounters()
    for r in results:
        messages.add(MessageCounters(**r["messages"]))
    messages.dropped_malformed += merge.malformed
    messages.received_foreign += coordinator.received_foreign
    classes: dict[str, int] = {}
    for kind in place_agents(scenario).kinds:
        classes[kind] = classes.get(kind, 0) + 1
    failure = merge.failure or next((r["incomplete"] for r in results if r.get("incomplete")), None)
    extra: dict[str, Any] = {} if failure is None else {"incomplete": failure}
    return {
        **extra,
        "complete": failure is None,
        "scenario": scenario.to_dict(),
        "seed": scenario.run.seed,
        "version": __version__,
        "agents": scenario.fleet.count,
        "broker": redact(url),
        "classes": classes,
        "topology": results[0].get("topology") if results else None,
        "rounds": merge.rows[-1]["round"] if merge.rows else 0,
        "sim_time": max((r.get("sim_time", 0.0) for r in results), default=0.0),
        "wall_time": wall,
        "messages": messages.as_dict(),
        "crashes": [c for r in results for c in r["crashes"]],
        "shards": {"count": merge.shards, "dead": sorted(merge.dead)},
        "missing_rounds": merge.missing,
        # per-agent mode: agents whose last will the broker published (their process died)
        "agents_lost": agents_lost(merge.events),
        "events_refused": merge.events_refused,
        "received_foreign_by_topic": _foreign_by_topic(merge, results),
        "reconnects": sum(r.get("reconnects", 0) for r in results),
        "backpressure": {
            key: sum(r.get("backpressure", {}).get(key, 0) for r in results)
            for key in ("held_rounds", "held_seconds")
        },
        # sent - delivered - dropped of the fleet's own messages; never clamped, so loss
        # (a broker restart) shows, and so would a count that went wrong
        "lost": messages.sent - messages.delivered - messages.dropped,
        "results": observe.results(scenario, [r["partial"] for r in results], merge.rows),
    }


def _foreign_by_topic(merge: _Merge, results: list[dict[str, Any]]) -> dict[str, int]:
    """What no process of the run sent, by topic family, over the coordinator and shards."""
    total = dict(merge.foreign_by_topic)
    for result in results:
        counts = result.get("received_foreign_by_topic")
        if isinstance(counts, dict):
            for kind, count in counts.items():
                if isinstance(kind, str) and type(count) is int:
                    total[kind] = total.get(kind, 0) + count
    return dict(sorted(total.items()))


def _last_line(worker: subprocess.Popen[bytes]) -> str:
    """The last error line an ended worker wrote on stderr, or ""."""
    if worker.stderr is None:
        return ""
    with contextlib.suppress(OSError, ValueError):
        lines = worker.stderr.read().decode(errors="replace").strip().splitlines()
        ours = [line for line in lines if line.startswith("swarm")] or lines
        return ours[-1][:300] if ours else ""
    return ""
