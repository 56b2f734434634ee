"""What every sans-I/O gossip core shares: the `Send` it returns and the `Core` protocol.

A core never touches a socket, a clock or a task. The agent that wraps it calls
`on_tick(round, rng)` once per gossip period and `on_message(...)` for each arriving
message; both return the messages to send. Peers are agent indices; the agent turns them
into topics. That makes cores fast, deterministic and testable without an event loop.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeGuard

import numpy as np

__all__ = [
    "Core",
    "PreparingCore",
    "ProtocolViolation",
    "Send",
    "TimedCore",
    "is_timed",
    "prepares",
]


# (peer index, message kind, body). A plain tuple: cores build millions of them.
Send = tuple[int, str, Any]


class ProtocolViolation(ValueError):
    """A well-formed envelope whose body does not fit its kind (counted as malformed)."""


class Core(Protocol):
    """The interface an agent drives."""

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]: ...

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]: ...

    @property
    def active(self) -> bool:
        """Whether the core still has something to say (False lets a run end early)."""
        ...


class TimedCore(Core, Protocol):
    """A core whose work takes simulated time (a learner training on a device).

    Its sends wait `pending_delay` seconds; the agent that dispatches them resets it to 0.
    """

    pending_delay: float


class PreparingCore(Core, Protocol):
    """A core with local work to queue before any agent acts in a round (training).

    In a round where every agent acts at once, the agent calls `prepare` for all agents
    first and `on_tick` after, so the queued work can run as one batch.
    """

    def prepare(self, round: int, rng: np.random.Generator) -> None: ...


def prepares(core: Core) -> TypeGuard[PreparingCore]:
    """Whether the core queues local work before the round's acts (`PreparingCore`)."""
    return hasattr(core, "prepare")


def is_timed(core: Core) -> TypeGuard[TimedCore]:
    """Whether the core's work takes simulated time, so its sends must wait for it."""
    return hasattr(core, "pending_delay")
