"""When agents act within a round: lockstep, shuffled, jittered or on Poisson clocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarm.activation import ACTIVATIONS, Activation
from swarm.run.runner import run_scenario
from swarm.scenario import ScenarioError, from_dict

SPREAD = [mode for mode in ACTIVATIONS if mode != "sync"]


def test_sync_acts_everyone_at_the_boundary() -> None:
    assert Activation("sync", 2.0, 1, 5).offsets(3, [4, 0, 2]) == [(0.0, 4), (0.0, 0), (0.0, 2)]


def test_shuffled_spaces_everyone_evenly_in_a_fresh_order_each_round() -> None:
    act = Activation("shuffled", 2.0, 7, 10)
    first, second = act.offsets(0, range(10)), act.offsets(1, range(10))
    assert [t for t, _ in first] == pytest.approx([0.2 * k for k in range(10)])
    assert sorted(k for _, k in first) == list(range(10))
    assert [k for _, k in first] != [k for _, k in second]


def test_jittered_keeps_each_agents_phase_from_round_to_round() -> None:
    act = Activation("jittered", 3.0, 7, 50)
    first, later = act.offsets(0, range(50)), act.offsets(9, range(50))
    assert first == later
    assert all(0.0 <= t < 3.0 for t, _ in first) and len({t for t, _ in first}) == 50


def test_poisson_clocks_tick_once_a_period_on_average() -> None:
    act = Activation("poisson", 1.0, 7, 2000)
    counts = np.zeros(2000)
    for round in range(20):
        ticks = act.offsets(round, range(2000))
        assert [t for t, _ in ticks] == sorted(t for t, _ in ticks)
        assert all(0.0 <= t < 1.0 for t, _ in ticks)
        np.add.at(counts, [k for _, k in ticks], 1)
    assert counts.mean() == pytest.approx(20, rel=0.03)
    assert counts.var() == pytest.approx(20, rel=0.15)  # Poisson: variance = mean


@pytest.mark.parametrize("mode", SPREAD)
def test_a_shard_sees_its_agents_act_exactly_when_the_whole_fleet_would(mode: str) -> None:
    act = Activation(mode, 1.0, 3, 40)
    everyone = act.offsets(5, range(40))
    mine = act.offsets(5, range(1, 40, 3))
    assert mine == [(t, k) for t, k in everyone if k % 3 == 1]


def test_bad_activations_are_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="choose one of sync, shuffled"):
        Activation("random", 1.0, 1, 3)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        Activation("shuffled", 1.0, 1, 3).offsets(0, [3])
    with pytest.raises(ScenarioError, match=r"run\.activation"):
        from_dict({"run": {"activation": "async"}})


def _averaging(mode: str, n: int = 1000, rounds: int = 14, seed: int = 1) -> Any:
    return from_dict(
        {
            "run": {"name": "avg", "rounds": rounds, "seed": seed, "activation": mode},
            "fleet": {"count": n},
            "gossip": {"protocol": "average", "values": "uniform"},
            "network": {"topology": "complete", "latency": 0.01},
        }
    )


@pytest.mark.parametrize("mode", ["shuffled", "jittered"])
def test_atomic_pairwise_averaging_shrinks_the_variance_by_the_law(mode: str) -> None:
    results = run_scenario(_averaging(mode))["results"]
    # Jelasity, Montresor & Babaoglu (2005): 1 / (2 sqrt(e)) = 0.303 per cycle.
    assert results["predicted_variance_per_cycle"] == pytest.approx(0.3033, abs=1e-4)
    assert results["variance_per_cycle"] == pytest.approx(0.303, abs=0.03)
    assert "variance_note" not in results


def test_lockstep_averaging_says_what_it_measures_and_why_it_differs() -> None:
    results = run_scenario(_averaging("sync"))["results"]
    assert results["variance_per_cycle"] > 0.4
    assert "atomic" in results["variance_note"] and "shuffled" in results["variance_note"]


@pytest.mark.parametrize("mode", ACTIVATIONS)
@pytest.mark.parametrize(
    "workload",
    [
        {"fleet": {"count": 60}, "gossip": {"protocol": "push", "fanout": 2}},
        {"fleet": {"count": 12, "workload": "learn"}, "learn": {"strategy": "gossip"}},
        {"fleet": {"count": 12, "workload": "learn"}, "learn": {"strategy": "fedavg"}},
    ],
    ids=["push", "gossip-learning", "fedavg"],
)
def test_one_seed_gives_byte_identical_output_in_every_mode(
    mode: str, workload: dict[str, Any], tmp_path: Path
) -> None:
    spec = {"run": {"name": "det", "rounds": 6, "seed": 5, "activation": mode}, **workload}
    outputs = []
    for name in "ab":
        run_scenario(from_dict(spec), out_dir=tmp_path / name)
        outputs.append((tmp_path / name / "metrics.jsonl").read_bytes())
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") >= 6


@pytest.mark.parametrize("mode", SPREAD)
def test_agents_act_at_their_offsets_after_the_boundary_participants(mode: str) -> None:
    import asyncio

    from swarm import clock
    from swarm.rounds import RoundScheduler

    activation = Activation(mode, 2.0, 9, 30)
    seen: list[tuple[int, object, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rounds = RoundScheduler(2.0, activation=activation)

        def record(key: object) -> Any:
            def act(round: int) -> None:
                seen.append((round, key, loop.time() - rounds.start))
                if key == "observer" and round == 3:
                    rounds.stop()

            return act

        rounds.add("observer", record("observer"))
        for i in range(30):
            rounds.add(i, record(i), agent=True)
        rounds.remove(7)  # an agent that left is never called
        rounds.begin()
        await rounds.finished()

    clock.run(main())
    for round in range(3):
        acts = [(key, t) for r, key, t in seen if r == round]
        assert acts[0] == ("observer", pytest.approx(2.0 * round))
        expected = [(k, 2.0 * round + t) for t, k in activation.offsets(round, range(30)) if k != 7]
        assert [(k, pytest.approx(t)) for k, t in expected] == acts[1:]
    assert [key for r, key, _ in seen if r == 3] == ["observer"]  # stopped: no acts after
