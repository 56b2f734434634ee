"""SIGINT and SIGTERM end a run with what it recorded, marked incomplete.

A run stopped by a signal used to leave no summary (and, on a broker, an empty
metrics.jsonl after a wait of ten seconds). Now it stops at once, shows and writes a
summary with `"complete": false` naming the signal and the round, and exits 128 + signal.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from swarm.broker.server import MosquittoServer


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "swarm", "run", "rumor", "--json", "--out", str(out)]
    argv += ["--set", "run.stop_when_done=false", *extra]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, out


def _wait_for_rows(process: subprocess.Popen[str], out: Path, rows: int) -> None:
    deadline = time.monotonic() + 60
    metrics = out / "metrics.jsonl"
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= rows:
            return
        time.sleep(0.05)
    pytest.fail(f"no {rows} rows within 60 s: {process.poll()=}")


def _stopped(process: subprocess.Popen[str], signum: signal.Signals, within: float):
    process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"still running {within} s after {signum.name}")
    return process.returncode, stdout, stderr


def _check_partial(stdout: str, out: Path, signum: signal.Signals) -> dict:
    summary = json.loads(stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False
    assert summary["incomplete"].startswith(f"stopped by {signum.name} in round ")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["round"] for row in rows] == list(range(summary["rounds"] + 1))
    assert summary["rounds"] > 0
    return summary


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_an_embedded_run_with_a_partial_summary(tmp_path, signum) -> None:
    process, out = _start(tmp_path, "--agents", "2000", "--set", "run.rounds=100000")
    _wait_for_rows(process, out, 5)
    status, stdout, stderr = _stopped(process, signum, within=30)
    assert status == 128 + signum
    _check_partial(stdout, out, signum)
    assert stderr.strip().splitlines()[-1].startswith(f"swarm: error: stopped by {signum.name}")


@pytest.mark.parametrize("connections", ["per-agent", "shared"])
def test_ctrl_c_ends_a_broker_run_at_once(mosquitto: MosquittoServer, tmp_path, connections):
    process, out = _start(
        tmp_path,
        "--broker",
        mosquitto.url,
        "--agents",
        "100",
        "--set",
        "gossip.period=0.2",
        "--set",
        "run.rounds=1000",
        "--set",
        f"broker.connections={connections}",
    )
    _wait_for_rows(process, out, 5)
    # Within one second on a quiet machine; the bound here only catches a hang.
    status, stdout, _ = _stopped(process, signal.SIGINT, within=8)
    assert status == 130
    _check_partial(stdout, out, signal.SIGINT)


def test_sigterm_ends_a_sharded_run_and_its_workers(mosquitto: MosquittoServer, tmp_path):
    process, out = _start(
        tmp_path,
        "--broker",
        mosquitto.url,
        "--shards",
        "2",
        "--agents",
        "60",
        "--set",
        "gossip.period=0.1",
        "--set",
        "run.rounds=1000",
    )
    _wait_for_rows(process, out, 5)
    workers = psutil.Process(process.pid).children(recursive=True)
    assert len(workers) == 2
    status, stdout, _ = _stopped(process, signal.SIGTERM, within=15)
    assert status == 128 + signal.SIGTERM
    summary = _check_partial(stdout, out, signal.SIGTERM)
    assert summary["shards"]["count"] == 2
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []


def test_ctrl_c_during_the_clean_comparison_keeps_the_attacked_run(monkeypatch, tmp_path):
    from swarm.run import runner
    from swarm.scenario import from_dict

    scenario = from_dict(
        {"run": {"rounds": 5}, "fleet": {"count": 20}, "sybil": {"count": 2, "behaviour": "flood"}}
    )
    summary = runner.run_scenario(from_dict({**scenario.to_dict(), "sybil": {"count": 0}}))

    def interrupted(*args, **kwargs):
        raise runner.RunInterrupted("stopped by SIGINT in round 3 of 5", signal.SIGINT)

    monkeypatch.setattr(runner, "run_scenario", interrupted)
    runner.compare_clean(summary, scenario)
    assert summary["complete"] is False
    assert "(the run without Sybils, for comparison)" in summary["incomplete"]
    with pytest.raises(runner.RunInterrupted) as caught:
        runner.finish(tmp_path, summary, None, None)
    assert caught.value.status == 130
    assert json.loads((tmp_path / "summary.json").read_text())["complete"] is False


def test_a_malformed_run_key_is_an_argument_error(monkeypatch, capsys) -> None:
    from swarm.cli import main

    monkeypatch.setenv("SWARM_RUN_KEY", "not hex")
    assert main(["run", "rumor", "--broker", "mqtt://127.0.0.1:1", "--shards", "2"]) == 2
    assert "SWARM_RUN_KEY is not hexadecimal" in capsys.readouterr().err
