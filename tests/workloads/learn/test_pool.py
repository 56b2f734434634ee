"""A round's local training runs as one batch, and the fleet learns exactly the same."""

from __future__ import annotations

from typing import Any

import pytest

from swarm.run.runner import run_scenario
from swarm.scenario import from_dict
from swarm.workloads.learn import linear, pool


def _gossip(**learn: Any) -> Any:
    return from_dict(
        {
            "run": {"name": "pool", "seed": 3, "rounds": 6},
            "fleet": {"count": 24, "workload": "learn", "mix": {"glasses": 1.0}},
            "learn": {"strategy": "gossip", "local_epochs": 2, **learn},
        }
    )


@pytest.mark.parametrize("learn", [{}, {"iid": False, "compression": "int8"}])
def test_batched_training_learns_what_training_one_by_one_learns(
    learn: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    together = linear.train_together

    def counting(jobs: Any) -> None:
        batches.append(len(jobs))
        together(jobs)

    monkeypatch.setattr(pool, "train_together", counting)
    batched = run_scenario(_gossip(**learn))
    assert max(batches) == 24  # the whole fleet trained in one batch per round

    original_add = pool.TrainingPool.add

    def at_once(self: pool.TrainingPool, *args: Any) -> int:
        samples = original_add(self, *args)
        self.flush()
        return samples

    batches.clear()
    monkeypatch.setattr(pool.TrainingPool, "add", at_once)
    alone = run_scenario(_gossip(**learn))
    assert max(batches) == 1
    assert batched["results"] == alone["results"]
