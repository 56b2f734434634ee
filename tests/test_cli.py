"""The `swarm` command as a user drives it: output channels, files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from swarm.cli import main


def test_run_json_prints_only_the_summary(capsys) -> None:
    assert main(["run", "--agents", "200", "--seed", "4", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert summary["agents"] == 200
    assert summary["seed"] == 4
    assert summary["scenario"]["fleet"]["count"] == 200


def test_run_prints_a_summary_table_and_writes_files(tmp_path, capsys) -> None:
    out_dir = tmp_path / "run"
    assert main(["run", "rumor", "--agents", "150", "--out", str(out_dir)]) == 0
    table = capsys.readouterr().out
    assert "results.residue" in table and "messages.sent" in table
    rows = (out_dir / "metrics.jsonl").read_text().splitlines()
    assert json.loads(rows[0])["round"] == 0
    assert json.loads((out_dir / "summary.json").read_text())["agents"] == 150


def test_quiet_prints_nothing(capsys) -> None:
    assert main(["run", "averaging", "--agents", "100", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--set", "gossip.fanuot=2"], "did you mean 'fanout'"),
        (["run", "nonexistent"], "no scenario 'nonexistent'"),
        (["run", "--set", "network.topology=hypercube"], "power-of-two"),
        (["run", "--set", "oops"], "--set 'oops'"),
        (["run", "--agents", "1"], "fleet.count = 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_out_must_be_a_directory(tmp_path, capsys) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert main(["run", "--agents", "50", "--out", str(not_a_dir)]) == 2
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "--seed", "-1"], ["run", "--agents", "x"], ["fly"], []])
def test_argument_errors_exit_2(argv) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_scenarios_lists_and_prints(capsys) -> None:
    assert main(["scenarios"]) == 0
    listing = capsys.readouterr().out
    for name in ("fleet", "rumor", "averaging"):
        assert name in listing
    assert main(["scenarios", "rumor"]) == 0
    text = capsys.readouterr().out
    assert '[gossip]\nprotocol = "rumor"' in text


def test_bench_lists_and_rejects_unknown_names(capsys) -> None:
    assert main(["bench", "--list"]) == 0
    assert "embedded-throughput" in capsys.readouterr().out
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


def test_bench_quick_json_has_names_figures_and_ratios(capsys) -> None:
    assert main(["bench", "--quick", "--json"]) == 0
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(results) == {
        "embedded-throughput",
        "agents-memory",
        "virtual-speedup",
        "mqtt-throughput",
        "mqtt-agents",
        "shard-scaling",
        "compression",
        "learning-speed",
        "learning-fleet",
        "wire-overhead",
        "dashboard",
    }
    dashboard = results["dashboard"]
    assert dashboard["key_to_action_ms"]["max"] > 0 and dashboard["fleet_ratio"] > 0
    assert results["compression"]["int8_bytes_factor"] == 4.0
    # cloud-titan's ring, envelopes included: fp16 and int8 keep most of their promise.
    assert results["compression"]["allreduce_fp16_wire_factor"] >= 1.8
    assert results["compression"]["allreduce_int8_wire_factor"] >= 3.3
    assert results["shard-scaling"]["ratio"] > 0
    assert results["mqtt-agents"]["connect_s"] > 0
    assert results["mqtt-throughput"]["ratio"] > 0
    assert results["embedded-throughput"]["ratio"] > 0
    assert results["agents-memory"]["kib_per_agent"] > 0
    assert results["virtual-speedup"]["speedup"] > 1
    learning = results["learning-speed"]
    assert learning["gossip_ratio"] > 0 and learning["fedavg_ratio"] > 0
    fleet = results["learning-fleet"]
    assert fleet["agents"] == 500 and fleet["rounds"] == 10 and fleet["accuracy"] > 0.3
    # Every kind a workload sends shows up, and agents' headers keep within 16 bytes.
    wire_kinds = results["wire-overhead"]["kinds"]
    assert {"push", "pull", "exchange", "rumor", "feedback", "push-sum", "avg-offer"} <= set(
        wire_kinds
    )
    assert {"model", "fit", "update", "chunk", "hazard", "mesh", "metrics"} <= set(wire_kinds)
    assert results["wire-overhead"]["worst_agent_kind_mean_header_bytes"] <= 16


def test_python_dash_m_and_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "swarm", "run", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "--set KEY=VALUE" in done.stdout and "examples:" in done.stdout


def test_an_unreadable_or_empty_password_file_is_a_one_line_error(tmp_path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path in (tmp_path / "missing", empty):
        argv = ["run", "--broker", "mqtt://u@127.0.0.1:1", "--password-file", str(path)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("swarm: error: --password-file") and err.count("\n") == 1
