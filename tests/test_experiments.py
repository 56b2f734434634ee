"""Every experiment's command stays runnable: its sweep plans (every scenario built and
checked, no run made) and its scripts answer --help."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from swarm.cli import _parser, sweep_plan

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in (ROOT / "experiments").glob("*/README.md"))


def commands(readme: Path) -> list[list[str]]:
    """The shell commands in the README's sh blocks, continuation lines joined."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", readme.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found.append(words)
    return found


def test_every_experiment_folder_has_a_command() -> None:
    assert len(FOLDERS) >= 5
    for folder in FOLDERS:
        assert commands(folder / "README.md"), folder.name


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_the_commands_plan_or_answer_help(folder: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    for words in commands(folder / "README.md"):
        if words[:2] == ["swarm", "sweep"]:
            assert sweep_plan(_parser().parse_args([*words[1:], "--yes"])).jobs
        elif words[0] == "python":
            done = subprocess.run(
                [sys.executable, words[1], "--help"], capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, done.stderr
        else:
            assert words[:2] == ["swarm", "report"], words
