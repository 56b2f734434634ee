"""The learning workload: data, shards, learners and strategy cores for a fleet.

A `Workload` (see `swarm.workloads.base`): the fleet stays about agents, brokers and
rounds, and asks this module for cores and for the figures its rows and summary report.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from swarm import laws
from swarm.devices.energy import EnergyMeter, fleet_energy
from swarm.devices.grid import Grid
from swarm.devices.profiles import DeviceProfile
from swarm.protocols.consensus.reputation import Reputation
from swarm.protocols.gossip.topology import Topology
from swarm.protocols.sybil import EclipseCore, FloodCore, Roster, SybilCore
from swarm.scenario import Scenario, ScenarioError
from swarm.seeding import Stream, generator
from swarm.workloads.base import BuildContext, Part, Partial, Results, Row, Status, Workload
from swarm.workloads.learn import datasets
from swarm.workloads.learn.accounting import Checkpointing, DeviceCheckpoints, boundary_after
from swarm.workloads.learn.allreduce import AllReduceCore
from swarm.workloads.learn.asyncps import AsyncCore
from swarm.workloads.learn.compression import expected_factor
from swarm.workloads.learn.learner import Learner, centralized_baseline, make_learner
from swarm.workloads.learn.poison import Attacker, FedAvgSybil, GossipSybil
from swarm.workloads.learn.pool import TrainingPool
from swarm.workloads.learn.readout import Readout
from swarm.workloads.learn.robust import RobustServer
from swarm.workloads.learn.strategies import FedAvgCore, GossipLearningCore, LearningCore

__all__ = ["BASELINE_EPOCHS", "Learning"]

# The centralized baseline trains for as many rounds as the fleet, up to this many: it has
# long converged by then, and a run of thousands of rounds would spend most of its time
# on it (cloud-titan for an hour: three minutes of baseline after one of fleet).
BASELINE_EPOCHS = 100

STRATEGIES: dict[str, type[LearningCore]] = {
    "gossip": GossipLearningCore,
    "fedavg": FedAvgCore,
    "allreduce": AllReduceCore,
    "async": AsyncCore,
}
TIME_KEYS = ("useful_s", "wasted_s", "checkpoint_s", "idle_s")


@dataclass
class Learning:
    """Everything a learning run shares: the data, the shards and the cores of this process."""

    scenario: Scenario
    dataset: datasets.Dataset
    cores: dict[int, LearningCore]  # the honest agents of this process
    sybils: dict[int, SybilCore] = field(default_factory=dict)  # and its Sybils
    pool: TrainingPool = field(default_factory=TrainingPool)  # the cores' queued training
    fresh: Callable[[int], LearningCore] | None = None  # a new core for a repaired device
    # Where the device time of cores replaced by repaired ones went (all-reduce only).
    retired: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIME_KEYS, 0.0))
    # Gossip, FedAvg and async devices' own checkpoints ([checkpoint] interval > 0).
    disk: DeviceCheckpoints | None = None
    # What the cores that repaired devices replaced had counted and spent: the run's
    # figures keep it (counters never fall back, energy adds up).
    gone: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            ("update_bytes", "updates_rejected", "updates_sent", "compute_s"), 0
        )
    )
    gone_meters: list[EnergyMeter] = field(default_factory=list)

    _baseline: float | None = None  # the live status's centralized baseline, once
    _readout: Readout | None = None  # scores the learners on the test set, with a memory
    _sampled = 0  # the last round sampled: the run ends at its boundary

    @classmethod
    def build(cls, ctx: BuildContext) -> Learning:
        scenario, topology, local, roster = ctx.scenario, ctx.topology, ctx.local, ctx.roster
        kinds = ctx.placement.kinds
        learn, n = scenario.learn, scenario.fleet.count
        seed = scenario.run.seed
        dataset = datasets.load(learn.dataset, seed=seed)
        try:
            shards = datasets.shard(
                dataset.y_train,
                n,
                generator(seed, Stream.DATA),
                iid=learn.iid,
                classes_per_agent=learn.classes_per_agent,
                shard_size=learn.shard_size or None,
                dataset=learn.dataset,
                overlap=learn.overlap,
            )
        except datasets.NotEnoughData as exc:
            raise ScenarioError(
                f"learn: {exc}; with learn.overlap = true each agent draws its own "
                "learn.shard_size samples, and shards may share them"
            ) from None
        except ValueError as exc:
            raise ScenarioError(f"learn: {exc}") from None
        options = learner_options(learn)
        common: dict[str, Any] = {
            "compression": learn.compression,
            "topk_ratio": learn.topk_ratio,
            "epochs": learn.local_epochs,
            "batch_size": learn.batch_size,
        }
        if learn.strategy == "gossip":
            common |= {"topology": topology, "fanout": scenario.gossip.fanout}
        elif learn.strategy == "fedavg":
            common |= {
                "aggregator": 0,
                "clients": [*range(1, n), *roster.sybils],
                "candidates": list(range(n)),  # who may take over a dead aggregator
                "fraction_fit": learn.fraction_fit,
                "backup": learn.backup,
                "deadline": learn.deadline,
                "admitted": roster.admitted if roster.count else None,
                "selection": learn.selection,
            }
            if learn.selection == "green":
                grid = Grid.of(scenario.fleet.regions, scenario.grid)
                region_of = [int(r) for r in ctx.placement.regions]
                common["intensity"] = lambda c, t: grid.intensity(region_of[c], t)
        elif learn.strategy == "async":
            common |= {
                "server": 0,
                "clients": list(range(1, n)),
                "weighting": learn.staleness,
                "candidates": list(range(n)),  # who may take over a dead server
            }
        ckpt = scenario.checkpoint
        policy = Checkpointing(ckpt.interval, ckpt.cost, ckpt.restore)
        disk = None
        if learn.strategy != "allreduce" and ckpt.interval > 0:
            disk = common["disk"] = DeviceCheckpoints(policy)
        if learn.strategy == "allreduce":
            common |= {
                "ring": list(range(n)),
                "now": ctx.now,
                "checkpoint": policy if ckpt.interval > 0 else None,
            }
        cls_ = STRATEGIES[learn.strategy]
        profiles = scenario.profiles()
        common["period"] = scenario.gossip.period
        common["pool"] = pool = TrainingPool()
        cores: dict[int, LearningCore] = {}

        def new_learner(rng: np.random.Generator) -> Learner:
            return make_learner(learn.model, dataset.classes, dataset.n_features, rng, **options)

        slowdown = ctx.placement.slowdown

        def fresh(i: int) -> LearningCore:
            """Agent i's core as at the start: its initial model, its shard."""
            rows = shards[i]
            extra: dict[str, Any] = {}
            if learn.strategy == "fedavg":
                extra["server"] = robust_server(learn)
            # Data-parallel replicas start from one model, as a broadcast from rank 0 does.
            init = 0 if learn.strategy == "allreduce" else i
            return cls_(
                i,
                new_learner(generator(seed, Stream.LEARNERS, init)),
                dataset.X_train[rows],
                dataset.y_train[rows],
                profile=_slowed(profiles[kinds[i]], slowdown, i),
                **common,
                **extra,
            )

        for i in local:
            if i < n:
                cores[i] = fresh(i)
        sybils = build_sybils(scenario, dataset, topology, local, roster, new_learner, shards)
        return cls(scenario, dataset, cores, sybils, pool, fresh=fresh, disk=disk)

    def step(self, round: int) -> None:
        """Learning happens in the cores; nothing else moves."""

    # -- metrics ---------------------------------------------------------------------------
    def sample(self, round: int = 0, in_flight: int = 0) -> Part:
        """Additive per-process figures for one metrics row."""
        self.pool.flush()  # nothing queued at a round boundary, unless a run was cut short
        self._sampled = max(self._sampled, round)
        if self._readout is None:
            self._readout = Readout(self.dataset.X_test, self.dataset.y_test)
        accuracy = self._readout.accuracies([core.learner for core in self.cores.values()])
        return {
            "accuracy_sum": float(np.sum(accuracy)),
            "accuracy_min": float(accuracy.min(initial=1.0)),
            "accuracy_max": float(accuracy.max(initial=0.0)),
            "update_bytes": sum(c.update_bytes for c in self.cores.values())
            + int(self.gone["update_bytes"]),
            "updates_rejected": sum(c.rejected for c in self.cores.values())
            + int(self.gone["updates_rejected"]),
        }

    def attack_partial(self) -> Partial:
        """What the defenses of this process saw of the Sybils, and an eclipse's victim."""
        self.pool.flush()
        part: dict[str, Any] = {}
        sybil = self.scenario.sybil
        victim = self.cores.get(sybil.victim)
        if sybil.behaviour == "eclipse" and victim is not None:
            part["victim_accuracy"] = victim.accuracy(self.dataset.X_test, self.dataset.y_test)
        server = _current_server(self.cores.values())
        if server is not None:
            robust = server.server
            part |= {
                "flags": robust.flags,
                "flagged": sorted(robust.flagged()),
                "refused": robust.refused,
                "ignored": robust.ignored,
            }
        if sybil.behaviour == "label-flip":
            source = self.dataset.y_test == sybil.source_class
            X = self.dataset.X_test[source]
            part["targeted_count"] = len(self.cores) * int(source.sum())
            part["targeted_sum"] = sum(
                int((c.learner.predict(X) == sybil.target_class).sum()) for c in self.cores.values()
            )
        return part

    def live_status(self) -> Status:
        """The centralized baseline a dashboard draws beside the fleet, worked out once."""
        s = self.scenario
        budget = min(s.max_rounds, BASELINE_EPOCHS) * s.learn.local_epochs
        if self._baseline is None:
            self._baseline = centralized_baseline(
                self.dataset,
                budget,
                generator(s.run.seed, Stream.LEARNERS, s.fleet.count),
                s.learn.model,
                **learner_options(s.learn),
            )
        status: Status = {"baseline_accuracy": self._baseline, "baseline_epochs": budget}
        rings = [c for c in self.cores.values() if isinstance(c, AllReduceCore)]
        spent = sum(c.time.spent for c in rings)
        if spent > 0:  # the job's goodput so far: kept work over device time
            status["goodput"] = sum(c.time.useful_s for c in rings) / spent
        return status

    def asleep(self, index: int) -> bool:
        return False

    def respawn(self, index: int) -> LearningCore:
        """Back with its initial model and its shard: what it learned is lost, unless it
        saved a checkpoint (gossip, FedAvg, async), which it resumes from."""
        assert self.fresh is not None
        old = self.cores.get(index)
        if old is not None:
            gone = self.gone
            gone["update_bytes"] += old.update_bytes
            gone["updates_rejected"] += old.rejected
            gone["updates_sent"] += old.updates_sent
            gone["compute_s"] += old.compute_s
            if old.meter is not None:
                self.gone_meters.append(old.meter)
        if isinstance(old, AllReduceCore):  # its time ended where it died
            period = self.scenario.gossip.period
            account = old.account(boundary_after(old.last_tick, period), alive=False)
            for key in TIME_KEYS:
                self.retired[key] += account[key]
        self.cores[index] = core = self.fresh(index)
        disk = self.disk
        saved = None if disk is None else disk.load(index)
        if disk is not None and saved is not None:
            # back from its last checkpoint: only what it learned since is lost
            core.learner.set_params(saved)
            core.pending_delay += disk.policy.restore
            if core.meter is not None:
                core.meter.compute(disk.policy.restore)
        if isinstance(core, AllReduceCore):
            # Back from this boundary; its first tick comes with the next round.
            core.last_tick = core.clock()
            core.time.start(core.last_tick)
            core.rejoining = core.fresh = True
        return core

    def position(self, index: int) -> tuple[float, float] | None:
        return None

    def marked(self, index: int) -> bool:
        return False

    def meters(self) -> Iterator[tuple[int, EnergyMeter]]:
        return ((i, c.meter) for i, c in self.cores.items() if c.meter is not None)

    def set_fanout(self, fanout: int) -> int:
        gossiping = [
            c
            for c in (*self.cores.values(), *self.sybils.values())
            if isinstance(c, GossipLearningCore | GossipSybil)
        ]
        for core in gossiping:
            core.fanout = fanout
        return len(gossiping)

    def set_aggregator(self, rule: str) -> int:
        servers = [c.server for c in self.cores.values() if _serves(c)]
        for server in servers:
            server.rule = rule
        return len(servers)

    def slow_down(self, index: int, factor: float, *, throttle: bool = False) -> bool:
        core = self.cores.get(index)
        if core is None or core.profile is None:
            return False
        core.profile = _slowed(core.profile, np.array([factor]), 0)
        if throttle and core.meter is not None:
            profile = core.meter.profile  # the same joules, drawn over `factor` times as long
            above = (profile.active_w - profile.idle_w) / factor
            core.meter.profile = dataclasses.replace(profile, active_w=profile.idle_w + above)
        return True

    @property
    def aggregator(self) -> str | None:
        server = next((c.server for c in self.cores.values() if _serves(c)), None)
        if server is not None:
            return server.rule
        learn = self.scenario.learn
        return learn.aggregator if learn.strategy == "fedavg" else None

    @staticmethod
    def merge(parts: Sequence[Part], n: int) -> tuple[Row, bool]:
        return merge_sample(parts, n), False

    @staticmethod
    def results(scenario: Scenario, parts: Sequence[Partial], rows: Sequence[Row]) -> Results:
        out = results(scenario, parts, rows[-1]["round"] if rows else 0)
        # Energy per useful outcome: joules per point of accuracy the fleet gained (of
        # the model it delivers: FedAvg's global one), from the first row to the end.
        first = rows[0].get("accuracy") if rows else None
        final = out.get("global_accuracy") or out.get("accuracy")
        if first is not None and final is not None:
            gain = (final - first) * 100.0
            out["accuracy_gain_points"] = gain
            out["joules_per_accuracy_point"] = out["energy_j"]["total"] / gain if gain > 0 else None
        target = scenario.learn.target_accuracy
        if target > 0:
            # The first row (simulated seconds) whose fleet accuracy reached the target.
            reached = (r["time"] for r in rows if (r.get("accuracy") or 0.0) >= target)
            out["time_to_accuracy"] = next(reached, None)
            out["target_accuracy"] = target
        return out

    def _device_time(self, rings: Sequence[AllReduceCore]) -> dict[str, float]:
        """This process's device time in the job, split (see `accounting`); a core that
        died is closed where it died."""
        period = self.scenario.gossip.period
        # The run's end: the boundary of its last row (a device repaired there has a zero
        # account); without rows, where the cores stopped.
        end = self._sampled * period or max(
            (boundary_after(c.last_tick, period) for c in rings if c.time.started), default=0.0
        )
        out = dict(self.retired)
        for core in rings:
            at, alive = _closed_at(core, end, period)
            for key, value in core.account(at, alive=alive).items():
                out[key] += value
        return out

    def partial_results(self) -> Partial:
        part = self.sample()
        part["n"] = len(self.cores)
        part["updates_sent"] = sum(c.updates_sent for c in self.cores.values()) + int(
            self.gone["updates_sent"]
        )
        rings = [c for c in self.cores.values() if isinstance(c, AllReduceCore)]
        done = [c for c in rings if c.iterations_done]
        part["bytes_by_agent"] = [c.completed_bytes / c.iterations_done for c in done]
        part["iterations"] = [c.iterations_done for c in rings]
        part["iteration_s"] = [
            (c.iteration_s / c.iterations_done, c.ring_s / c.iterations_done) for c in done
        ]
        part["reformed"] = max((c.reformed for c in rings), default=0)
        part["abandoned"] = sum(c.abandoned for c in rings)
        if rings:
            part["device_time"] = self._device_time(rings)
            part["checkpoints"] = max(c.checkpoints for c in rings)
            part["rollbacks"] = max(c.epoch for c in rings)  # one trajectory per rollback
            part["transfers"] = sum(c.transfers for c in rings)
        if self.disk is not None:
            disk = self.disk
            part["device_checkpoints"] = [disk.saved, disk.restored, disk.seconds]
        part["late_updates"] = sum(
            c.unasked for c in self.cores.values() if isinstance(c, FedAvgCore)
        )
        part["elections"] = max(
            (c.elections for c in self.cores.values() if isinstance(c, FedAvgCore)), default=0
        )
        asyncs = [c for c in self.cores.values() if isinstance(c, AsyncCore)]
        servers = [c for c in asyncs if c.is_server]
        if servers:
            # every update any server applied; the model is the latest elected one's
            part["staleness"] = [
                x for c in sorted(servers, key=lambda c: c.index) for x in c.staleness
            ]
            latest = max(servers, key=lambda c: c.index)
            part["global_accuracy"] = latest.accuracy(self.dataset.X_test, self.dataset.y_test)
        if asyncs:
            part["elections"] = max(c.elections for c in asyncs)
        part["aggregations"] = sum(
            c.rounds_applied for c in self.cores.values() if isinstance(c, FedAvgCore)
        )
        meters = [c.meter for c in self.cores.values() if c.meter is not None]
        part["energy"] = fleet_energy([*meters, *self.gone_meters])
        part["compute_s"] = sum(c.compute_s for c in self.cores.values()) + self.gone["compute_s"]
        first = next(iter(self.cores.values()), None)
        part["size"] = first.size if first is not None else 0
        server = _current_server(self.cores.values())
        if server is not None:  # its model is the global one the clients start each round from
            part["global_accuracy"] = server.accuracy(self.dataset.X_test, self.dataset.y_test)
        return part


def _closed_at(core: AllReduceCore, end: float, period: float) -> tuple[float, bool]:
    """Where a core's time ends (the run's end, or the round boundary at which it died,
    the one after its last tick) and whether it lived to the end."""
    left = min(boundary_after(core.last_tick, period), end)
    return (end, True) if left >= end - 1e-9 else (left, False)


def _slowed(profile: DeviceProfile, slowdown: np.ndarray | None, index: int) -> DeviceProfile:
    """A straggler's profile: its class's, computing `slowdown` times slower."""
    if slowdown is None or slowdown[index] == 1.0:
        return profile
    return dataclasses.replace(profile, flops=profile.flops / float(slowdown[index]))


def _current_server(cores: Iterable[LearningCore]) -> FedAvgCore | None:
    """The FedAvg server now: of the cores that believe they aggregate (a dead one still
    does), the one that ran the latest round."""
    servers = [c for c in cores if isinstance(c, FedAvgCore) and c.is_aggregator]
    return max(servers, key=lambda c: (c._round, c.rounds_applied), default=None)


def _serves(core: LearningCore) -> TypeGuard[FedAvgCore]:
    """Whether `core` is the FedAvg server (agent 0 of a fedavg run)."""
    return isinstance(core, FedAvgCore) and core.is_aggregator


def learner_options(learn: Any) -> dict[str, Any]:
    """What `make_learner` takes from the [learn] section besides the model: the constant
    step size, and the hidden units when the model is the mlp."""
    options: dict[str, Any] = {"learning_rate": "constant", "eta0": learn.learning_rate}
    if learn.model == "mlp":
        options["hidden"] = learn.hidden
    return options


def robust_server(learn: Any) -> RobustServer:
    """The FedAvg server's rule and defenses, from the [learn] section."""
    return RobustServer(
        rule=learn.aggregator,
        f=learn.byzantine,
        beta=learn.trim,
        max_norm=learn.clip_norm,
        reputation=Reputation() if learn.reputation else None,
    )


def build_sybils(
    scenario: Scenario,
    dataset: datasets.Dataset,
    topology: Topology,
    local: range,
    roster: Roster,
    make_learner: Any,
    shards: list[np.ndarray],
) -> dict[int, SybilCore]:
    """The cores of this process's Sybils (indices n.. of `local`)."""
    mine = [i for i in local if roster.is_sybil(i)]
    if not roster.count:
        return {}
    sybil, learn, period = scenario.sybil, scenario.learn, scenario.gossip.period
    if sybil.behaviour == "eclipse":
        return {i: EclipseCore(i, roster, period) for i in mine}
    size = make_learner(generator(scenario.run.seed, Stream.SYBIL, 0)).size
    if sybil.behaviour == "flood":
        kind = "model" if learn.strategy == "gossip" else "update"

        def junk(round: int, rng: np.random.Generator) -> tuple[str, Any]:
            vector = rng.normal(0.0, 1.0, size).astype(np.float32)
            body = {"round": round, "update": {"mode": "none", "values": vector}, "samples": 1}
            return kind, body

        return {i: FloodCore(i, roster, period, sybil.flood_rate, junk) for i in mine}
    attacker = Attacker(scenario, dataset, roster, make_learner, len(shards[0]))
    if learn.strategy == "fedavg":
        return {i: FedAvgSybil(i, roster, period, attacker, size) for i in mine}
    start = np.zeros(size)
    return {
        i: GossipSybil(i, roster, period, attacker, topology, scenario.gossip.fanout, start)
        for i in mine
    }


def merge_sample(parts: Sequence[Part], n: int) -> dict[str, Any]:
    """The learning columns of a merged metrics row."""
    return {
        "accuracy": sum(p["accuracy_sum"] for p in parts) / n if n else 0.0,
        "accuracy_min": min(p["accuracy_min"] for p in parts),
        "accuracy_max": max(p["accuracy_max"] for p in parts),
        "update_bytes": sum(p["update_bytes"] for p in parts),
        "updates_rejected": sum(p["updates_rejected"] for p in parts),
    }


def results(scenario: Scenario, parts: Sequence[Partial], rounds: int) -> Results:
    """The summary's learning results, with the centralized baseline and the laws beside."""
    learn, n = scenario.learn, scenario.fleet.count
    merged = merge_sample(parts, n)
    size = max((p["size"] for p in parts), default=0)
    dataset = datasets.load(learn.dataset, seed=scenario.run.seed)
    budget = min(max(1, rounds), BASELINE_EPOCHS) * learn.local_epochs
    baseline = centralized_baseline(
        dataset,
        budget,
        generator(scenario.run.seed, Stream.LEARNERS, n),
        learn.model,
        **learner_options(learn),
    )
    sent = sum(p["updates_sent"] for p in parts)
    compressed = -(-size // n) if learn.strategy == "allreduce" else size
    factor = expected_factor(learn.compression, compressed, learn.topk_ratio)
    out: dict[str, Any] = {
        "accuracy": merged["accuracy"],
        "accuracy_spread": [merged["accuracy_min"], merged["accuracy_max"]],
        "baseline_accuracy": baseline,
        "baseline_epochs": budget,
        "accuracy_gap": baseline - merged["accuracy"],
        "dataset": learn.dataset,
        "parameters": size,
        "update_bytes": merged["update_bytes"],
        "updates_sent": sent,
        "updates_rejected": merged["updates_rejected"],
        "compression_factor_expected": factor,
    }
    if learn.strategy == "allreduce":
        iterations = [i for p in parts for i in p["iterations"]]
        done = min(iterations, default=0)
        padded = -(-size // n) * n
        per_node = [b for p in parts for b in p["bytes_by_agent"]]
        out["allreduce"] = {
            "iterations": done,
            "abandoned": sum(p["abandoned"] for p in parts),
            # rings the members re-formed after a member stopped answering (most by one)
            "reformed": max((p.get("reformed", 0) for p in parts), default=0),
            "model_bytes": 4 * padded,
            "bytes_per_node_per_iteration": [min(per_node), max(per_node)] if per_node else None,
            "predicted_bytes_per_node_per_iteration": laws.ring_allreduce_bytes_per_node(
                n, 4 * padded
            ),
            **_allreduce_times(scenario, [t for p in parts for t in p["iteration_s"]], padded),
            # rounds of state sent to members that lacked the ring's model after a re-form
            "transfers": sum(p.get("transfers", 0) for p in parts),
        }
        out["reliability"] = _device_time(scenario, parts)
    elif scenario.checkpoint.interval > 0:
        # each device's own checkpoints: merged into `reliability` beside the failures
        saved = [p.get("device_checkpoints", [0, 0, 0.0]) for p in parts]
        out["reliability"] = {
            "checkpoint_interval": scenario.checkpoint.interval,
            "checkpoints": sum(c[0] for c in saved),  # saved, over every device
            "restores": sum(c[1] for c in saved),  # devices back from a failure that resumed
            "checkpoint_s": math.fsum(c[2] for c in saved),  # writing and reading them
        }
    if learn.strategy == "fedavg":
        out["aggregations"] = sum(p["aggregations"] for p in parts)
        # updates that came after their round was applied, or from a client not asked
        out["late_updates"] = sum(p.get("late_updates", 0) for p in parts)
        # moves to the next candidate after an aggregator stopped answering (most by one)
        out["elections"] = max((p.get("elections", 0) for p in parts), default=0)
        # `accuracy` is the mean over every agent, clients' stale local models included;
        # what FedAvg delivers is the server's global model.
        out["global_accuracy"] = next(
            (p["global_accuracy"] for p in parts if "global_accuracy" in p), None
        )
        traffic = laws.parameter_server_bytes(n - 1, 4 * size / factor, learn.fraction_fit)
        out["fedavg_uplink_bytes_per_round"] = merged["update_bytes"] / max(1, rounds)
        out["predicted_uplink_bytes_per_round"] = traffic["uploaded"]
    if learn.strategy == "async":
        stale = np.array([s for p in parts for s in p.get("staleness", [])], dtype=float)
        out["async"] = {
            "updates": int(stale.size),  # applied by the server
            "staleness_mean": float(stale.mean()) if stale.size else None,
            "staleness_p99": float(np.percentile(stale, 99)) if stale.size else None,
            "weighting": learn.staleness,
        }
        # moves to the next candidate after the server stopped answering (most by one)
        out["elections"] = max((p.get("elections", 0) for p in parts), default=0)
        out["global_accuracy"] = next(
            (p["global_accuracy"] for p in parts if "global_accuracy" in p), None
        )
    energy = [p["energy"] for p in parts]
    out["energy_j"] = {
        "total": sum(e["total_j"] for e in energy),
        **{
            key: sum(e["by_category"].get(key, 0.0) for e in energy)
            for key in ("idle", "compute", "tx", "rx")
        },
    }
    out["depleted"] = sum(e["depleted"] for e in energy)
    out["compute_s_per_agent"] = sum(p["compute_s"] for p in parts) / n
    return out


def _device_time(scenario: Scenario, parts: Sequence[Partial]) -> dict[str, Any]:
    """Where the job's device time went: goodput is the share of it spent on kept work."""
    time = {
        key: math.fsum(p["device_time"][key] for p in parts if "device_time" in p)
        for key in TIME_KEYS
    }
    total = math.fsum(time.values())
    return {
        "goodput": time["useful_s"] / total if total > 0 else None,
        **time,
        "device_s": total,
        "checkpoints": max((p.get("checkpoints", 0) for p in parts), default=0),
        "rollbacks": max((p.get("rollbacks", 0) for p in parts), default=0),
        "checkpoint_interval": scenario.checkpoint.interval,
    }


def _allreduce_times(
    scenario: Scenario, times: Sequence[tuple[float, float]], padded: int
) -> dict[str, float | None]:
    """Seconds per iteration (mean over agents), the ring's part of them, its share, and
    the alpha-beta law's ring time where the network is the law's: one latency for every
    hop and one uplink rate for every device (not distances, not device links). The ring's
    part includes waiting for slower peers to start, which the law leaves out."""
    n, net = scenario.fleet.count, scenario.network
    total = sum(t for t, _ in times) / len(times) if times else None
    ring = sum(r for _, r in times) / len(times) if times else None
    out: dict[str, float | None] = {  # None: no iteration completed
        "seconds_per_iteration": total,
        "ring_seconds_per_iteration": ring,
        "communication_share": ring / total if total and ring is not None else None,
    }
    if net.latency_model == "constant" and not net.device_links:
        steps = 2 * (n - 1) * net.latency
        out["predicted_ring_seconds_per_iteration"] = (
            laws.ring_allreduce_seconds(n, 4 * padded, net.bandwidth, net.latency)
            if net.bandwidth > 0
            else steps  # unlimited links: the latency term alone
        )
    return out


_IMPLEMENTS: type[Workload] = Learning  # mypy checks the class against the protocol
