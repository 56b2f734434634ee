"""`swarm sweep`: grids, seeds, tables, parallel workers, resuming, and bad input."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarm.cli import main
from swarm.run.sweep import SweepError, parse_axis, plan

GRID = ["--grid", "gossip.k=1,2,3", "--grid", "fleet.count=60,90", "--repeat", "3"]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def without_wall_time(table: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if not k.startswith("wall_time")} for row in table]


def test_values_are_toml_split_on_top_level_commas() -> None:
    assert parse_axis("fleet.mix={gpu = 0.5, taxi = 0.5},{gpu = 1.0}") == (
        "fleet.mix",
        [{"gpu": 0.5, "taxi": 0.5}, {"gpu": 1.0}],
    )
    assert parse_axis("gossip.protocol=push, pull") == ("gossip.protocol", ["push", "pull"])
    assert parse_axis('run.name="a,b",c') == ("run.name", ["a,b", "c"])
    assert parse_axis('fleet.regions=["a", "b"],["c"]')[1] == [["a", "b"], ["c"]]


def test_seeds_are_shared_by_points_and_run_ids_survive_a_wider_grid() -> None:
    small = plan("rumor", ["gossip.k=1,2"], repeat=2, seed=7)
    assert [(j.point, j.seed) for j in small.jobs] == [(0, 7), (0, 8), (1, 7), (1, 8)]
    wide = plan("rumor", ["gossip.k=1,2,3"], repeat=2, seed=7)
    assert {j.run_id for j in small.jobs} < {j.run_id for j in wide.jobs}
    assert len({j.run_id for j in wide.jobs}) == 6
    assert wide.scenario(wide.jobs[-1]).gossip.k == 3
    assert wide.scenario(wide.jobs[-1]).run.seed == 8


def test_zipped_keys_vary_together_within_each_grid_value() -> None:
    the_plan = plan("fleet", ["gossip.fanout=1,2"], ["fleet.count=50,80", "run.rounds=5,7"])
    points = [dict(j.values) for j in the_plan.jobs]
    assert points == [
        {"gossip.fanout": 1, "fleet.count": 50, "run.rounds": 5},
        {"gossip.fanout": 1, "fleet.count": 80, "run.rounds": 7},
        {"gossip.fanout": 2, "fleet.count": 50, "run.rounds": 5},
        {"gossip.fanout": 2, "fleet.count": 80, "run.rounds": 7},
    ]


def test_a_2x3_grid_with_3_repeats_gives_18_runs_and_6_points(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s"
    assert main(["sweep", "rumor", *GRID, "--out", str(out), "--quiet"]) == 0
    results, summary = rows(out / "results.csv"), rows(out / "summary.csv")
    assert len(results) == 18 and len(summary) == 6
    assert {r["status"] for r in results} == {"ok"}
    assert {(r["gossip.k"], r["fleet.count"]) for r in summary} == {
        (k, n) for k in ("1", "2", "3") for n in ("60", "90")
    }
    first = summary[0]
    assert first["runs"] == first["ok"] == "3"
    low, mean, high = (
        float(first[f"results.residue.{s}"]) for s in ("ci95_low", "mean", "ci95_high")
    )
    assert low <= mean <= high
    assert len(list((out / "runs").glob("*/summary.json"))) == 18
    assert "18 of 18 runs ok over 6 points" in capsys.readouterr().err


def test_two_workers_give_the_same_tables_as_one(tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        argv = ["sweep", "rumor", *GRID, "--out", str(tmp_path / jobs), "--jobs", jobs, "--quiet"]
        assert main(argv) == 0
    for table in ("results.csv", "summary.csv"):
        one, two = rows(tmp_path / "1" / table), rows(tmp_path / "2" / table)
        assert without_wall_time(one) == without_wall_time(two)


def test_a_killed_sweep_redoes_only_what_did_not_finish(tmp_path: Path) -> None:
    """SIGKILL halfway (no chance to clean up), then the same command again."""
    out = tmp_path / "s"
    argv = [sys.executable, "-m", "swarm", "sweep", "fleet", "--grid", "gossip.fanout=1,2"]
    argv += ["--repeat", "5", "--set", "run.rounds=30", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("runs/*/summary.json"))) < 3:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")}
    assert 3 <= len(finished) < 10 and not (out / "results.csv").exists()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert all(p.stat().st_mtime_ns == ns for p, ns in finished.items())  # not redone
    results = rows(out / "results.csv")
    assert len(results) == 10 and {r["status"] for r in results} == {"ok"}


def test_sigterm_stops_a_parallel_sweep_and_its_workers(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "s"
    argv = [sys.executable, "-m", "swarm", "sweep", "fleet", "--grid", "gossip.fanout=1,2"]
    argv += ["--repeat", "6", "--set", "run.rounds=30", "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen([*argv, "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("runs/*/summary.json"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "swarm: interrupted" in err
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "workers outlived the sweep"
    done = subprocess.run([*argv, "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(rows(out / "results.csv")) == 12


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dask_cluster(tmp_path: Path):
    """A real Dask scheduler and two single-threaded workers, as processes on 127.0.0.1."""
    pytest.importorskip("distributed")
    bin_dir = Path(sys.executable).parent
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(bin_dir / "dask")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp_path}
    scheduler = [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    worker = [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
    worker += ["--host", "127.0.0.1", "--local-directory", str(tmp_path / "dask")]
    procs = [subprocess.Popen(scheduler, **quiet)]
    procs += [subprocess.Popen(worker, **quiet) for _ in range(2)]
    try:
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_dask_cluster_gives_the_rows_a_local_sweep_gives(tmp_path: Path, dask_cluster) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["sweep", "rumor", *GRID, "--out", str(local), "--quiet"]) == 0
    argv = ["sweep", "rumor", *GRID, "--out", str(remote), "--cluster", dask_cluster]
    assert main([*argv, "--quiet"]) == 0
    for table in ("results.csv", "summary.csv"):
        assert without_wall_time(rows(local / table)) == without_wall_time(rows(remote / table))
    assert len(list(remote.glob("runs/*/summary.json"))) == 18
    assert main([*argv, "--quiet"]) == 0  # all finished: nothing goes to the cluster again


def test_an_unreachable_cluster_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"  # nobody listens there
    argv = ["sweep", "rumor", "--cluster", address, "--out", str(tmp_path / "s"), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("swarm: error: cannot reach the Dask scheduler") and err.count("\n") == 1


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s"
    argv = ["sweep", "fleet", "--set", "fleet.workload=learn", "--set", "fleet.count=4"]
    argv += ["--set", "run.rounds=2", "--grid", "learn.shard_size=10,5000", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 1  # some run failed
    results = rows(out / "results.csv")
    assert [r["status"] for r in results] == ["ok", "failed"]
    assert "needs 20000 samples" in results[1]["error"] and results[0]["results.accuracy"]
    assert rows(out / "summary.csv")[1]["ok"] == "0"
    assert "1 of 2 runs ok" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--grid", "gossip.kk=1,2"], "unknown key gossip.kk"),
        (["--grid", "gossip.k="], "give at least one value"),
        (["--grid", "gossip.k=1,,2"], "no empty ones"),
        (["--grid", "gossip.k=0,2"], "gossip.k = 0: must be >= 1"),
        (["--grid", "gossip.k"], "expected section.key=V1,V2"),
        (["--grid", "k=1"], "the key must be section.key"),
        (["--grid", "run.seed=1,2"], "use --seed and --repeat"),
        (["--zip", "gossip.k=1,2", "--zip", "fleet.count=9,8,7"], "need as many values each"),
        (["--grid", "gossip.k=1,2", "--set", "gossip.k=3"], "gossip.k is given twice"),
        (["--set", "gossip.k=1,2"], "one value (vary it with --grid)"),
        (["--grid", "fleet.count=5,6,7", "--repeat", "400"], "1200 runs"),
        (["--grid", "fleet.count=5,6", "--max-runs", "1"], "over the limit of 1"),
    ],
)
def test_bad_input_is_one_line_before_any_run(tmp_path: Path, capsys, args, needle) -> None:
    out = tmp_path / "never"
    assert main(["sweep", "rumor", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarm: error:") and err.count("\n") == 1 and needle in err, err
    assert not out.exists()


def test_absurd_jobs_and_an_out_that_is_a_file_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["sweep", "rumor", "--jobs", "100000", "--out", str(tmp_path / "x")]) == 2
    assert "at most 256 worker processes" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["sweep", "rumor", "--out", str(blocker), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarm: error: --out") and err.count("\n") == 1, err


def test_yes_lifts_the_run_limit() -> None:
    with pytest.raises(SweepError, match="over the limit of 2"):
        plan("rumor", ["fleet.count=5,6,7"], max_runs=2)
    assert len(plan("rumor", ["fleet.count=5,6,7"], max_runs=3).jobs) == 3


def test_an_unknown_scenario_is_one_line(capsys) -> None:
    assert main(["sweep", "no-such-scenario", "--grid", "gossip.k=1"]) == 2
    assert "no-such-scenario" in capsys.readouterr().err
