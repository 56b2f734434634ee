"""The generated mosquitto: each role publishes only what it needs, and failures say why.

mosquitto drops a refused QoS 0 publish without a word, so the ACL tests watch what
arrives: a publisher sends the topics under test, then a sentinel on its own inbox
(which every role may write), and a subscriber collects until the sentinel. The broker
forwards one client's messages in order, so whatever was allowed arrived before it.
"""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from swarm.broker.server import (
    COORDINATOR_CONTROLS,
    MosquittoServer,
    PortInUse,
    acl_text,
    free_port,
)
from swarm.fleet.control import COMMANDS, SHARD_PROTOCOL

WAIT = 10.0  # seconds: only a broken broker or ACL ever waits this long
LIVE = tuple(COMMANDS)


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoServer]:
    """Users as `swarm broker --auth fleet` makes them: one per role."""
    users = {"fleet": "f-secret", "fleet-operator": "o-secret", "fleet-agent": "a-secret"}
    roles = {"fleet-operator": "operator", "fleet-agent": "agent"}
    with MosquittoServer(users=users, roles=roles, live_controls=LIVE) as server:
        yield server


def _client(server: MosquittoServer, user: str | None, client_id: str) -> tuple[mqtt.Client, int]:
    """A connected paho client and the broker's CONNACK reason code (0: accepted)."""
    answer: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if user is not None:
        client.username_pw_set(user, server.users[user])
    client.on_connect = lambda _c, _u, _f, reason, _p: answer.put(reason.value)
    client.connect(server.host, server.port)
    client.loop_start()
    return client, answer.get(timeout=WAIT)


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def delivered(server: MosquittoServer, user: str, attempts: list[str]) -> set[str]:
    """Which of `attempts`, published by `user`, reach a subscriber to swarm/#."""
    arrived: queue.Queue[str] = queue.Queue()
    subscribed: queue.Queue[None] = queue.Queue()
    watcher, status = _client(server, "fleet", "watcher")
    assert status == 0
    watcher.on_message = lambda _c, _u, message: arrived.put(message.topic)
    watcher.on_subscribe = lambda *_: subscribed.put(None)
    watcher.subscribe("swarm/#")
    subscribed.get(timeout=WAIT)
    publisher, status = _client(server, user, "pub1")
    assert status == 0
    sentinel = "swarm/r/agent/a1/inbox/pub1"
    try:
        for topic in [*attempts, sentinel]:
            publisher.publish(topic, b"x").wait_for_publish(WAIT)
        seen: set[str] = set()
        while (topic := arrived.get(timeout=WAIT)) != sentinel:
            seen.add(topic)
        return seen
    finally:
        _close(publisher)
        _close(watcher)


def test_an_operator_turns_live_knobs_only(broker: MosquittoServer) -> None:
    knobs = [f"swarm/r/control/{name}" for name in LIVE]
    forged = ["swarm/r/metrics", "swarm/r/status", "swarm/r/events/crash", "swarm/r/region/n"]
    forged += [f"swarm/r/control/{name}" for name in COORDINATOR_CONTROLS]
    forged += ["swarm/r/agent/a1/inbox/r.a2", "swarm/r/shard/0/result", "swarm/r/control/x"]
    assert delivered(broker, "fleet-operator", [*forged, *knobs]) == set(knobs)


def test_an_agent_speaks_for_itself_but_never_steers(broker: MosquittoServer) -> None:
    own = ["swarm/r/region/north", "swarm/r/events/lost", "swarm/r/shard/1/bundle/pub1"]
    own += [f"swarm/r/shard/1/{report}" for report in ("metrics", "result", "status")]
    forged = ["swarm/r/control/stop", "swarm/r/control/pause", "swarm/r/metrics"]
    forged += ["swarm/r/status", "swarm/r/agent/a1/inbox/r.a2", "swarm/r/shard/1/bundle/other"]
    assert delivered(broker, "fleet-agent", [*forged, *own]) == set(own)


def test_the_fleet_user_runs_a_run_but_leaves_the_knobs(broker: MosquittoServer) -> None:
    needed = ["swarm/r/metrics", "swarm/r/status", "swarm/r/events/crash", "swarm/r/region/n"]
    needed += [f"swarm/r/control/{name}" for name in ("scenario", "start", "stop")]
    needed += [f"swarm/r/shard/0/{report}" for report in ("metrics", "result", "status")]
    forged = ["swarm/r/control/pause", "swarm/r/agent/a1/inbox/r.a2"]
    assert delivered(broker, "fleet", [*forged, *needed]) == set(needed)


def test_anonymous_clients_and_wrong_passwords_are_refused(broker: MosquittoServer) -> None:
    anonymous, status = _client(broker, None, "nobody")
    _close(anonymous)
    assert status != 0
    stranger = MosquittoServer(host=broker.host, port=broker.port, users={"fleet": "wrong"})
    impostor, status = _client(stranger, "fleet", "impostor")
    _close(impostor)
    assert status != 0


def test_each_role_has_its_url_and_the_fleet_url_is_the_default(broker: MosquittoServer) -> None:
    assert (
        broker.url
        == broker.url_for("fleet")
        == f"mqtt://fleet:f-secret@{broker.host}:{broker.port}"
    )
    assert broker.url_for("operator").startswith("mqtt://fleet-operator:o-secret@")
    assert broker.url_for("agent").startswith("mqtt://fleet-agent:a-secret@")


def test_a_single_user_is_the_fleet() -> None:
    server = MosquittoServer(users={"solo": "pw"})
    assert server.url_for("fleet") == server.url
    assert "user solo\ntopic write swarm/+/control/start\n" not in server.acl_text()
    assert "user solo\ntopic write swarm/+/metrics\n" in server.acl_text()
    with pytest.raises(ValueError, match="no user has the role 'operator'"):
        server.url_for("operator")


def test_the_coordinators_controls_are_the_shard_protocols() -> None:
    assert set(COORDINATOR_CONTROLS) == SHARD_PROTOCOL
    assert not SHARD_PROTOCOL & set(COMMANDS)  # an operator cannot start or stop a run


@pytest.mark.parametrize(
    ("roles", "live", "error"),
    [
        ({"u": "operator"}, (), "pass live_controls"),
        ({"u": "admin"}, LIVE, "unknown role 'admin'"),
        ({"u": "operator"}, ("a/b",), "not one topic level"),
    ],
)
def test_a_bad_role_setup_is_refused_before_anything_starts(roles, live, error) -> None:
    with pytest.raises(ValueError, match=error):
        acl_text(roles, live)


def test_swarm_broker_auth_prints_one_url_per_role() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "swarm", "broker", "--port", str(port), "--auth", "lab:pw"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "Ctrl-C stops it.":
            line = process.stdout.readline()
            assert line, f"swarm broker ended early: {process.communicate(timeout=10)}"
            lines.append(line.strip())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "\n".join(lines)
    assert lines[0] == f"mosquitto listening on mqtt://lab:pw@127.0.0.1:{port}"
    for role, user, use in (
        ("fleet", "lab", "swarm run"),
        ("operator", "lab-operator", "swarm control"),
        ("agent", "lab-agent", "swarm worker"),
    ):
        [at] = [i for i, line in enumerate(lines) if line.startswith(f"{role} ")]
        assert f"mqtt://{user}:" in lines[at]
        assert use in lines[at + 1]
    assert "-u lab-operator" in text  # watching needs no more than reading


def test_swarm_broker_on_a_taken_port_says_so_and_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "swarm", "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "--port" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "mqtt://" not in done.stdout


def test_a_port_bound_but_not_yet_listening_is_in_use_too() -> None:
    """The race the up-front probe cannot see: mosquitto's bind error is recognised."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port}"):
            MosquittoServer(port=port).start()


def test_mosquittos_own_words_say_why_it_stopped() -> None:
    with pytest.raises(RuntimeError, match=r"bogus_option.*exit status"):
        MosquittoServer(extra_config=["bogus_option 1"]).start()
    with MosquittoServer() as server:
        assert server.failure() is None
        assert server.process is not None
        server.process.kill()
        server.process.wait(WAIT)
        assert "killed by signal 9" in (server.failure() or "")
