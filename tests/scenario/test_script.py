"""`[[faults.script]]`: entries are checked at load time, one line naming the entry's key."""

from __future__ import annotations

import pytest

from swarm.scenario import ScenarioError, load, loads
from swarm.scenario.script import script

BASE = """
[fleet]
count = 20
mix = {gpu = 1.0, taxi = 1.0}
regions = ["north", "south"]
"""


def scripted(*entries: str) -> str:
    return BASE + "".join(f"\n[[faults.script]]\n{e}\n" for e in entries)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('command = "heal"', r"faults.script\[0\].at: missing"),
        ("at = 3", r"faults.script\[0\].command: missing"),
        ('at = -1\ncommand = "heal"', r"faults.script\[0\].at = -1"),
        ('at = "soon"\ncommand = "heal"', r"faults.script\[0\].at = 'soon'"),
        ('at = nan\ncommand = "heal"', r"faults.script\[0\].at = nan"),
        ('at = 1\ncommand = "crsh"', "did you mean 'crash'"),
        ('at = 1\ncommand = "pause"', r"faults.script\[0\].command = 'pause': allowed are"),
        ("at = 1\ncommand = 7", r"faults.script\[0\].command = 7"),
        ('at = 1\ncommand = "crash"\nfraction = 1.5', r"\[0\]: fraction = 1.5"),
        ('at = 1\ncommand = "crash"\nfraction = 0.5\nkind = "tpu"', r"kind = 'tpu': no such"),
        ('at = 1\ncommand = "crash"\nfraction = 0.5\nkind = "glasses"', "the fleet has gpu, taxi"),
        ('at = 1\ncommand = "crash"\nfraction = 0.5\nregion = "east"', "no region 'east'"),
        ('at = 1\ncommand = "partition"\ngroups = [["north", "west"]]', "no region 'west'"),
        ('at = 1\ncommand = "slow"\nfraction = 0.5', "factor = None"),
        ('at = 1\ncommand = "heal"\nsoon = true', "unknown argument 'soon'"),
        ('at = 1\ncommand = "aggregator"\nrule = "medain"', "did you mean 'median'"),
        ('at = 1\ncommand = "inject"\ncount = 2', "reserves none"),
    ],
)
def test_a_bad_entry_fails_at_load_naming_it(entry: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem):
        loads(scripted(entry))


def test_the_second_entry_is_named_when_it_is_the_bad_one() -> None:
    with pytest.raises(ScenarioError, match=r"faults.script\[1\]"):
        loads(scripted('at = 1\ncommand = "heal"', 'at = 2\ncommand = "heal"\nx = 1'))


def test_not_a_list_of_tables_is_refused() -> None:
    with pytest.raises(ScenarioError, match="expected a list of tables"):
        load("fleet", ["faults.script=[1, 2]"])
    with pytest.raises(ScenarioError, match="expected a list of tables"):
        load("fleet", ["faults.script=crash"])


def test_entries_fire_in_time_order_and_ties_keep_the_written_order() -> None:
    s = loads(
        scripted(
            'at = 9\ncommand = "heal"',
            'at = 2\ncommand = "crash"\nfraction = 0.1',
            'at = 2\ncommand = "latency"\nlatency = 0.5',
        )
    )
    assert [(e.at, e.command.name, e.key) for e in script(s)] == [
        (2.0, "crash", "faults.script[1]"),
        (2.0, "latency", "faults.script[2]"),
        (9.0, "heal", "faults.script[0]"),
    ]


def test_a_script_survives_the_round_trip_through_toml() -> None:
    s = loads(scripted('at = 2.5\ncommand = "partition"\ngroups = [["north"], ["south"]]'))
    assert loads(s.to_toml()) == s
    assert s.faults.script == [
        {"at": 2.5, "command": "partition", "groups": [["north"], ["south"]]}
    ]
