"""The ring all-reduce under failures: checkpoints, rollback to the newest one, a repaired
member taking the ring's model, and device time that adds up."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_strategies import make_cores, over_wire

from swarm.protocols.gossip.core import ProtocolViolation
from swarm.workloads.learn.accounting import Checkpointing, DeviceTime
from swarm.workloads.learn.allreduce import AllReduceCore, Report


class Job:
    """A ring driven in lockstep: tick every live member, deliver until quiet. Messages
    to a dead member are lost; `clock` is the simulated second (one per round)."""

    def __init__(self, n: int, checkpoint: Checkpointing | None) -> None:
        self.clock = 0.0
        self.policy = checkpoint
        self.cores: list[AllReduceCore] = make_cores(
            AllReduceCore, n, ring=list(range(n)), now=lambda: self.clock, checkpoint=checkpoint
        )
        same = self.cores[0].learner.get_params()
        for core in self.cores:  # data-parallel replicas start from one model
            core.learner.set_params(same)
            if core._saved is not None:
                core._saved = ((0, -1), same.copy())
        self.dead: set[int] = set()
        self.started = dict.fromkeys(range(n), 0.0)  # when each member's account began
        self.rngs = [np.random.default_rng(7 + i) for i in range(n)]

    groups: dict[int, int] | None = None  # a partition: messages cross no group border

    def round(self, r: int) -> None:
        self.clock = float(r)
        pending: list[tuple[int, int, str, Any]] = []
        for core in self.cores:
            if core.index not in self.dead:
                for peer, kind, body in core.on_tick(r, self.rngs[core.index]):
                    pending.append((core.index, peer, kind, over_wire(kind, body)))
        while pending:
            src, dst, kind, body = pending.pop(0)
            if dst in self.dead or (self.groups and self.groups[src] != self.groups[dst]):
                continue
            core = self.cores[dst]
            for peer, k, b in core.on_message(r, src, kind, body, self.rngs[dst]):
                pending.append((dst, peer, k, over_wire(k, b)))

    def run(self, first: int, last: int) -> None:
        for r in range(first, last):
            self.round(r)

    def repair(self, index: int, r: int) -> None:
        """Back fresh, as `Learning.respawn` brings it: its initial model, no checkpoint."""
        (fresh,) = [
            c
            for c in make_cores(
                AllReduceCore,
                len(self.cores),
                ring=list(range(len(self.cores))),
                now=lambda: self.clock,
                checkpoint=self.policy,
            )
            if c.index == index
        ]
        fresh.time.start(float(r))
        fresh.rejoining = fresh.fresh = True
        self.started[index] = float(r)
        self.cores[index] = fresh
        self.dead.discard(index)

    def live(self) -> list[AllReduceCore]:
        return [c for c in self.cores if c.index not in self.dead]


def same_model(cores: list[AllReduceCore]) -> bool:
    first = cores[0].learner.get_params()
    return all(np.array_equal(c.learner.get_params(), first) for c in cores)


POLICY = Checkpointing(interval=4.0, cost=1.0, restore=1.0)


def test_checkpoints_are_taken_together_and_cost_their_time() -> None:
    job = Job(4, POLICY)
    job.run(0, 20)
    counts = {c.checkpoints for c in job.cores}
    assert len(counts) == 1 and counts.pop() >= 3
    stamps = {c._saved[0] for c in job.cores if c._saved is not None}
    assert len(stamps) == 1  # every member saved the same iteration
    assert same_model(job.cores)
    for core in job.cores:
        account = core.account(20.0, alive=True)
        assert account["checkpoint_s"] == pytest.approx(core.checkpoints * POLICY.cost)
        assert sum(account.values()) == pytest.approx(20.0)
        assert account["wasted_s"] == 0.0


def test_a_lost_member_rolls_the_ring_back_to_the_newest_checkpoint() -> None:
    job = Job(4, POLICY)
    job.run(0, 14)
    saved = job.cores[0]._saved
    assert saved is not None and saved[0][1] >= 0
    job.dead.add(2)
    job.run(14, 15)  # the iteration in flight stalls on the dead member...
    done_before = job.cores[0].iterations_done
    job.run(15, 22)  # ... the others give it up, re-form and roll back
    live = job.live()
    assert all(c.ring == [0, 1, 3] and c.rollbacks == 1 and c.epoch == 1 for c in live)
    job.run(22, 40)
    assert all(c.iterations_done > done_before for c in live)
    assert same_model(live)
    for core in live:
        account = core.account(40.0, alive=True)
        assert account["wasted_s"] > 0  # the work since the checkpoint, and the stall
        assert sum(account.values()) == pytest.approx(40.0)


def test_after_a_rollback_the_survivors_hold_the_checkpoint() -> None:
    """One checkpoint, after the iteration started at 100 s; a death at 110 s brings every
    survivor back to exactly that model."""
    job = Job(3, Checkpointing(interval=100.0, cost=1.0, restore=1.0))
    job.run(0, 106)
    (stamp,) = {c._saved[0] for c in job.cores if c._saved is not None}
    assert stamp[1] >= 0  # taken during the run, not the start
    kept = job.cores[0]._saved[1].copy()  # type: ignore[index]
    job.dead.add(1)
    settled = None
    for r in range(106, 120):
        job.round(r)
        if job.cores[0].rollbacks and settled is None:
            settled = r
            # Right after the settle, before another iteration: the checkpoint's model.
            assert all(np.array_equal(c.learner.get_params(), kept) for c in job.live())
    assert settled is not None
    assert all(c.rollbacks == 1 and c.iteration >= stamp[1] for c in job.live())


def test_a_repaired_member_takes_the_rings_model_without_a_rollback() -> None:
    job = Job(4, POLICY)
    job.run(0, 10)
    job.dead.add(3)
    job.run(10, 20)
    epoch = job.cores[0].epoch
    job.repair(3, 20)
    job.run(20, 32)
    assert all(c.ring == [0, 1, 2, 3] for c in job.cores)
    assert job.cores[3].transfers == 1
    assert all(c.epoch == epoch for c in job.cores)  # coming back costs no rollback
    assert same_model(job.cores)
    assert job.cores[3].iterations_done > 0


def test_without_checkpoints_the_survivors_keep_their_model() -> None:
    job = Job(4, None)
    job.run(0, 10)
    job.dead.add(0)
    job.run(10, 30)
    live = job.live()
    assert all(c.epoch == 0 and c.rollbacks == 0 and c.ring == [1, 2, 3] for c in live)
    assert all(c.iterations_done >= 20 for c in live)
    assert same_model(live)


@settings(max_examples=25)
@given(
    n=st.integers(2, 5),
    deaths=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 30)), max_size=4),
    repairs=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 40)), max_size=3),
    checkpoint=st.booleans(),
)
def test_any_deaths_and_repairs_leave_one_ring_and_time_that_adds_up(
    n: int, deaths: list[tuple[int, int]], repairs: list[tuple[int, int]], checkpoint: bool
) -> None:
    """Whoever dies or comes back, whenever: the members alive for long enough end on one
    ring of exactly themselves, with one model, and each one's time adds up."""
    job = Job(n, POLICY if checkpoint else None)
    killed = {r: i % n for i, r in deaths}
    back = {r: i % n for i, r in repairs}
    for r in range(60):
        if r in killed:
            job.dead.add(killed[r])
        if r in back and back[r] in job.dead:
            job.repair(back[r], r)
        job.round(r)
    job.run(60, 90)  # quiet: nothing dies or returns
    live = job.live()
    if len(live) >= 1:
        members = sorted(c.index for c in live)
        assert all(c.ring == members for c in live)
        assert same_model(live)
    for core in live:
        account = core.account(90.0, alive=True)
        assert min(account.values()) >= 0
        assert sum(account.values()) == pytest.approx(90.0 - job.started[core.index])


def test_device_time_credits_each_activity() -> None:
    time = DeviceTime()
    time.start(0.0)
    time.begin_iteration(0.0)
    time.to("checkpoint", 3.0)  # 3 s of work, pending
    time.commit()
    time.begin_iteration(5.0)  # 2 s of checkpoint
    time.abandon(6.0)  # 1 s of work, wasted
    time.begin_iteration(8.0)  # 2 s idle
    assert time.closed(10.0, kept=False) == {
        "useful_s": 3.0,
        "wasted_s": 3.0,
        "checkpoint_s": 2.0,
        "idle_s": 2.0,
    }
    time.lose()  # nothing pending at 8 s: nothing more lost
    alive = time.closed(10.0, kept=True)
    assert alive["wasted_s"] == 1.0 and alive["useful_s"] == 3.0 + 2.0  # the tail is kept


@pytest.mark.parametrize(
    "body",
    [
        {"round": 0},
        {"round": 0, "applied": [0, 1], "ring": [0, 9]},
        {"round": 0, "applied": [0, 1], "ring": [1, 0]},
        {"round": 0, "applied": [0, 1], "ring": []},
        {"round": 0, "applied": [-1, 1], "ring": [0, 1]},
        {"round": 0, "applied": [0, 1.0], "ring": [0, 1]},
        {"round": 0, "applied": [0, 1], "ring": [0, 1], "ckpt": [0]},
        {"round": 0, "applied": [0, 1], "ring": [0, True]},
    ],
)
def test_a_malformed_beat_is_refused_whole(body: dict[str, Any]) -> None:
    core = make_cores(AllReduceCore, 3, ring=[0, 1, 2])[0]
    with pytest.raises(ProtocolViolation):
        core.on_message(0, 1, "beat", body, np.random.default_rng(0))
    assert core.recovering == 0 and not core._reports
    assert Report.parse({"applied": [0, 1], "ring": [0, 1]}, [0, 1, 2]).ring == (0, 1)


def test_a_state_from_anyone_but_the_named_member_is_dropped() -> None:
    job = Job(3, None)
    job.run(0, 3)
    core = job.cores[2]
    body = over_wire("state", {"round": core.iteration, "epoch": 0, "params": np.zeros(core.size)})
    before = core.learner.get_params()
    core.on_message(3, 0, "state", body, job.rngs[2])  # not awaited at all
    assert core.misrouted == 1
    assert np.array_equal(core.learner.get_params(), before)


def test_a_member_back_before_anyone_noticed_still_rolls_the_job_back() -> None:
    """It failed: its share of the iteration in flight is gone and the job restarts from
    the checkpoint, even though the ring it re-forms has the same members."""
    job = Job(4, POLICY)
    job.run(0, 12)
    job.dead.add(2)
    job.run(12, 13)
    job.repair(2, 13)  # back at once, fresh, before the stall is noticed
    job.run(13, 30)
    assert all(c.ring == [0, 1, 2, 3] for c in job.cores)
    assert {c.epoch for c in job.cores} == {1}  # one rollback, the same for all
    assert same_model(job.cores)


@pytest.mark.parametrize("checkpoint", [None, POLICY])
def test_halves_that_advanced_apart_end_on_one_model(checkpoint: Checkpointing | None) -> None:
    """A partition splits the ring; each half re-forms and trains on, reaching the same
    iteration numbers with different models. Once they meet again, one model wins whole:
    equal stamps are told apart by the parameters' digest."""
    job = Job(4, checkpoint)
    job.run(0, 10)
    job.groups = {0: 0, 1: 0, 2: 1, 3: 1}
    job.run(10, 30)
    job.groups = None
    job.dead.add(1)  # a glitch makes the healed fleet re-form
    job.round(30)
    job.dead.discard(1)
    job.run(31, 70)
    assert all(c.ring == [0, 1, 2, 3] for c in job.cores)
    assert same_model(job.cores)


@pytest.mark.parametrize(
    ("kind", "field"),
    [("chunk", "ring"), ("chunk", "ckpt"), ("state", "ring"), ("state", "round"), ("state", "gen")],
)
def test_an_array_where_a_number_belongs_is_dropped_not_a_crash(kind: str, field: str) -> None:
    """The wire carries arrays in any field; comparing one to a number gives an array,
    whose truth is an error. Such a message is refused or dropped, never raised."""
    job = Job(3, POLICY)
    job.run(0, 3)
    core = job.cores[1]
    body: dict[str, Any] = {"round": core.iteration + 1, "step": 0, "epoch": 0, "gen": 0}
    body |= {"chunk": {"mode": "none", "values": np.zeros(core.chunk, np.float32)}}
    body |= {"params": np.zeros(core.size), "members": [0, 1, 2]}
    body[field] = np.array([1, 1])
    with contextlib.suppress(ProtocolViolation):
        core.on_message(3, 0, kind, over_wire(kind, body), job.rngs[1])
    job.run(3, 8)  # and the member goes on
    assert core.iterations_done >= 5
