"""Where a device's seconds go: kept work, wasted work, checkpoints, idle.

A synchronous job's work is only kept once it is safe: at a checkpoint, or (without
checkpoints) as soon as the ring finished the iteration. Until then it is pending, and a
rollback, an abandoned iteration or the device's death turns it into waste. Time is
credited at each change of activity, so the four figures add up to the device's time in
the job by construction, and the summary's goodput is kept work over that time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Checkpointing", "DeviceTime"]


@dataclass(frozen=True, slots=True)
class Checkpointing:
    """A job's checkpoint policy, in simulated seconds (`[checkpoint]`)."""

    interval: float  # between checkpoints, counted from the last one
    cost: float  # a checkpoint: the job makes no progress meanwhile
    restore: float  # loading the last checkpoint after a rollback


class DeviceCheckpoints:
    """Each device's own checkpoint: gossip, FedAvg and async learners save their model
    every `interval` simulated seconds, and a device back from a failure resumes from
    its last one (losing only what it learned since) instead of from scratch.

    The store outlives the cores, as a disk outlives a crash. Writing one takes `cost`
    seconds and reading it back `restore`, during which the device's sends wait, at its
    compute power.
    """

    __slots__ = ("policy", "restored", "saved", "seconds", "store")

    def __init__(self, policy: Checkpointing) -> None:
        self.policy = policy
        self.store: dict[int, tuple[float, np.ndarray]] = {}  # index -> (when, params)
        self.saved = 0
        self.restored = 0
        self.seconds = 0.0  # writing and reading, over every device

    def due(self, index: int, now: float) -> bool:
        last = self.store.get(index)
        return now - (last[0] if last is not None else 0.0) >= self.policy.interval

    def save(self, index: int, now: float, params: np.ndarray) -> float:
        """Keep a copy; the seconds it takes."""
        self.store[index] = (now, params.copy())
        self.saved += 1
        self.seconds += self.policy.cost
        return self.policy.cost

    def load(self, index: int) -> np.ndarray | None:
        """The last saved model (a copy), or None when the device never saved one."""
        entry = self.store.get(index)
        if entry is None:
            return None
        self.restored += 1
        self.seconds += self.policy.restore
        return entry[1].copy()


WORK, CHECKPOINT, IDLE = "work", "checkpoint", "idle"


class DeviceTime:
    """One device's time in a job, split by what it was spent on."""

    __slots__ = (
        "_iteration",
        "_label",
        "_mark",
        "checkpoint_s",
        "idle_s",
        "pending_s",
        "useful_s",
        "wasted_s",
    )

    def __init__(self) -> None:
        self.useful_s = 0.0  # work the job kept
        self.wasted_s = 0.0  # work given up or rolled back
        self.checkpoint_s = 0.0  # writing and restoring checkpoints
        self.idle_s = 0.0  # waiting: re-forming a ring, for a model, for the next round
        self.pending_s = 0.0  # work not yet safe (since the last commit)
        self._iteration = 0.0  # ... of which the iteration in progress
        self._label = IDLE
        self._mark: float | None = None

    @property
    def started(self) -> bool:
        return self._mark is not None

    @property
    def spent(self) -> float:
        """Seconds credited so far (pending work included)."""
        return self.useful_s + self.wasted_s + self.checkpoint_s + self.idle_s + self.pending_s

    @property
    def activity(self) -> str:
        return self._label

    def start(self, at: float) -> None:
        """The device joined the job at `at` (once; later calls do nothing)."""
        if self._mark is None:
            self._mark = at

    def to(self, label: str, now: float) -> None:
        """Credit the time since the last change to the current activity; then `label`."""
        self._credit(now)
        self._label = label

    def _credit(self, now: float) -> None:
        if self._mark is None:
            self._mark = now
        spent = max(0.0, now - self._mark)
        self._mark = max(self._mark, now)
        if self._label == WORK:
            self.pending_s += spent
            self._iteration += spent
        elif self._label == CHECKPOINT:
            self.checkpoint_s += spent
        else:
            self.idle_s += spent

    def begin_iteration(self, now: float) -> None:
        self.to(WORK, now)
        self._iteration = 0.0

    def abandon(self, now: float) -> None:
        """The iteration in progress is given up: its work is wasted, the rest stays pending."""
        self.to(IDLE, now)
        self.wasted_s += self._iteration
        self.pending_s -= self._iteration
        self._iteration = 0.0

    def commit(self) -> None:
        """Everything pending is safe (a checkpoint, or a ring that keeps its model)."""
        self.useful_s += self.pending_s
        self.pending_s = self._iteration = 0.0

    def lose(self) -> None:
        """Everything pending is lost (a rollback to the last checkpoint)."""
        self.wasted_s += self.pending_s
        self.pending_s = self._iteration = 0.0

    def closed(self, at: float, *, kept: bool) -> dict[str, float]:
        """The four figures had the device left at `at`, its pending work `kept` (the run
        ended with it alive) or lost (it died); the account itself is left as it is."""
        if self._mark is None:
            return {"useful_s": 0.0, "wasted_s": 0.0, "checkpoint_s": 0.0, "idle_s": 0.0}
        tail = max(0.0, at - self._mark)
        useful, wasted, checkpoint, idle = (
            self.useful_s,
            self.wasted_s,
            self.checkpoint_s,
            self.idle_s,
        )
        pending = self.pending_s + (tail if self._label == WORK else 0.0)
        if self._label == CHECKPOINT:
            checkpoint += tail
        elif self._label == IDLE:
            idle += tail
        if kept:
            useful += pending
        else:
            wasted += pending
        return {"useful_s": useful, "wasted_s": wasted, "checkpoint_s": checkpoint, "idle_s": idle}


def boundary_after(t: float, period: float) -> float:
    """The first round boundary after `t`: where a device that last acted at `t` left."""
    return (math.floor(t / period + 1e-9) + 1) * period
