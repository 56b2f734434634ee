"""`swarm decode`: the wire made readable by standard tools."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np

from swarm import decode, wire
from swarm.broker.server import MosquittoServer
from swarm.cli import main
from swarm.run.runner import run_scenario
from swarm.scenario import from_dict


def payload() -> bytes:
    return wire.pack("push-sum", "a01", 3, 1.5, 1, [np.arange(3.0), 0.5])


def test_a_payload_file_becomes_one_json_line(tmp_path, capsys) -> None:
    path = tmp_path / "p.bin"
    path.write_bytes(payload())
    assert main(["decode", str(path)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["envelope"]["kind"] == "push-sum"
    assert record["envelope"]["body"][0]["ndarray"] == {
        "dtype": "<f8",
        "shape": [3],
        "data": [0.0, 1.0, 2.0],
    }


def test_garbage_on_stdin_is_reported_with_its_reason_and_exit_1() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "swarm", "decode"], input=b"\x93\x01", capture_output=True
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["malformed"]["reason"] == "not-msgpack"


def test_hex_lines_as_mosquitto_sub_prints_them() -> None:
    lines = [f"swarm/r/agent/a1/inbox {payload().hex()}", "", "nothex!", payload().hex()]
    records = list(decode.from_hex_lines(lines))
    assert records[0]["topic"] == "swarm/r/agent/a1/inbox"
    assert records[0]["envelope"]["src"] == "a01"
    assert records[1]["malformed"]["reason"] == "not-hex" and records[1]["line"] == 3
    assert "topic" not in records[2] and records[2]["envelope"]["seq"] == 3


def test_missing_file_is_exit_2(tmp_path, capsys) -> None:
    assert main(["decode", str(tmp_path / "none.bin")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_live_decoding_follows_a_run_on_mosquitto(mosquitto: MosquittoServer, capsys) -> None:
    scenario = from_dict(
        {"run": {"name": "live", "rounds": 30}, "fleet": {"count": 20}, "gossip": {"period": 0.05}}
    )
    argv = ["decode", "--broker", mosquitto.url, "--topic", "swarm/live/metrics", "--count", "3"]
    result: list[int] = []
    follower = threading.Thread(target=lambda: result.append(main(argv)))
    follower.start()
    time.sleep(1.0)  # the follower subscribes meanwhile; if late, it sees later rounds
    run_scenario(scenario, broker_url=mosquitto.url)
    follower.join(timeout=30)
    assert result == [0]
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rounds = [r["envelope"]["body"]["round"] for r in rows]
    assert len(rounds) == 3 and rounds == list(range(rounds[0], rounds[0] + 3))
    assert {r["topic"] for r in rows} == {"swarm/live/metrics"}
