"""The dashboard's map: where each agent is and what state it is in, small enough to send.

Positions come from the workload where its agents move (taxis) and from the placement
otherwise; they are scaled to 0..255 inside the map's extent and sent as two byte
strings, the states as one character each. 10,000 agents cost 30 kB, sent at most every
`EVERY_S` seconds of wall time whatever the round rate, so the map does not slow a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from swarm.fleet.agent import Agent, AgentState
from swarm.placement import Placement
from swarm.workloads.base import Workload

__all__ = ["EVERY_S", "STATES", "decode", "encode", "merge", "snapshot"]

EVERY_S = 0.5
# One character per agent, by precedence: the first that holds is drawn.
STATES = {
    "x": "crashed",
    "s": "Sybil",
    "z": "asleep",
    "*": "marked",  # what the workload's `mark` names: informed, warned, ...
    ".": "alive",
    "-": "not started",
}
LEVELS = 255  # positions are scaled to 0..LEVELS on each axis


def _state(agent: Agent, workload: Workload) -> str:
    """An agent stopped by the run's end is drawn as it ended."""
    if agent.state is AgentState.CRASHED:
        return "x"
    if agent.state is AgentState.CREATED:
        return "-"
    if agent.kind == "sybil":
        return "s"
    if workload.asleep(agent.index):
        return "z"
    return "*" if workload.marked(agent.index) else "."


def snapshot(agents: Sequence[Agent], placement: Placement, workload: Workload) -> dict[str, Any]:
    """This process's agents on the map: extent (x0, y0, x1, y1), x and y bytes, states."""
    points = np.empty((len(agents), 2))
    for row, agent in enumerate(agents):
        moved = workload.position(agent.index)
        points[row] = placement.positions[agent.index] if moved is None else moved
    return encode(points, "".join(_state(agent, workload) for agent in agents))


def encode(points: np.ndarray, states: str) -> dict[str, Any]:
    """Points (n, 2) scaled into their own extent, with one state character each."""
    if len(points) == 0:
        return {"extent": [0.0, 0.0, 1.0, 1.0], "x": b"", "y": b"", "state": states}
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.rint((points - low) / span * LEVELS).astype(np.uint8)
    return {
        "extent": [float(low[0]), float(low[1]), float(high[0]), float(high[1])],
        "x": scaled[:, 0].tobytes(),
        "y": scaled[:, 1].tobytes(),
        "state": states,
    }


def decode(data: Any) -> tuple[np.ndarray, str]:
    """Points (n, 2) and states of a map from any sender; ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"map is {type(data).__name__}, not a table")
    extent, xs, ys, states = (data.get(k) for k in ("extent", "x", "y", "state"))
    if not (isinstance(extent, list | tuple) and len(extent) == 4):
        raise ValueError("map extent is not [x0, y0, x1, y1]")
    try:
        bounds = np.array([float(v) for v in extent])
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"map extent {extent!r} is not four numbers") from None
    with np.errstate(over="ignore"):
        spans = bounds[2:] - bounds[:2]
    if not (np.isfinite(bounds).all() and np.isfinite(spans).all()):
        raise ValueError("map extent is not finite")
    if not (isinstance(xs, bytes) and isinstance(ys, bytes) and isinstance(states, str)):
        raise ValueError("map x and y are not bytes, or its states not text")
    if not len(xs) == len(ys) == len(states):
        raise ValueError(f"map has {len(xs)} x, {len(ys)} y and {len(states)} states")
    q = np.stack([np.frombuffer(xs, np.uint8), np.frombuffer(ys, np.uint8)], axis=1)
    low, high = bounds[:2], bounds[2:]
    return low + q / LEVELS * (high - low), states


def merge(maps: Sequence[Any]) -> dict[str, Any]:
    """Every shard's map in one extent (each scaled its positions to its own)."""
    parts = [decode(m) for m in maps]
    return encode(np.concatenate([p for p, _ in parts]), "".join(s for _, s in parts))
