"""Rows and events forged on a run's own topics never become its output.

Anyone who may publish on `swarm/<run>/metrics` or `swarm/<run>/events/#` (without
`--auth`, anyone at all) can inject well-formed envelopes there. The recorder writes only
what its own observer published and counts the rest in `dropped_spoofed`, so a forgery
can neither crash the run at its end nor set its round count, its NaNs or its events.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
from pathlib import Path

from swarm import wire
from swarm.cli import main

RUN = "forge"
FORGERIES = [
    ("metrics", {}),  # no round: ended the run with KeyError: 'round'
    ("metrics", {"round": 999_999, "time": 0.0}),  # became "rounds": 999999
    ("metrics", {"round": 3, "time": math.nan, "sent": math.nan}),  # NaN in --json
    ("event", {"event": "crash", "round": 2, "agent": "a001", "reason": "forged"}),
]


def _strict(text: str) -> object:
    """JSON as the standard has it: NaN and Infinity are not numbers there."""

    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


def _forge(port: int, stop: threading.Event, payloads: list[tuple[str, Path]]) -> int:
    pub = shutil.which("mosquitto_pub")
    assert pub
    sent = 0
    while not stop.is_set() and sent < 400:
        for topic, path in payloads:
            subprocess.run(
                [pub, "-p", str(port), "-q", "1", "-t", topic, "-f", str(path)],
                capture_output=True,
                timeout=10,
            )
            sent += 1
    return sent


def test_forged_rows_and_events_are_counted_and_never_recorded(mosquitto, tmp_path, capsys):
    payloads = []
    for i, (kind, body) in enumerate(FORGERIES):
        path = tmp_path / f"forged{i}"
        path.write_bytes(wire.encode(wire.Envelope(kind, "observer", i, 0.0, 0, body)))
        topic = f"swarm/{RUN}/metrics" if kind == "metrics" else f"swarm/{RUN}/events/crash"
        payloads.append((topic, path))
    stop = threading.Event()
    forger = threading.Thread(target=_forge, args=(mosquitto.port, stop, payloads))
    forger.start()
    out = tmp_path / "out"
    try:
        argv = ["run", "rumor", "--broker", mosquitto.url, "--agents", "30", "--json"]
        argv += ["--out", str(out), "--set", f"run.name={RUN}", "--set", "run.rounds=30"]
        argv += ["--set", "gossip.period=0.1", "--set", "run.stop_when_done=false"]
        status = main(argv)
    finally:
        stop.set()
        forger.join()
    assert status == 0
    summary = _strict(capsys.readouterr().out)
    assert summary == _strict((out / "summary.json").read_text())
    assert summary["rounds"] == 30
    rows = [_strict(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row.get("round") for row in rows] == list(range(31))
    assert (out / "events.jsonl").read_text() == ""
    assert summary["messages"]["received_foreign"] > 0  # counted, never recorded
