"""Control commands checked without a fleet: the rules a key, a message and a script share."""

from __future__ import annotations

import pytest

from swarm.commands import COMMANDS, ControlError, parse


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        ("slow", {"fraction": 0.5}, "factor = None"),
        ("slow", {"fraction": 0.5, "factor": 0}, "factor = 0"),
        ("slow", {"fraction": 0.5, "factor": float("inf")}, "factor = inf"),
        ("slow", {"factor": 2}, "fraction = None"),
        ("latency", {}, "latency = None"),
        ("latency", {"latency": -0.1}, r"latency = -0.1: need a number in \[0, 3600\]"),
        ("latency", {"latency": "fast"}, "latency = 'fast'"),
        ("latency", {"latency": 1, "jitter": 2}, "unknown argument 'jitter'"),
        ("heal", {"now": True}, "unknown argument 'now'"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(name, body, problem) -> None:
    with pytest.raises(ControlError, match=problem):
        parse(name, body)


def test_good_commands_come_back_with_every_argument_named() -> None:
    assert parse("slow", {"fraction": 1, "factor": 10}).args == {
        "fraction": 1.0,
        "kind": None,
        "region": None,
        "factor": 10.0,
    }
    assert parse("latency", {"latency": 0}).args == {"latency": 0.0}
    assert parse("heal", None).args == {}


def test_parsing_a_parsed_command_again_gives_the_same_command() -> None:
    """The script and the controller both parse: a second parse must be a no-op."""
    samples = {
        "crash": {"fraction": 0.3, "region": "r1"},
        "slow": {"fraction": 0.2, "factor": 3, "kind": "gpu"},
        "partition": {"groups": [["r0"], ["r1", "r2"]]},
        "latency": {"latency": 0.25},
        "speed": {"speed": 10},
    }
    for name, body in samples.items():
        once = parse(name, body)
        assert parse(name, once.args) == once
    assert set(samples) <= set(COMMANDS)
