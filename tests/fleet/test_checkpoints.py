"""A synchronous job under failures, end to end: checkpoints cost time, failures roll the
job back, the device time adds up to the fleet's time up, and the summary puts the
Young/Daly interval beside the measured goodput."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm import laws
from swarm.cli import main
from swarm.run.runner import run_scenario
from swarm.scenario import load

# 4 GPUs training a linear model with a ring all-reduce, one iteration per second.
JOB = {
    "fleet.count": 4,
    "learn.model": "linear",
    "learn.batch_size": 64,
    "run.rounds": 120,
}


def results(**keys: object) -> dict:
    return run_scenario(load("cloud-titan", **{**JOB, **keys}))["results"]


def test_without_failures_checkpoints_cost_exactly_their_time() -> None:
    found = results(**{"checkpoint.interval": 10.0, "checkpoint.cost": 2.0})["reliability"]
    assert found["rollbacks"] == 0 and found["wasted_s"] == 0.0
    assert found["device_s"] == pytest.approx(4 * 120)
    assert found["checkpoint_s"] == pytest.approx(4 * 2.0 * found["checkpoints"])
    assert found["goodput"] == pytest.approx(found["useful_s"] / found["device_s"])
    # A checkpoint after every 10 s of work, each 2 s: 10 / 12 of the time is kept.
    assert found["goodput"] == pytest.approx(10 / 12, abs=0.03)


def test_a_run_without_checkpoints_or_faults_keeps_all_its_time() -> None:
    found = results()["reliability"]
    assert found["goodput"] == pytest.approx(1.0)
    assert found["checkpoints"] == 0 and "young_daly_interval" not in found


FAULTY = {
    "faults.process": "exponential",
    "faults.mtbf_scale": 30 * 4 / 1.8e8,  # the job fails every 30 s on average
    "faults.repair_s": 5.0,
    "checkpoint.interval": 8.0,
    "checkpoint.cost": 1.0,
}


def test_failures_roll_the_job_back_and_the_summary_gives_the_optimum() -> None:
    found = results(**FAULTY)["reliability"]
    assert found["failures"] > 0 and found["rollbacks"] > 0
    assert found["wasted_s"] > 0
    assert found["system_mtbf_s"] == pytest.approx(30.0)
    assert found["young_daly_interval"] == pytest.approx(laws.young_interval(1.0, 30.0))
    assert found["daly_interval"] == pytest.approx(laws.daly_interval(1.0, 30.0))
    assert 0.0 < found["goodput"] < 1.0


@settings(max_examples=12, deadline=None)
@given(
    mtbf=st.floats(3.0, 200.0),
    repair=st.sampled_from([0.0, 0.5, 4.0, 30.0]),
    interval=st.sampled_from([0.0, 2.5, 7.0, 40.0]),
    seed=st.integers(1, 2**31),
)
def test_accounted_time_adds_up_to_the_time_the_devices_were_up(
    mtbf: float, repair: float, interval: float, seed: int
) -> None:
    """useful + wasted + checkpoint + idle = the devices' time up, as the fleet measures it
    from its failures and repairs, whatever fails when; and the run always ends."""
    keys = {
        **FAULTY,
        "run.seed": seed,
        "run.rounds": 60,
        "faults.mtbf_scale": mtbf * 4 / 1.8e8,
        "faults.repair_s": repair,
        "checkpoint.interval": interval,
    }
    summary = run_scenario(load("cloud-titan", **{**JOB, **keys}))
    found = summary["results"]["reliability"]
    parts = found["useful_s"] + found["wasted_s"] + found["checkpoint_s"] + found["idle_s"]
    assert min(found[k] for k in ("useful_s", "wasted_s", "checkpoint_s", "idle_s")) >= 0
    assert parts == pytest.approx(found["device_s"], abs=1e-6)
    assert found["device_s"] == pytest.approx(4 * 60 * found["availability"], abs=1e-6)
    assert summary["complete"] and summary["rounds"] == 60


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("checkpoint.cost=0", "checkpoint.cost = 0"),
        ("checkpoint.cost=-1", "checkpoint.cost = -1"),
        ("checkpoint.restore=-1", "checkpoint.restore = -1"),
        ("checkpoint.interval=-5", "checkpoint.interval = -5"),
        ("checkpoint.interval=1", "checkpoint.interval = 1: not longer than checkpoint.cost"),
        ("checkpoint.every=3", "checkpoint.every"),
        ("fleet.workload=gossip", "checkpoints save learning models"),
    ],
)
def test_bad_checkpoint_settings_are_one_line_and_exit_2(
    override: str, needle: str, capsys
) -> None:
    args = ["run", "cloud-titan", "--set", "checkpoint.interval=10", "--set", override]
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_the_live_status_counts_failures_repairs_and_goodput() -> None:
    from swarm import clock
    from swarm.fleet import Fleet

    statuses: list[dict] = []
    fleet = Fleet(
        load("cloud-titan", **{**JOB, **FAULTY}),
        on_round=lambda row: statuses.append(fleet.status()),
    )
    summary = clock.run(fleet.run(), virtual=True)
    gpu = statuses[-1]["classes"]["gpu"]
    found = summary["results"]["reliability"]
    assert 0 < gpu["failures"] <= found["failures"]
    assert gpu["recoveries"] <= found["recoveries"]
    assert 0.0 < statuses[-1]["goodput"] <= 1.0
    plain = Fleet(load("cloud-titan", **JOB))
    assert "failures" not in plain.status()["classes"]["gpu"]


# -- devices' own checkpoints: gossip, FedAvg and async learners ------------------------------
CHURNING = {
    "run.name": "ck",
    "run.rounds": 80,
    "run.stop_when_done": False,
    "fleet.count": 30,
    "fleet.mix": {"gpu": 1.0},
    "fleet.workload": "learn",
    "learn.dataset": "digits",
    "faults.process": "exponential",
    "faults.mtbf_scale": 1.5e-7,  # a GPU fails every 27 s, and is back after 3
    "faults.repair_s": 3.0,
    "checkpoint.cost": 0.2,
    "checkpoint.restore": 0.5,
}


@pytest.mark.parametrize("strategy", ["gossip", "fedavg", "async"])
def test_a_repaired_learner_resumes_from_its_own_checkpoint(strategy: str) -> None:
    from swarm import clock
    from swarm.fleet import Fleet

    keys = {**CHURNING, "learn.strategy": strategy, "checkpoint.interval": 5.0}
    fleet = Fleet(load("fleet", **keys))
    restored: list[tuple[int, bool]] = []
    respawn = fleet.workload.respawn

    def checked(index: int):
        disk = fleet.workload.disk
        saved = disk.store.get(index)
        core = respawn(index)
        if saved is not None:  # the new core starts from exactly what was saved
            restored.append((index, bool((core.learner.get_params() == saved[1]).all())))
        return core

    fleet.workload.respawn = checked
    found = clock.run(fleet.run(), virtual=True)["results"]["reliability"]
    assert found["restores"] == len(restored) > 0 and all(ok for _, ok in restored)
    assert found["restores"] <= found["recoveries"]
    assert found["checkpoint_s"] == pytest.approx(0.2 * found["checkpoints"] + 0.5 * len(restored))
    assert found["checkpoint_interval"] == 5.0


def test_gossip_learners_that_checkpoint_lose_less_to_failures() -> None:
    plain = run_scenario(load("fleet", **{**CHURNING, "learn.strategy": "gossip"}))["results"]
    saved = run_scenario(
        load("fleet", **{**CHURNING, "learn.strategy": "gossip", "checkpoint.interval": 5.0})
    )["results"]
    assert plain["reliability"]["failures"] == saved["reliability"]["failures"] > 30
    assert saved["accuracy"] > plain["accuracy"] + 0.02
    assert "checkpoints" not in plain["reliability"]
