"""Ring all-reduce of the local updates (data-parallel training), with checkpoints and
rollback: the synchronous job of the learning strategies.

A member that loses a peer gives the iteration up, beats to the job and re-forms the ring
with the members it hears (see `AllReduceCore._settle`). What the new ring starts from is
a function of what every member's beat said, so all of them agree without a leader:

- a member of the last running ring is missing and `[checkpoint]` is set: the job rolls
  back to its newest checkpoint, as data-parallel training does (the work since is
  wasted; loading it costs `restore`);
- otherwise (no checkpoints, or only newcomers): the ring keeps the most advanced model.

Members without that model (a repaired one comes back fresh; one that gave an iteration
up that others finished) receive it from the lowest member that has it (kind `state`),
so every member of a ring holds the same parameters at each iteration boundary.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from swarm.protocols.gossip.core import ProtocolViolation, Send
from swarm.workloads.learn.accounting import CHECKPOINT, IDLE, Checkpointing, DeviceTime
from swarm.workloads.learn.compression import (
    Compressor,
    UpdateRejected,
    array_bytes,
    check_update,
    decompress,
)
from swarm.workloads.learn.strategies import MAX_VALUE, STALL_LIMIT, LearningCore, _round_of

__all__ = ["AllReduceCore", "Report"]

Stamp = tuple[int, int]  # (epoch, iteration): a model state of one trajectory


@dataclass(frozen=True, slots=True)
class Report:
    """What a member's beat says of it: where its model is, and its last checkpoint."""

    applied: Stamp  # the state of its model
    ring: tuple[int, ...]  # the ring it ran on
    saved: Stamp | None  # its newest checkpoint (None: the job takes none)
    fresh: bool = False  # back from a repair, without the ring's model yet
    digest: int = 0  # CRC-32 of its parameters: equal stamps, different models tell apart
    saved_digest: int = 0  # ... of its newest checkpoint's
    generation: int = 0  # re-forms its ring has been through

    @classmethod
    def parse(cls, body: Any, universe: list[int]) -> Report:
        """A beat's body, checked whole before anything uses it."""
        applied, ring, saved = body.get("applied"), body.get("ring"), body.get("ckpt")
        if not _stamp(applied):
            raise ProtocolViolation("a beat's 'applied' is [epoch >= 0, iteration >= -1]")
        if not _members(ring, universe):
            raise ProtocolViolation("a beat's 'ring' is a sorted list of the job's members")
        if saved is not None and not _stamp(saved):
            raise ProtocolViolation("a beat's 'ckpt' is [epoch >= 0, iteration >= -1]")
        fresh = body.get("fresh", False)
        if type(fresh) is not bool:
            raise ProtocolViolation("a beat's 'fresh' is a bool")
        digest, saved_digest, generation = (
            body.get(k, 0) for k in ("digest", "ckpt_digest", "gen")
        )
        if not all(type(v) is int and 0 <= v < 2**32 for v in (digest, saved_digest)):
            raise ProtocolViolation("a beat's digests are CRC-32 values")
        if type(generation) is not int or not 0 <= generation < 2**62:
            raise ProtocolViolation("a beat's 'gen' is an int >= 0")
        return cls(
            (applied[0], applied[1]),
            tuple(ring),
            None if saved is None else (saved[0], saved[1]),
            fresh,
            digest,
            saved_digest,
            generation,
        )


def _ring_id(ring: list[int], epoch: int, generation: int, universe: list[int]) -> int | None:
    """What a ring's chunks carry: None for the ring the job started with (no byte spent),
    else a CRC-32 of its members, trajectory and re-form: a chunk of an attempt given up
    never mixes into the next."""
    if ring == universe and epoch == 0 and generation == 0:
        return None
    return zlib.crc32(repr((ring, epoch, generation)).encode())


def _same(value: Any, expected: int | None) -> bool:
    """`value` (from a peer: any type, a numpy array too) is exactly `expected`."""
    return type(value) is type(expected) and value == expected


def _digest(params: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(params).tobytes())


def _members(ring: Any, universe: list[int]) -> TypeGuard[list[int]]:
    """Whether `ring` is a sorted, non-empty list of distinct members of the job."""
    members = set(universe)
    return (
        type(ring) is list
        and 0 < len(ring) <= len(universe)
        and all(type(m) is int and m in members for m in ring)
        and sorted(set(ring)) == ring
    )


def _stamp(value: Any) -> bool:
    return (
        type(value) is list
        and len(value) == 2
        and all(type(v) is int for v in value)
        and value[0] >= 0
        and value[1] >= -1
    )


class AllReduceCore(LearningCore):
    """Ring all-reduce (Patarasuk & Yuan 2009) of the local updates, then a mean step.

    The update (new minus old parameters) is padded to a multiple of the ring size N and
    cut into N chunks; N-1 reduce-scatter steps and N-1 all-gather steps each send one
    chunk to the next agent in the ring, so each agent sends exactly 2(N-1)/N of the
    padded model per iteration. Steps are driven by arrivals; early ones wait in a buffer.
    An agent starts its next iteration at the first tick after finishing the last one.

    `now` (simulated seconds) times each completed iteration: its local training, then the
    ring, whose part is what the alpha-beta law predicts.

    With `checkpoint`, the ring's first member marks the first iteration it starts once
    `interval` has passed since the last checkpoint; the mark travels with the chunks, and
    every member saves its model when that iteration completes, then pauses `cost`.
    """

    def __init__(
        self,
        *args: Any,
        ring: list[int],
        now: Callable[[], float] | None = None,
        checkpoint: Checkpointing | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.now = now
        self._tick_time = 0.0  # the clock without `now`: the last tick's round start
        self.iteration_s = 0.0  # seconds of the completed iterations, training included
        self.ring_s = 0.0  # ... of which the exchange: the time spent waiting on the ring
        self._started = (0.0, 0.0)  # (time, compute_s) when the iteration began
        self.universe = sorted(ring)  # every member the job started with
        self.epoch = 0  # the trajectory: one more at each rollback
        self.generation = 0  # re-forms so far: part of the ring id
        self.stamp: Stamp = (0, -1)  # the state of this member's model (-1: the initial one)
        self._form(list(ring))
        # Re-forming (see `_recover`): ticks spent, members heard from, the set last tick,
        # and what each member's last beat said.
        self.recovering = 0
        self._heard: set[int] = set()
        self._heard_before: set[int] | None = None
        self._reports: dict[int, Report] = {}
        self._settled_on: dict[int, Report] = {}  # the reports the last settle used
        self.reformed = 0  # times this member took a new ring
        self.misrouted = 0  # chunks of another ring (a member still on the old one): dropped
        self.iteration = -1  # the iteration in progress (or last finished)
        self.done = True
        self._before = np.zeros(self.size)
        self._acc = np.zeros((self.n, self.chunk))
        self._next_step = 0
        self._early: dict[tuple[int, int], tuple[Any, bool]] = {}
        self.iterations_done = 0
        self.completed_bytes = 0  # update_bytes when the last iteration finished
        self.stalled_ticks = 0
        self._stalled = 0  # ticks the current iteration (or wait for a model) has waited
        self.abandoned = 0  # iterations given up after STALL_LIMIT ticks
        # Checkpoints: the policy, the newest one (its stamp and the parameters), when it
        # was taken, whether the iteration in progress ends in one, and a pause's end.
        self.checkpointing = checkpoint
        self._saved: tuple[Stamp, np.ndarray] | None = None
        if checkpoint is not None:  # the start is the first checkpoint: all begin equal
            self._saved = ((0, -1), self.learner.get_params())
        self._saved_at = 0.0
        self._mark = False
        self._due = False  # the marked iteration finished: save at the next tick
        self._paused_until = 0.0
        self._state_from: int | None = None  # the member whose model we wait for
        self.checkpoints = 0
        self.rollbacks = 0
        self.transfers = 0  # models received after a re-form
        self.time = DeviceTime()
        self.rejoining = False  # a repaired device: its first tick beats to the job
        self.fresh = False  # ... and it says so until it holds the ring's model
        self._prepared: list[Send] | None = None  # the sends `prepare` decided on
        self._training = False  # an iteration began: its exchange waits for the training
        self.last_tick = 0.0

    def clock(self) -> float:
        return self.now() if self.now is not None else self._tick_time

    def _form(self, ring: list[int]) -> None:
        """Take `ring` (this member included) for the iterations to come."""
        self.ring = ring
        self.n = len(ring)
        self.position = ring.index(self.index)
        self.successor = ring[(self.position + 1) % self.n]
        self.predecessor = ring[(self.position - 1) % self.n]
        self.chunk = -(-self.size // self.n)  # ceil
        self.padded = self.chunk * self.n
        self.model_bytes = 4 * self.padded  # float32 "none" encoding
        self._compressors = [
            Compressor(self.compression, self.chunk, self.topk_ratio) for _ in range(self.n)
        ]
        # Chunks name their ring once it is not the one the job started with, so a member
        # still on an old ring is told apart (the first ring costs no byte).
        self._ring_id = _ring_id(ring, self.epoch, self.generation, self.universe)

    # -- re-forming ------------------------------------------------------------------------
    def _report(self) -> Report:
        saved = self._saved[0] if self._saved is not None else None
        saved_digest = _digest(self._saved[1]) if self._saved is not None else 0
        digest = _digest(self.learner.get_params())
        return Report(
            self.stamp, tuple(self.ring), saved, self.fresh, digest, saved_digest, self.generation
        )

    def _beats(self) -> list[Send]:
        me = self._report()
        body: dict[str, Any] = {
            "round": self.iteration,
            "applied": list(me.applied),
            "ring": list(me.ring),
        }
        if me.saved is not None:
            body["ckpt"] = list(me.saved)
        if me.fresh:
            body["fresh"] = True
        body |= {"digest": me.digest, "gen": me.generation}
        if me.saved is not None:
            body["ckpt_digest"] = me.saved_digest
        return [(m, "beat", body) for m in self.universe if m != self.index]

    def _recover(self) -> list[Send]:
        """Re-forming the ring: beat to every member of the job, and take the members heard
        from as the new ring once the set held still for a tick (dead members are never
        heard). Live members all hear each other, so they settle on the same ring; one
        that settles on another finds its chunks refused, stalls, and re-forms again."""
        self.recovering += 1
        heard = self._heard | {self.index}
        if self.recovering < 2 or heard != self._heard_before:
            self._heard_before = heard
            return self._beats()
        self.recovering, self._heard, self._heard_before = 0, set(), None
        return self._settle(sorted(heard))

    def _settle(self, ring: list[int]) -> list[Send]:
        """Start the new ring from the state every member's beat lets all of them agree on
        (see the module's docstring); send it to the members that lack it."""
        reports = {m: self._reports[m] for m in ring if m != self.index}
        reports[self.index] = self._report()
        self._settled_on = reports
        running = max(ring, key=lambda m: (reports[m].applied, -m))
        # A member of the running ring is gone, or died and is back already (fresh): either
        # way it failed since the ring formed.
        before = reports[running].ring
        lost = not set(before) <= set(ring) or any(reports[m].fresh for m in before if m in reports)
        rollback = lost and self.checkpointing is not None
        # Holders hold the very model chosen (equal stamps can hide different models, e.g.
        # two halves of a partition that advanced apart): the same stamp and digest.
        if rollback:
            target = max(r.saved or (0, -1) for r in reports.values())
            chosen = min(m for m in ring if reports[m].saved == target)
            digest = reports[chosen].saved_digest
            holders = [
                m for m in ring if reports[m].saved == target and reports[m].saved_digest == digest
            ]
            epoch = max(r.applied[0] for r in reports.values()) + 1
        else:
            target, digest = reports[running].applied, reports[running].digest
            holders = [
                m for m in ring if reports[m].applied == target and reports[m].digest == digest
            ]
            epoch = target[0]
        generation = max(r.generation for r in reports.values()) + 1
        now = self.clock()
        mine = reports[self.index]
        if rollback:
            self.rollbacks += 1
            self.time.lose()  # the work since the checkpoint is lost, here as everywhere
        self._adopt(ring, epoch, generation, target[1])
        self.reformed += ring != list(mine.ring)
        self._stalled = 0
        self._paused_until = 0.0
        if self.index not in holders:
            self._state_from = holders[0]
            return []
        self._state_from = None
        self.fresh = False
        self.stamp = (epoch, target[1])
        if rollback:
            assert self._saved is not None
            self.learner.set_params(self._saved[1])
            self._saved_at = now
            assert self.checkpointing is not None
            self._pause(now, self.checkpointing.restore)
        if self.index != holders[0]:
            return []
        # Full precision, as a checkpoint is: the receivers must hold our very parameters.
        params = self.learner.get_params()
        body: dict[str, Any] = {
            "round": self.iteration,
            "epoch": epoch,
            "gen": self.generation,
            "params": params,
            "members": ring,
        }
        if self._ring_id is not None:
            body["ring"] = self._ring_id
        if rollback:
            body["ckpt"] = list(target)
            body["resume"] = self._paused_until  # receivers restore until then, as we do
        lacking = [m for m in ring if m not in holders]
        for _ in lacking:
            self.update_bytes += params.nbytes
            self.updates_sent += 1
            if self.meter is not None:
                self.meter.send(params.nbytes)
        return [(m, "state", body) for m in lacking]

    def _adopt(self, ring: list[int], epoch: int, generation: int, iteration: int) -> None:
        """Take a settled ring: its members, trajectory, re-form and last iteration (the
        same members may start a new trajectory: the ring id changes with it)."""
        self.epoch, self.generation, self.iteration = epoch, generation, iteration
        self.done, self._early = True, {}
        self._form(ring)

    def _take_state(self, src: int, body: Any) -> None:
        """The ring's model, from the member the re-form named; or, while we are still
        re-forming (we settle a tick after the others), from a ring that names us."""
        expected = (
            src == self._state_from
            and _same(body.get("ring"), self._ring_id)
            and _same(body.get("round"), self.iteration)
            and _same(body.get("epoch"), self.epoch)
            and _same(body.get("gen"), self.generation)
        )
        if not expected and not self._joins(src, body):
            self.misrouted += 1  # an old or foreign ring's model: ours will come, or stall
            return
        try:
            model = check_update(body.get("params"), self.size)
        except UpdateRejected:
            self.rejected += 1
            return  # we stall and re-form
        if np.abs(model).max(initial=0.0) > MAX_VALUE:
            self.rejected += 1
            return
        if self.meter is not None:
            self.meter.receive(model.nbytes)
        if not expected:  # take the ring that named us
            self.recovering, self._heard, self._heard_before, self._settled_on = 0, set(), None, {}
            self._adopt(list(body["members"]), body["epoch"], body["gen"], body["round"])
        self.learner.set_params(model)
        self.stamp = (self.epoch, self.iteration)
        self._state_from = None
        self.fresh = False
        self.transfers += 1
        saved = body.get("ckpt")
        if self.checkpointing is not None and _stamp(saved):
            now = self.clock()
            self._saved = ((saved[0], saved[1]), self.learner.get_params())
            self._saved_at = now
            resume = body.get("resume")
            if type(resume) is float and now < resume <= now + self.checkpointing.restore:
                self._pause(now, resume - now)  # restore with the ring, start with it

    def _joins(self, src: int, body: dict[str, Any]) -> bool:
        """Whether a model from `src` comes from a ring that settled with us in it while we
        were still re-forming or waiting for another (we settled a tick late)."""
        if not (self.recovering or self._state_from is not None):
            return False
        members, epoch, iteration = body.get("members"), body.get("epoch"), body.get("round")
        generation = body.get("gen")
        return (
            _members(members, self.universe)
            and self.index in members
            and src in members
            and type(epoch) is int
            and epoch >= self.epoch
            and type(generation) is int
            and generation >= 0
            and type(iteration) is int
            and iteration >= -1
            and _same(body.get("ring"), _ring_id(members, epoch, generation, self.universe))
        )

    def _enter_recovery(self) -> list[Send]:
        if not self.done:
            self.abandoned += 1
            self._finish(apply=False)
        self.time.to(IDLE, self.clock())
        self._state_from = None
        self._paused_until = 0.0
        self._due = False
        self._settled_on = {}
        self.recovering = 1
        self._heard, self._heard_before = set(), None
        return self._beats()

    def _pause(self, now: float, seconds: float) -> None:
        """Write or read a checkpoint: no progress for `seconds`."""
        self.time.to(CHECKPOINT, now)
        self._paused_until = now + seconds

    # -- the ring --------------------------------------------------------------------------
    def prepare(self, round: int, rng: np.random.Generator) -> None:
        """The round's decisions, with an iteration's local training queued in the pool, so
        that the whole ring's training runs as one batch before the first member sends."""
        self._prepared = self._act(round, rng)

    def on_tick(self, round: int, rng: np.random.Generator) -> list[Send]:
        prepared, self._prepared = self._prepared, None
        sends = prepared if prepared is not None else self._act(round, rng)
        if not self._training:
            return sends
        self._training = False
        if self.pool is not None:
            self.pool.flush()
        return sends + self._exchange(rng)

    def _act(self, round: int, rng: np.random.Generator) -> list[Send]:
        """What the tick does before the exchange: give up, re-form, checkpoint or begin."""
        self.idle_round()
        self._tick_time = round * self.period
        now = self.clock()
        if self.depleted:
            return []  # a device that ran flat is gone (its time ended); the others re-form
        self.time.start(round * self.period)
        self.last_tick = now
        if self.rejoining:  # back from a repair: announce ourselves rather than stall
            self.rejoining = False
            return self._enter_recovery()
        if self.recovering:
            # Settled or not, no iteration this tick: members settle up to a tick apart,
            # and one that began at once would send chunks to members still re-forming,
            # which drop them. A tick later they have settled and buffer them.
            return self._recover()
        elif self._state_from is not None or not self.done:
            self.stalled_ticks += 1  # the ring has not finished the last iteration
            if self._state_from is None and now < self._own_training_end():
                return []  # still training ourselves: nobody's chunks can be late yet
            self._stalled += 1
            if self._stalled < STALL_LIMIT:
                return []
            # A chunk (or the ring's model) never came (a member died, a message was lost,
            # a bad payload): give the iteration up and find out who is still there.
            self._stalled = 0
            return self._enter_recovery()
        elif self._due:
            self._checkpoint(now)
            return []
        elif now < self._paused_until:
            return []  # checkpointing
        if self.time.activity == CHECKPOINT:  # the pause ended before this tick
            self.time.to(IDLE, self._paused_until)
        self._begin(now, rng)
        return []

    def _own_training_end(self) -> float:
        """When this member's training for the current iteration ends (simulated s): a
        slow or throttled member's iteration may span several ticks before its chunks go."""
        started, compute_before = self._started
        return started + (self.compute_s - compute_before)

    def _begin(self, now: float, rng: np.random.Generator) -> None:
        """Start the next iteration: train (queued in the pool until `_exchange`)."""
        self._stalled = 0
        if self.checkpointing is None:
            self.time.commit()  # the ring keeps every finished iteration
        self.time.begin_iteration(now)
        self.iteration += 1
        self.done = False
        policy = self.checkpointing
        self._mark = (
            policy is not None and self.position == 0 and now - self._saved_at >= policy.interval
        )
        self._before = self.learner.get_params()
        self._started = (now, self.compute_s)
        self.train(rng, defer=True)
        self._training = True

    def _exchange(self, rng: np.random.Generator) -> list[Send]:
        """The iteration's trained update into chunks; send our first one."""
        delta = self.learner.get_params() - self._before
        flat = np.zeros(self.padded)
        flat[: self.size] = delta
        self._acc = flat.reshape(self.n, self.chunk)
        self._next_step = 0
        if self.n == 1:  # a ring of one: nothing to exchange
            self._finish(apply=True)
            return []
        sends = self._send_step(0)
        sends += self._drain_early(rng)
        return sends

    def _chunk_for(self, step: int) -> int:
        """Index of the chunk this agent sends at `step` (2(N-1) steps per iteration)."""
        n, p = self.n, self.position
        if step < n - 1:
            return (p - step) % n  # reduce-scatter
        return (p + 1 - (step - (n - 1))) % n  # all-gather

    def _send_step(self, step: int, payload: Any = None) -> list[Send]:
        if step >= 2 * (self.n - 1):
            return []
        index = self._chunk_for(step)
        if payload is None:
            payload = self.pack(self._compressors[index], self._acc[index])
            if step == self.n - 1:  # our fully reduced chunk: keep what everyone will get
                self._acc[index] = decompress(payload, self.chunk)
        else:
            self.update_bytes += array_bytes(payload)  # forwarded as received
            self.updates_sent += 1
        body = {"round": self.iteration, "step": step, "chunk": payload}
        if self._ring_id is not None:
            body["ring"] = self._ring_id
        if self._mark:
            body["ckpt"] = 1  # this iteration ends in a checkpoint
        return [(self.successor, "chunk", body)]

    def on_message(
        self, round: int, src: int, kind: str, body: Any, rng: np.random.Generator
    ) -> list[Send]:
        if self.depleted:
            return []  # a flat device neither relays nor answers
        if kind == "beat":
            if src not in self.universe or not isinstance(body, dict):
                raise ProtocolViolation("a beat from an agent that is not in the job")
            report = Report.parse(body, self.universe)
            self._reports[src] = report
            self._heard.add(src)
            if self.recovering:
                return []
            if self._settled_on.get(src) == report:
                # A member of our new ring that has not settled yet says what it said when
                # we settled: it will take the same ring (or stall, and so shall we). A
                # member that stalled since, or one outside the ring, makes us re-form.
                return []
            return self._enter_recovery()
        if kind == "state":
            if not isinstance(body, dict):
                raise ProtocolViolation("a state message is a map")
            self._take_state(src, body)
            return []
        if kind != "chunk":
            raise ProtocolViolation(f"all-reduce does not accept {kind!r}")
        iteration = _round_of(body)
        step = body.get("step")
        if not _same(body.get("ring"), self._ring_id) or self.recovering:
            self.misrouted += 1  # another ring's chunk: ours will stall and re-form
            return []
        if type(step) is not int or not 0 <= step < 2 * (self.n - 1):
            raise ProtocolViolation("chunk step out of range")
        if src != self.predecessor:
            raise ProtocolViolation("chunk from an agent that is not our ring predecessor")
        if iteration < self.iteration or (iteration == self.iteration and step < self._next_step):
            return []  # a duplicate or a past iteration
        if len(self._early) >= 4 * self.n:
            self.rejected += 1
            return []
        mark = body.get("ckpt")
        self._early[(iteration, step)] = (body.get("chunk"), type(mark) is int and mark == 1)
        return self._drain_early(rng)

    def _drain_early(self, rng: np.random.Generator) -> list[Send]:
        sends: list[Send] = []
        while (
            not self.done
            and self._state_from is None
            and (self.iteration, self._next_step) in self._early
        ):
            payload, mark = self._early.pop((self.iteration, self._next_step))
            self._mark = self._mark or mark
            sends += self._receive(self._next_step, payload)
        return sends

    def _receive(self, step: int, payload: Any) -> list[Send]:
        n = self.n
        chunk = self.unpack(payload, self.chunk)
        if chunk is None:
            # A bad chunk breaks this iteration for the ring: keep our model, move on.
            self._finish(apply=False)
            return []
        self._next_step = step + 1
        if step < n - 1:  # reduce-scatter: add the predecessor's partial sum
            index = (self.position - 1 - step) % n
            self._acc[index] += chunk
            return self._send_step(step + 1)
        index = (self.position - (step - (n - 1))) % n  # all-gather: take the final chunk
        self._acc[index] = chunk
        sends = self._send_step(step + 1, payload) if step + 1 < 2 * (n - 1) else []
        if step == 2 * (n - 1) - 1:
            self._finish(apply=True)
        return sends

    def _finish(self, *, apply: bool) -> None:
        now = self.clock()
        if apply:
            mean = self._acc.reshape(-1)[: self.size] / self.n
            self.learner.set_params(check_update(self._before + mean, self.size))
            self.iterations_done += 1
            self.stamp = (self.epoch, self.iteration)
            self.completed_bytes = self.update_bytes
            began, compute_before = self._started
            spent = now - began
            self.iteration_s += spent
            self.ring_s += spent - (self.compute_s - compute_before)
            self._due = self._mark and self.checkpointing is not None
        else:
            self.learner.set_params(self._before)
            self.time.abandon(now)
        self._mark = False
        self.done = True
        self._early = {k: v for k, v in self._early.items() if k[0] > self.iteration}

    def _checkpoint(self, now: float) -> None:
        """Save the model the whole ring holds after the marked iteration, at the tick after
        it (so a checkpoint costs its `cost` rounded up to whole rounds); the work so far
        is safe."""
        assert self.checkpointing is not None
        self._due = False
        self._saved = ((self.epoch, self.iteration), self.learner.get_params())
        self._saved_at = now
        self.checkpoints += 1
        self._pause(now, self.checkpointing.cost)
        self.time.commit()

    def account(self, end: float, *, alive: bool) -> dict[str, float]:
        """Where this device's time went, closed at `end` (its death, or the run's end)."""
        return self.time.closed(end, kept=alive)
