"""Live runs for a dashboard: a fleet (or a broker subscription) beside the UI thread.

A dashboard never touches a fleet directly. It reads a `Source`: a `Feed` of decoded
metrics rows, events and status messages, filled from the run's topics by another thread,
and taken in batches a few times a second; and it turns knobs by `send`, which publishes
the same control message (`swarm.fleet.control`) a headless run accepts.

- `LocalRun` runs a scenario on the embedded broker in a thread, paced in virtual time.
- `Attached` subscribes to a run on a real broker (headless `swarm run --broker`, shards).
- `StaticSource` holds fixed data: recorded runs, screenshots and tests.

Nothing here imports textual; only `swarm.broker.mqtt` (loaded for `Attached`) imports
aiomqtt.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from swarm import clock, seal, topics, wire
from swarm.fleet import control, fleetmap
from swarm.scenario import Scenario
from swarm.scenario.info import scenario_info

__all__ = [
    "Attached",
    "Feed",
    "LocalRun",
    "Snapshot",
    "Source",
    "StaticSource",
    "export_run",
]

MAX_ROWS = 100_000  # metrics rows a session keeps (for charts and export)
MAX_EVENTS = 2_000  # events a session keeps; older ones are counted, not kept
STOP_TIMEOUT = 10.0  # seconds to wait for a fleet thread to wind down
FREEZE_ROUND = 2  # by then a fleet has built its long-lived state (see LocalRun._on_round)


@dataclass
class Snapshot:
    """What changed since the last `take`, and the latest state."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None
    state: str = "starting"
    run_id: str | None = None
    malformed: int = 0
    generation: int = 0  # bumped by a reset: the UI starts its charts afresh


class Feed:
    """Thread-safe mailbox between a run's topics and the dashboard.

    `on_payload` is a Link handler (any thread); `take` hands the UI what arrived since
    its last call. Payloads that do not decode, or are not of the run being watched, are
    counted in `malformed`.
    """

    def __init__(self, run_id: str | None = None) -> None:
        self._lock = threading.Lock()
        self.run_id = run_id
        self.rows: deque[dict[str, Any]] = deque(maxlen=MAX_ROWS)
        self.events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self._new_rows: list[dict[str, Any]] = []
        self._new_events: list[dict[str, Any]] = []
        self._status: dict[int, dict[str, Any]] = {}  # by shard
        self.malformed = 0
        self.state = "starting"
        self.generation = 0

    def on_payload(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != topics.ROOT:
            self._bad()
            return
        run_id, what = parts[1], parts[2]
        try:
            envelope = wire.decode(seal.unwrap(payload))  # watching needs no run key
        except wire.MalformedMessage:
            self._bad()
            return
        body = envelope.body
        if type(body) is not dict:
            self._bad()
            return
        with self._lock:
            if self.run_id is None:
                self.run_id = run_id  # attached without --run: follow the first run seen
            elif run_id != self.run_id:
                return  # another run on the same broker
            if what == "metrics" and len(parts) == 3:
                self.rows.append(body)
                self._new_rows.append(body)
            elif what == "events":
                self.events.append(body)
                self._new_events.append(body)
            elif what == "status" and len(parts) == 3:
                shard = body.get("shard", 0)
                shard = shard if type(shard) is int else 0
                before = self._status.get(shard, {})
                if "map" not in body and "map" in before:  # the map comes less often
                    body = body | {"map": before["map"]}
                self._status[shard] = body
            else:
                self.malformed += 1

    def _bad(self) -> None:
        with self._lock:
            self.malformed += 1

    def take(self) -> Snapshot:
        with self._lock:
            snapshot = Snapshot(
                self._new_rows,
                self._new_events,
                merge_status(list(self._status.values())),
                self.state,
                self.run_id,
                self.malformed,
                self.generation,
            )
            self._new_rows, self._new_events = [], []
        return snapshot

    def clear(self) -> None:
        """Forget everything (a reset): the next run starts a new generation."""
        with self._lock:
            self.rows.clear()
            self.events.clear()
            self._new_rows, self._new_events = [], []
            self._status.clear()
            self.generation += 1

    def set_state(self, state: str) -> None:
        with self._lock:
            self.state = state

    def history(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self._lock:
            return list(self.rows), list(self.events)


def merge_status(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One status from every shard's: counts add up, knobs come from the first shard."""
    if not parts:
        return None
    parts = sorted(parts, key=lambda p: p.get("shard", 0))
    merged = dict(parts[0])
    if len(parts) > 1:
        classes: dict[str, dict[str, int]] = {}
        for part in parts:
            for kind, counts in part.get("classes", {}).items():
                entry = classes.setdefault(kind, {})
                for key, value in counts.items():
                    entry[key] = entry.get(key, 0) + value
        merged["classes"] = classes
        merged["round"] = min(p.get("round", 0) for p in parts)
        maps = [p["map"] for p in parts if "map" in p]
        merged.pop("map", None)
        if maps:
            merged |= _merged_map(maps)
    return merged


_MERGED: list[Any] = [(), {}]  # the shards' maps last merged, and what they made


def _merged_map(maps: list[Any]) -> dict[str, Any]:
    """The shards' maps as one, merged again only when one of them changed (the
    dashboard asks four times a second; a map arrives twice)."""
    if len(maps) == len(_MERGED[0]) and all(a is b for a, b in zip(maps, _MERGED[0], strict=True)):
        return _MERGED[1]
    try:
        out = {"map": fleetmap.merge(maps)}
    except ValueError:  # a shard's map is garbage: no map rather than a wrong one
        out = {}
    _MERGED[:] = [tuple(maps), out]
    return out


class Source(Protocol):
    """What the dashboard needs from a run; `swarm.tui` is built on this alone."""

    title: str
    info: dict[str, Any]

    @property
    def sender(self) -> str | None:
        """The src its control messages carry; None when it sends to no fleet."""
        ...

    def start(self) -> None: ...
    def take(self) -> Snapshot: ...
    def send(self, command: str, **args: Any) -> str: ...
    def reset(self) -> None: ...
    def export(self, directory: Path) -> Path: ...
    def stop(self) -> None: ...


def export_run(
    directory: Path,
    rows: Iterable[dict[str, Any]],
    events: Iterable[dict[str, Any]],
    summary: dict[str, Any],
) -> Path:
    """metrics.jsonl, events.jsonl and summary.json in `directory`, as `swarm run --out`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, lines in (("metrics.jsonl", rows), ("events.jsonl", events)):
        with (directory / name).open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(wire.to_jsonable(line), sort_keys=True) + "\n")
    text = json.dumps(wire.to_jsonable(summary), indent=2, sort_keys=True) + "\n"
    (directory / "summary.json").write_text(text, encoding="utf-8")
    return directory


class _Threaded:
    """A source whose asyncio loop runs in a daemon thread; controls cross by call_soon."""

    title = ""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.loop: asyncio.AbstractEventLoop | None = None
        self.link: Any = None
        self._thread: threading.Thread | None = None
        self._seq = itertools.count(1)
        self.sender = f"dashboard-{os.getpid()}-{id(self):x}"

    def take(self) -> Snapshot:
        return self.feed.take()

    def send(self, command: str, **args: Any) -> str:
        """Publish a control message to the run; raises ControlError when there is none."""
        control.parse(command, args)  # refuse bad input here, before it travels
        loop, link, run_id = self.loop, self.link, self.feed.run_id
        if loop is None or link is None or loop.is_closed() or not self.running:
            raise control.ControlError(f"{command}: the run is not running (r resets it)")
        if run_id is None:
            raise control.ControlError(f"{command}: no run seen on the broker yet")
        topic, payload = control.encode(run_id, command, args, src=self.sender, seq=next(self._seq))
        loop.call_soon_threadsafe(self._publish, topic, payload)
        return f"sent {command}"

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.link is not None and not self.link.closed:
            self.link.publish(topic, payload)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _spawn(self, target: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=target, name=type(self).__name__, daemon=True)
        self._thread.start()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            self._thread = None


class LocalRun(_Threaded):
    """A scenario on the embedded broker, in a thread, at `speed` simulated s per wall s."""

    def __init__(self, scenario: Scenario, *, speed: float | None = None) -> None:
        super().__init__(Feed(scenario.run.name))
        self.scenario = scenario
        self.title = scenario.run.name
        self.info = scenario_info(scenario)
        self.speed = speed if speed is not None else 4 * scenario.gossip.period
        self.fleet: Any = None
        self.summary: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the fleet's thread; a second call while it runs does nothing."""
        if self.running:
            return
        self.feed.set_state("starting")
        self._spawn(self._main)

    def _main(self) -> None:
        from swarm.fleet import Fleet

        try:
            self.fleet = Fleet(
                self.scenario, live=True, on_start=self._started, on_round=self._on_round
            )
            self.summary = clock.run(self.fleet.run(), speed=self.speed)
            self.feed.set_state("finished")
        except Exception as exc:  # shown in the dashboard, not lost in a thread
            self.error = exc
            self.feed.set_state(f"failed: {type(exc).__name__}: {exc}")
        finally:
            self.link = None
            gc.unfreeze()  # what the run held may now be collected

    @staticmethod
    def _on_round(row: dict[str, Any]) -> None:
        """Take a big fleet's long-lived objects out of the collector's full passes.

        A full collection walks every object, and holds the GIL while it does: at 10,000
        agents that was a 160-210 ms stall of the UI thread. Frozen once the fleet is
        built, the same passes take about 12 ms (`swarm bench dashboard`).
        """
        if row.get("round") == FREEZE_ROUND:
            gc.collect()
            gc.freeze()

    def _started(self, fleet: Any) -> None:
        from swarm.broker.network import Endpoint

        self.loop = asyncio.get_running_loop()
        link = fleet.broker.connect("dashboard", Endpoint(reliable=True))
        run_id = fleet.world.run_id
        for topic_filter in (
            topics.metrics(run_id),
            topics.status(run_id),
            topics.events_filter(run_id),
        ):
            link.subscribe(topic_filter)
        link.set_handler(self.feed.on_payload)
        self.link = link
        self.feed.set_state("running")

    def stop(self) -> None:
        """End the run (a paused one too) and wait for its thread."""
        loop, fleet = self.loop, self.fleet
        if self.running and loop is not None and fleet is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: the run is over anyway
                loop.call_soon_threadsafe(_end_run, fleet)
        self._join()

    def reset(self) -> None:
        """Stop the run and start the same scenario from round 0."""
        self.stop()
        self.fleet, self.summary, self.error, self.loop = None, None, None, None
        self.feed.clear()
        self.start()

    def export(self, directory: Path) -> Path:
        rows, events = self.feed.history()
        summary = self.summary
        if summary is None:
            summary = self._live_summary()
        return export_run(directory, rows, events, summary)

    def _live_summary(self) -> dict[str, Any]:
        """The fleet's summary so far, computed in its own thread (it must not race)."""
        loop, fleet = self.loop, self.fleet
        if loop is None or fleet is None or not self.running:
            return {"scenario": self.scenario.to_dict(), "state": self.feed.state}

        async def take() -> dict[str, Any]:
            return fleet.summary() | {"state": "running"}

        try:
            return asyncio.run_coroutine_threadsafe(take(), loop).result(STOP_TIMEOUT)
        except Exception as exc:  # the run ended meanwhile: still export what we have
            return {"scenario": self.scenario.to_dict(), "state": f"unavailable: {exc}"}


def _end_run(fleet: Any) -> None:
    rounds = fleet.world.rounds
    rounds.paused = False
    if hasattr(fleet.loop, "paused"):
        fleet.loop.paused = False
    rounds.stop()


class Attached(_Threaded):
    """A run on a real broker, read from its topics; controls go back as MQTT messages."""

    def __init__(self, url: str, run_id: str | None = None, *, timeout: float = 10.0) -> None:
        super().__init__(Feed(run_id))
        from swarm.broker.mqtt import BrokerUrl

        self.url = BrokerUrl.parse(url)  # ValueError names what is wrong with the URL
        self.timeout = timeout
        self.title = f"{run_id or 'any run'} @ {self.url}"
        self.info: dict[str, Any] = {"name": run_id, "attached": str(self.url)}
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> None:
        """Connect, subscribe, and return; raises BrokerUnavailable if it cannot connect.

        A second call while connected does nothing: two sessions would share one client
        id, and the broker would keep dropping one for the other.
        """
        if self.running:
            return
        self.feed.set_state("connecting")
        self._ready.clear()
        self._spawn(self._main)
        self._ready.wait(self.timeout + 5.0)
        if self.error is not None:
            self._join()
            raise self.error

    def _main(self) -> None:
        asyncio.run(self._session())

    async def _session(self) -> None:
        from swarm.broker.mqtt import MqttTransport
        from swarm.broker.network import Endpoint

        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        transport = MqttTransport(self.url)
        link = transport.connect(self.sender, Endpoint(reliable=True))  # unique per source
        run = self.feed.run_id or "+"
        for topic_filter in (
            f"{topics.ROOT}/{run}/metrics",
            f"{topics.ROOT}/{run}/status",
            f"{topics.ROOT}/{run}/events/#",
        ):
            link.subscribe(topic_filter)
        link.set_handler(self.feed.on_payload)
        try:
            await transport.start(self.timeout)
        except Exception as exc:
            self.error = exc
            self._ready.set()
            return
        self.link = link
        self.feed.set_state("attached")
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            self.link = None
            await transport.stop()

    def stop(self) -> None:
        loop, stopping = self.loop, self._stopping
        if self.running and loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        self._join()

    def reset(self) -> None:
        raise control.ControlError(
            "reset: an attached run belongs to the process that started it; restart it there"
        )

    def export(self, directory: Path) -> Path:
        rows, events = self.feed.history()
        status = self.feed.take().status
        summary = {"attached": str(self.url), "run": self.feed.run_id, "status": status}
        if rows:
            summary["last_row"] = rows[-1]
        return export_run(directory, rows, events, summary)


class StaticSource:
    """Fixed rows, events and status: a recorded run, a screenshot, a test.

    Controls are recorded in `sent` and answered as a live run would be (an event).
    """

    def __init__(
        self,
        info: dict[str, Any],
        rows: list[dict[str, Any]],
        events: list[dict[str, Any]] | None = None,
        status: dict[str, Any] | None = None,
        state: str = "recorded",
    ) -> None:
        self.info = info
        self.title = str(info.get("name", "run"))
        self.rows, self.events, self.status, self.state = rows, list(events or []), status, state
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.sender: str | None = None  # recorded answers are history, not replies to us
        self._given = False
        self.resets = 0

    def start(self) -> None:
        self._given = False

    def take(self) -> Snapshot:
        if self._given:
            return Snapshot(status=self.status, state=self.state, run_id=self.title)
        self._given = True
        return Snapshot(list(self.rows), list(self.events), self.status, self.state, self.title)

    def send(self, command: str, **args: Any) -> str:
        control.parse(command, args)
        self.sent.append((command, args))
        return f"sent {command}"

    def reset(self) -> None:
        self.resets += 1
        self._given = False

    def export(self, directory: Path) -> Path:
        return export_run(directory, self.rows, self.events, {"info": self.info})

    def stop(self) -> None:
        pass

    @classmethod
    def from_directory(cls, directory: Path) -> StaticSource:
        """A run recorded with `swarm run --out DIR` (metrics.jsonl, events.jsonl, summary)."""
        rows = _jsonl(directory / "metrics.jsonl")
        events = _jsonl(directory / "events.jsonl") if (directory / "events.jsonl").exists() else []
        info: dict[str, Any] = {"name": directory.name}
        summary_path = directory / "summary.json"
        if summary_path.exists():
            from swarm.scenario import from_dict

            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            info = scenario_info(from_dict(summary["scenario"]))
        return cls(info, rows, events)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
    return rows
