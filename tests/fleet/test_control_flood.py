"""A flood on a run's control topics neither steers it nor fills events.jsonl.

20,000 garbage control messages once added 16,667 refusal events and held the rounds;
now the controller takes CONTROLS_PER_SECOND a second, counts the rest in
`controls.limited`, and says so in one event per second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

from swarm.broker.server import MosquittoServer
from swarm.cli import main
from swarm.fleet.control import CONTROLS_PER_SECOND

RUN = "flooded"


def _flood(port: int, count: int) -> None:
    pub = shutil.which("mosquitto_pub")
    assert pub, "mosquitto_pub is missing: apt-get install mosquitto-clients"
    lines = "".join(f"garbage {i}\n" for i in range(count))
    topic = f"swarm/{RUN}/control/pause"
    subprocess.run([pub, "-p", str(port), "-t", topic, "-l"], input=lines.encode(), timeout=60)


def test_a_control_flood_is_limited_and_counted(mosquitto: MosquittoServer, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", "rumor", "--broker", mosquitto.url, "--agents", "30", "--json"]
    argv += ["--out", str(out), "--set", f"run.name={RUN}", "--set", "run.rounds=40"]
    argv += ["--set", "gossip.period=0.1", "--set", "run.stop_when_done=false"]
    flood = threading.Timer(1.0, _flood, args=(mosquitto.port, 5000))
    flood.start()
    try:
        assert main(argv) == 0
    finally:
        flood.join()
    summary = json.loads(capsys.readouterr().out)
    assert summary["rounds"] == 40
    controls = summary["controls"]
    assert controls["applied"] == 0
    assert controls["limited"] > 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    answers = [e for e in events if e["event"] == "control"]
    seconds = summary["wall_time"] + 2
    assert len(answers) <= (CONTROLS_PER_SECOND + 1) * seconds
    assert any("control messages in a second" in e["detail"] for e in answers)
    # What reached the controller was garbage, malformed or limited: each is counted.
    assert summary["messages"]["dropped_malformed"] + controls["limited"] > 0
