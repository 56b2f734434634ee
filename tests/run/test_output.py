"""A run's output survives a careless operator and a full disk.

The full-disk test mounts a real 64 KiB tmpfs (root only); where the machine cannot
mount one it is skipped and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm.cli import main
from swarm.fleet.recorder import JsonLines
from swarm.run.runner import write_summary


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of 64 KiB, unmounted afterwards."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_still_shows_the_summary_and_leaves_whole_lines(tiny_disk, capsys):
    out = tiny_disk / "run"
    argv = ["run", "averaging", "--agents", "300", "--set", "run.rounds=400"]
    argv += ["--set", "run.stop_when_done=false", "--json", "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # printed whole, before the disk was touched
    assert summary["rounds"] == 400
    assert "No space left on device" in captured.err and "summary is on stdout" in captured.err
    assert captured.err.count("\n") == 1
    text = (out / "metrics.jsonl").read_text()
    assert text.endswith("\n")  # cut back to its last whole line
    rounds = [json.loads(line)["round"] for line in text.splitlines()]
    assert rounds == list(range(len(rounds))) and 0 < len(rounds) < 401
    assert not (out / ".summary.json.partial").exists()


def test_json_lines_keep_the_first_error_and_write_no_more(tmp_path: Path) -> None:
    with open("/dev/full", "w", encoding="utf-8") as full:
        lines = JsonLines(full)
        lines.write({"round": 0})
        assert lines.error is not None and lines.error.errno == 28
        lines.write({"round": 1})  # no second error, no exception


def test_an_earlier_run_is_not_overwritten_without_force(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["run", "rumor", "--agents", "50", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    first = (out / "summary.json").read_text()
    assert main([*argv, "--seed", "9"]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "--force" in err
    assert (out / "summary.json").read_text() == first
    assert main([*argv, "--seed", "9", "--force"]) == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 9


def test_a_summary_that_does_not_fit_leaves_the_old_one_whole(tiny_disk: Path) -> None:
    write_summary(tiny_disk, {"rounds": 1})
    filler = tiny_disk / "filler"
    with pytest.raises(OSError), filler.open("wb") as file:
        while True:
            file.write(b"x" * 4096)
            file.flush()
    with pytest.raises(OSError):
        write_summary(tiny_disk, {"rounds": 2, "padding": "y" * 20_000})
    assert json.loads((tiny_disk / "summary.json").read_text()) == {"rounds": 1}
    assert not (tiny_disk / ".summary.json.partial").exists()
