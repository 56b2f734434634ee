"""The round scheduler: activates every participant once per gossip period.

Like Mesa's scheduler, one timer per round calls each participant in the order they
joined (the observer first, then the agents by index). Agents stay asyncio tasks for
their lifecycle and any free-form behaviour; their round action is a plain call, which
costs a small fraction of waking ten thousand tasks every round.

With an `Activation` other than lockstep, the participants that are agents act at their
own moments within the round instead (one timer each), after the others have acted at
the boundary: the observer still samples the fleet between rounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from swarm.activation import Activation

__all__ = ["RoundScheduler"]

RoundAction = Callable[[int], None]
Participant = tuple[RoundAction, RoundAction | None, bool]  # (act, prepare, is an agent)


HOLD_POLL = 0.002  # seconds between backlog checks while a round is held


class RoundScheduler:
    """Calls `action(round)` for each participant at `start + round * period`.

    On a real broker a round can be due before the last one's traffic has left: then
    `hold()` (when set) is true and the round waits, polling, instead of piling more
    messages onto queues the event loop has no time to drain. Rounds are delayed, never
    skipped; `held_rounds` and `held_seconds` say how much the fleet was slowed.
    `paused` holds every round the same way until it is cleared (a live control).
    """

    def __init__(
        self,
        period: float,
        hold: Callable[[], bool] | None = None,
        activation: Activation | None = None,
    ) -> None:
        self.period = period
        self.hold = hold
        # When agents act within a round; None (or sync) is lockstep at the boundary.
        self.activation = None if activation is None or activation.lockstep else activation
        self._acts: list[asyncio.TimerHandle] = []  # this round's agent acts still to come
        self.paused = False
        self.held_rounds = 0
        self.held_seconds = 0.0
        self._held_since: float | None = None
        self.start = 0.0
        self.round = -1
        self.stopped = False
        self._participants: dict[object, Participant] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._finished: asyncio.Future[int] | None = None

    def add(
        self,
        key: object,
        action: RoundAction,
        prepare: RoundAction | None = None,
        *,
        agent: bool = False,
    ) -> None:
        """Call `action(round)` every round; `prepare(round)` first, if given.

        In lockstep, participants that prepare and join one after another prepare
        together, all of them before the first acts: a learning fleet queues every
        agent's local training in its prepare and runs it as one batch (see
        `swarm.workloads.learn.pool`). An `agent` (its key is its index) acts when the
        activation says; without lockstep it acts alone, and prepares nothing.
        """
        if agent and not isinstance(key, int):
            raise TypeError(f"an agent joins under its index, not {key!r}")
        self._participants[key] = (action, prepare, agent)

    def remove(self, key: object) -> None:
        self._participants.pop(key, None)

    def __len__(self) -> int:
        return len(self._participants)

    def begin(self, start: float | None = None) -> None:
        """Schedule round 0 at `start` (default: now) on the running loop."""
        loop = self._loop = asyncio.get_running_loop()
        self.start = loop.time() if start is None else start
        self._finished = loop.create_future()
        self._timer = loop.call_at(self.start, self._fire, 0)

    def stop(self) -> None:
        """No participant acts after this call, not even later ones in the current round."""
        if self.stopped:
            return
        self.stopped = True
        if self._timer is not None:
            self._timer.cancel()
        for act in self._acts:
            act.cancel()
        self._acts = []
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(self.round)

    def _fail(self, exc: Exception) -> None:
        self.stopped = True
        if self._finished is not None and not self._finished.done():
            self._finished.set_exception(exc)

    async def finished(self) -> int:
        """Wait until the scheduler stops; returns the last round that began."""
        assert self._finished is not None, "begin() first"
        return await self._finished

    def _act(self, round: int, actions: list[RoundAction]) -> bool:
        """Call each of `actions`; False once the scheduler has stopped or failed."""
        for action in actions:
            if self.stopped:
                return False
            try:
                action(round)
            except Exception as exc:
                # Agents catch their own faults; anything else (the observer, a callback)
                # ends the run with this error rather than leaving it waiting forever.
                self._fail(exc)
                return False
        return not self.stopped

    def _fire(self, round: int) -> None:
        loop = self._loop
        assert loop is not None
        if self.paused:
            self._timer = loop.call_at(loop.time() + HOLD_POLL, self._fire, round)
            return
        if self.hold is not None:
            if self.hold():
                if self._held_since is None:
                    self._held_since = loop.time()
                    self.held_rounds += 1
                self._timer = loop.call_at(loop.time() + HOLD_POLL, self._fire, round)
                return
            if self._held_since is not None:
                self.held_seconds += loop.time() - self._held_since
                self._held_since = None
        self.round = round
        if self.activation is not None:
            self._fire_spread(loop, round, self.activation)
            return
        prepared: list[RoundAction] = []  # acts whose participants have prepared
        for action, prepare, _ in list(self._participants.values()):
            if prepare is None:
                if not self._act(round, prepared) or not self._act(round, [action]):
                    return
                prepared = []
            elif not self._act(round, [prepare]):
                return
            else:
                prepared.append(action)
        if not self._act(round, prepared):
            return
        self._timer = loop.call_at(self.start + (round + 1) * self.period, self._fire, round + 1)

    def _fire_spread(
        self, loop: asyncio.AbstractEventLoop, round: int, activation: Activation
    ) -> None:
        """A round whose agents act at their own moments: the others act now, then one
        timer per agent act; the next boundary comes a full period after this one."""
        agents: list[int] = []
        for key, (action, _, agent) in list(self._participants.items()):
            if agent and isinstance(key, int):  # agents join under their index
                agents.append(key)
            elif not self._act(round, [action]):
                return
        now = loop.time()
        self._acts = [
            loop.call_at(now + offset, self._act_one, key, round)
            for offset, key in activation.offsets(round, agents)
        ]
        # After a held or paused boundary, the round still gets its whole period.
        due = max(self.start + (round + 1) * self.period, now + self.period)
        self._timer = loop.call_at(due, self._fire, round + 1)

    def _act_one(self, key: int, round: int) -> None:
        participant = self._participants.get(key)
        if participant is not None:  # it may have left (stopped, crashed) since
            self._act(round, [participant[0]])
