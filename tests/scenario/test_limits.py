"""Caps on every dimension of a scenario: rounds however they are asked for, file size,
nesting. Each is a one-line scenario error, never a hang or a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm.cli import main
from swarm.scenario import MAX_ROUNDS, MAX_SCENARIO_BYTES, ScenarioError, load


@pytest.mark.parametrize(
    "overrides",
    [
        ["run.duration=10", "gossip.period=1e-300"],  # 10^301 rounds
        ["run.duration=1e300", "run.stop_when_done=false"],
        [f"run.duration={MAX_ROUNDS + 1}", "gossip.period=1"],
    ],
)
def test_a_duration_cannot_ask_for_more_rounds_than_the_cap(overrides: list[str]) -> None:
    with pytest.raises(ScenarioError, match=r"run\.duration = .* rounds; at most 10,000,000"):
        load("fleet", overrides)


def test_a_duration_at_the_cap_is_accepted() -> None:
    assert load("fleet", [f"run.duration={MAX_ROUNDS}", "gossip.period=1"]).max_rounds == (
        MAX_ROUNDS
    )


def test_a_deeply_nested_scenario_file_is_a_scenario_error(tmp_path: Path, capsys) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["run", str(deep), "--quiet"]) == 2
    assert "deep.toml: values are nested too deeply" in capsys.readouterr().err


def test_a_deeply_nested_override_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match=r"--set gossip\.fanout: the value is nested"):
        load("fleet", ["gossip.fanout=" + "[" * 20_000 + "]" * 20_000])


def test_an_oversized_scenario_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("#" * (MAX_SCENARIO_BYTES + 1))
    with pytest.raises(ScenarioError, match=r"larger than 1048576 bytes"):
        load(big)
