"""The dashboard on real runs: a fleet on the embedded broker, and one over mosquitto."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

from swarm import clock
from swarm.fleet import Fleet
from swarm.run.live import Attached, LocalRun
from swarm.scenario import from_dict, load
from swarm.tui import build_app


async def until(pilot, condition, timeout: float = 30.0, seen=lambda: "") -> None:
    """Wait for `condition`; on timeout say what the dashboard had (`seen`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"the dashboard never showed it; it had {seen()}"
        await pilot.pause(0.05)


def record_warnings(app) -> list[str]:
    """The warnings the dashboard raises from now on (toasts expire; this list does not)."""
    warnings: list[str] = []
    notify = app.notify

    def recorded(message, *args, **kwargs):
        if kwargs.get("severity") == "warning":
            warnings.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = recorded
    return warnings


def test_the_sybil_key_injects_into_the_running_fleet_and_q_stops_it() -> None:
    source = LocalRun(load("lab", **{"fleet.count": 20, "sybil.count": 5}), speed=50.0)
    app = build_app(source)

    async def session() -> None:
        async with app.run_test() as pilot:
            await until(pilot, lambda: len(app.view.rows) >= 4 and app.view.status)
            assert gc.get_freeze_count() > 0  # the built fleet is out of full collections
            assert app.view.status["sybils"]["joined"] == 0
            await pilot.press("s")
            await until(pilot, lambda: app.view.status["sybils"]["joined"] == 5)
            await pilot.press("c")
            await until(
                pilot, lambda: sum(c["crashed"] for c in app.view.status["classes"].values()) == 2
            )
            await pilot.press("q")

    asyncio.run(session())
    assert not source.running  # the fleet's thread ended with the app
    assert gc.get_freeze_count() == 0  # and what it held can be collected again
    assert source.fleet.roster.joined(source.fleet.now()) == 5


def test_attach_shows_a_headless_run_on_mosquitto_and_controls_reach_it(mosquitto) -> None:
    s = from_dict(
        {
            "run": {"name": "attached", "seed": 2, "rounds": 100_000, "stop_when_done": False},
            "fleet": {"count": 30, "regions": ["north", "south"]},
            "gossip": {"protocol": "push", "period": 0.05},
            "network": {"topology": "complete"},
        }
    )
    started: list[Fleet] = []
    done: list[dict] = []

    def headless() -> None:  # a `swarm run --broker` that runs until the test ends it
        fleet = Fleet(s, broker_url=mosquitto.url, on_start=started.append)
        done.append(clock.run(fleet.run(), virtual=False))

    runner = threading.Thread(target=headless, daemon=True)
    source = Attached(mosquitto.url, "attached")
    source.start()
    runner.start()
    app = build_app(source)
    warnings = record_warnings(app)

    async def session() -> None:
        async with app.run_test() as pilot:
            await until(pilot, lambda: len(app.view.rows) >= 3 and app.view.status)
            assert app.query_one("#gossip").display
            await pilot.press("f")
            await until(pilot, lambda: app.view.status.get("fanout") == 2)
            # started twice (here, then by the app) it is still one session on the broker
            assert source.link.reconnects == 0
            await pilot.press("p")  # a real broker's links are not the fleet's to cut
            await until(
                pilot,
                lambda: any("real broker" in w for w in warnings),
                seen=lambda: f"warnings {warnings}, events {list(app.view.events)[-3:]}",
            )
            await pilot.press("q")

    try:
        asyncio.run(session())
    finally:
        if started:
            started[0].loop.call_soon_threadsafe(started[0].world.rounds.stop)
        runner.join(60)
    assert done, "the headless run did not finish"
    answers = {e["command"]: e for e in source.feed.events if e.get("event") == "control"}
    assert answers["fanout"]["ok"] is True
    assert answers["partition"]["ok"] is False and "real broker" in answers["partition"]["detail"]
    assert not source.running
