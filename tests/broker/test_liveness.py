"""A broker that goes away for good ends the run, incomplete, instead of hanging it.

Found by killing mosquitto 8 s into a per-agent run: the run waited forever; in shared
mode it exited 0 as if nothing had happened. Now, past `broker.grace` seconds without
the broker, the run ends with exit status 1, one line saying why, and a summary marked
`"complete": false` that is still printed and written.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from swarm.broker.server import MosquittoServer
from swarm.cli import main


@pytest.mark.parametrize("connections", ["per-agent", "shared", "sharded"])
def test_a_broker_gone_for_good_ends_the_run_incomplete(connections, tmp_path, capsys):
    server = MosquittoServer()
    server.start()
    killer = threading.Timer(2.0, server.stop)
    argv = ["run", "fleet", "--broker", server.url, "--agents", "40", "--json"]
    argv += ["--out", str(tmp_path / "out"), "--set", "gossip.period=0.2"]
    argv += ["--set", "run.rounds=200", "--set", "run.stop_when_done=false"]
    argv += ["--set", "broker.grace=1.5"]
    if connections == "sharded":  # the coordinator and both workers lose it
        argv += ["--shards", "2"]
        killer = threading.Timer(7.0, server.stop)  # after the workers' start delay
    else:
        argv += ["--set", f"broker.connections={connections}"]
    started = time.monotonic()
    killer.start()
    try:
        status = main(argv)
    finally:
        killer.cancel()
        server.stop()
    took = time.monotonic() - started
    captured = capsys.readouterr()
    assert status == 1
    assert "swarm: error: lost the broker at mqtt://127.0.0.1" in captured.err
    assert "broker.grace" in captured.err
    assert captured.err.count("\n") == 1  # the client's own socket errors stay quiet
    summary = json.loads(captured.out)
    assert summary["complete"] is False and "lost the broker" in summary["incomplete"]
    assert 0 < summary["rounds"] < 200
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    assert took < 30  # 200 rounds would take 40 s; a hang, forever
