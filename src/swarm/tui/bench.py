"""How the dashboard holds up beside a big fleet: key latency, UI tick cost, fleet slowdown.

The fleet runs flat out (no pacing) in its thread, the worst case for the UI thread that
shares the GIL with it. Keys are pressed through Textual's Pilot on a headless screen;
the latency is from the key being posted to the app to its action running, which is
what a user feels (the notification appears in the same tick). The ceiling is the same
fleet run headless moments before: the ratio says what watching costs the fleet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from swarm.run.live import LocalRun
from swarm.scenario import Scenario
from swarm.tui.app import SwarmApp, build_app

__all__ = ["measure"]

UNPACED = 1e5  # simulated s per wall s: the fleet never waits for the clock
KEY_GAP = 0.3  # wall seconds between presses, about a quick user's rate


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "max": round(float(ms.max()), 1),
    }


def _timed(record: list[float], fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            record.append(time.perf_counter() - started)

    return wrapper


async def _session(app: SwarmApp, source: LocalRun, presses: int) -> dict[str, Any]:
    acted: list[float] = []
    answered: list[float] = []  # press to the fleet's answer reaching the feed
    ticks: list[float] = []
    control = app.control

    def stamped(command: str, **args: Any) -> bool:
        acted.append(time.perf_counter())
        return control(command, **args)

    app.control = stamped  # type: ignore[method-assign]
    arrived: list[float] = []  # when each control answer reached the dashboard's feed
    on_payload = source.feed.on_payload

    def arrival(topic: str, payload: bytes) -> None:
        on_payload(topic, payload)
        if topic.endswith("/events/control"):
            arrived.append(time.perf_counter())

    source.feed.on_payload = arrival  # type: ignore[method-assign]  # before the run links it
    app.refresh_from_source = _timed(ticks, app.refresh_from_source)  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        while not (app.view.rows and app.view.status):  # the fleet is built and running
            await pilot.pause(0.1)
        first_row, first_wall = app.view.last, time.perf_counter()
        key_latency: list[float] = []
        for i in range(presses):
            pressed = time.perf_counter()
            await pilot.press("f" if i % 2 == 0 else "F")
            if len(acted) != i + 1:
                raise RuntimeError(f"press {i + 1}: the key did not reach its action")
            key_latency.append(acted[-1] - pressed)
            while len(arrived) <= i:
                await pilot.pause(0.01)
            answered.append(arrived[i] - pressed)
            await pilot.pause(KEY_GAP)
        last_row, last_wall = app.view.last, time.perf_counter()
        await pilot.press("q")
    rounds = last_row["round"] - first_row["round"]
    return {
        "key_latency": key_latency,
        "answer_latency": answered,
        "ticks": ticks,
        "rounds_per_s": rounds / (last_wall - first_wall),
    }


def measure(scenario: Scenario, headless_rounds_per_s: float, presses: int) -> dict[str, Any]:
    """Press keys `presses` times at a user's pace while `scenario` runs flat out."""
    source = LocalRun(scenario, speed=UNPACED)
    app = build_app(source)
    seen = asyncio.run(_session(app, source, presses))
    under_ui = seen["rounds_per_s"]
    return {
        "key_to_action_ms": _percentiles(seen["key_latency"]),
        "key_to_fleet_answer_ms": _percentiles(seen["answer_latency"]),
        "ui_tick_ms": _percentiles(seen["ticks"]),
        "fleet_rounds_per_s": round(under_ui, 2),
        "headless_rounds_per_s": round(headless_rounds_per_s, 2),
        "fleet_ratio": round(under_ui / headless_rounds_per_s, 3),
    }
