"""A fifth workload from one registry line: recorded, sharded, decoded and on screen.

`max_gossip` (beside this file) is a workload that swarm does not ship. The environment
variable SWARM_WORKLOADS registers it, for this process and for the worker processes a
sharded run starts; nothing else in swarm names it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarm import workloads
from swarm.cli import main
from swarm.run.live import LocalRun
from swarm.run.runner import run_scenario
from swarm.run.shards import run_sharded
from swarm.scenario import ScenarioError, load
from swarm.tui import build_app

HERE = Path(__file__).parent
LINE = "max=max_gossip:SPEC"


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workloads.ENVIRONMENT, LINE)
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), path])))
    monkeypatch.syspath_prepend(str(HERE))


def scenario(name: str = "max", *overrides: str, **direct):
    base = [
        "fleet.workload=max",
        "fleet.count=120",
        "network.topology=regular",
        "max.values=500",
        "run.rounds=40",
        *overrides,
    ]
    return load("fleet", [f"run.name={name}", *base], **direct)


def test_the_registry_line_makes_it_a_workload_like_the_others() -> None:
    assert "max" in workloads.names()
    assert workloads.spec("max").kinds == ("max",)
    with pytest.raises(ScenarioError, match=r"max\.values = 0: must be >= 1"):
        scenario("max", "max.values=0")


def test_it_runs_end_to_end_recorded_and_byte_identical(tmp_path: Path) -> None:
    first = run_scenario(scenario(), out_dir=tmp_path / "a")
    run_scenario(scenario(), out_dir=tmp_path / "b")
    metrics = (tmp_path / "a" / "metrics.jsonl").read_bytes()
    assert metrics == (tmp_path / "b" / "metrics.jsonl").read_bytes()
    rows = [json.loads(line) for line in metrics.splitlines()]
    assert rows[-1]["agreed_fraction"] == 1.0  # stopped when done, not at round 40
    assert rows[-1]["round"] == first["results"]["rounds_to_agree"] < 40
    assert first["results"]["agreed_fraction"] == 1.0
    assert first["messages"]["dropped_malformed"] == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["scenario"]["max"] == {"values": 500}


def test_it_shards_over_two_worker_processes(mosquitto, tmp_path: Path) -> None:
    sharded = scenario("max-shards", "gossip.period=0.1", "broker.connections=shared")
    summary = run_sharded(sharded, mosquitto.url, 2, out_dir=tmp_path)
    assert summary["shards"] == {"count": 2, "dead": []}
    assert summary["results"]["agreed_fraction"] == 1.0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["agreed"] == 120  # the two shards' parts merged into one row


def test_its_messages_decode_in_a_fresh_interpreter() -> None:
    program = (
        "from swarm import decode, wire\n"
        "payload = wire.encode(wire.Envelope('max', 'a1', 0, 0.0, 0, 7))\n"
        "print(decode.to_line(decode.describe(payload)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout)["envelope"]["kind"] == "max"


def test_the_cli_lists_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "--workloads"]) == 0
    out = capsys.readouterr().out
    assert "│ max " in out and "[max]" in out


def test_the_dashboard_shows_it() -> None:
    source = LocalRun(scenario("max-live", "run.rounds=100000", "run.stop_when_done=false"))
    app = build_app(source)

    async def session() -> None:
        async with app.run_test() as pilot:
            deadline = time.monotonic() + 30
            while len(app.view.rows) < 3 or not app.view.status:
                assert time.monotonic() < deadline, "the dashboard never showed the run"
                await pilot.pause(0.05)
            assert app.view.workload == "max"
            assert app.view.status["top"] > 0  # the workload's own live status
            shown = {p.id for p in app.query(".panel") if p.display}
            assert "fleet" in shown and "traffic" in shown
            assert not shown & {"learning", "hazards", "gossip", "consensus"}
            await pilot.press("f")  # fanout +1: the workload's cores take it
            deadline = time.monotonic() + 30
            while (app.view.status or {}).get("fanout") != 2:
                assert time.monotonic() < deadline, "the fanout control was not applied"
                await pilot.pause(0.05)
            await pilot.press("q")

    asyncio.run(session())
    assert not source.running
