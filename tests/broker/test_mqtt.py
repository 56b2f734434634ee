"""The MQTT transport against a real mosquitto: same agents, same summary, garbage counted."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm import seal, topics, wire
from swarm.broker import server as server_module
from swarm.broker.mqtt import BrokerUnavailable, BrokerUrl, MqttTransport
from swarm.broker.server import MosquittoNotFound, MosquittoServer, find_mosquitto, free_port
from swarm.cli import main
from swarm.fleet import Fleet
from swarm.run.runner import run_scenario
from swarm.scenario import from_dict


def fast(protocol: str = "push", count: int = 40, run: dict | None = None, **gossip: object):
    return from_dict(
        {
            "run": {"seed": 2, "rounds": 80, **(run or {})},
            "fleet": {"count": count},
            "gossip": {"protocol": protocol, "period": 0.05, **gossip},
        }
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt://127.0.0.1:1883", BrokerUrl("127.0.0.1", 1883)),
        ("mqtt://localhost", BrokerUrl("localhost", 1883)),
        ("mqtt://u:p%40ss@h:7", BrokerUrl("h", 7, "u", "p@ss")),
    ],
)
def test_broker_urls(text: str, expected: BrokerUrl) -> None:
    assert BrokerUrl.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["http://h:1", "mqtt://", "mqtt://h:99999", "mqtt://h:1/path", "h:1883", ""]
)
def test_bad_broker_urls_say_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="broker URL"):
        BrokerUrl.parse(text)


def test_links_publish_and_subscribe_through_mosquitto(mosquitto: MosquittoServer) -> None:
    async def main() -> tuple[list[tuple[str, bytes]], list[str]]:
        transport = MqttTransport(mosquitto.url)
        a = transport.connect("a")
        b = transport.connect("b")
        a.subscribe("t/+/x")
        got: list[tuple[str, bytes]] = []
        b.set_handler(lambda topic, payload: got.append((topic, payload)))
        b.subscribe("direct")
        await transport.start()
        b.publish("t/1/x", b"one")
        a.publish("direct", b"two")
        b.publish("t/2/y", b"not matched")
        await transport.drain(timeout=2.0)
        inbox = [m.topic for m in a.drain()]
        await transport.stop()
        return got, inbox

    got, inbox = asyncio.run(main())
    assert got == [("direct", b"two")]
    assert inbox == ["t/1/x"]


def test_an_unreachable_broker_is_a_clear_error() -> None:
    async def main() -> None:
        transport = MqttTransport(f"mqtt://127.0.0.1:{free_port()}")
        transport.connect("lonely")
        await transport.start(timeout=2.0)

    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="is a broker running there"):
        asyncio.run(main())
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("protocol", ["push", "push-pull"])
def test_a_scenario_over_mosquitto_informs_everyone(mosquitto: MosquittoServer, protocol) -> None:
    summary = run_scenario(fast(protocol), broker_url=mosquitto.url)
    assert summary["broker"] == mosquitto.url
    assert summary["results"]["residue"] == 0.0
    messages = summary["messages"]
    assert messages["sent"] == messages["delivered"] > 0
    assert messages["dropped"] == messages["dropped_malformed"] == 0
    embedded = run_scenario(fast(protocol))
    assert set(embedded) <= set(summary)
    assert summary["reconnects"] == summary["lost"] == 0
    assert set(summary["results"]) == set(embedded["results"])


def test_push_sum_over_mosquitto_conserves_mass(mosquitto: MosquittoServer) -> None:
    summary = run_scenario(fast("push-sum", count=30), broker_url=mosquitto.url)
    assert summary["results"]["mass_error"] < 1e-9


def _sealed(fleet: Fleet, topic: str, payloads: list[bytes]) -> list[bytes]:
    """What a fleet member holding the run key (an insider) could publish."""
    assert fleet.key is not None
    sealer = seal.Sealer(fleet.key, "insider")
    return [sealer.seal(topic, payload) for payload in payloads]


@pytest.mark.parametrize("insider", [False, True])
def test_garbage_published_with_mosquitto_pub_is_counted(
    mosquitto: MosquittoServer, insider: bool
) -> None:
    fleet = Fleet(fast(count=20), broker_url=mosquitto.url)
    world = fleet.world
    # Per-agent inbox topics end in the publisher's client id, <run>.<agent id>.
    target = topics.inbox(world.run_id, world.ids[3]) + f"/{world.run_id}.{world.ids[5]}"
    stranger = wire.pack("push", "not-an-agent", 1, 0.0, 1, [])
    payloads = [b"garbage", b"\xc1\xc1", stranger]
    if insider:
        payloads = _sealed(fleet, target, payloads)
    _publish_at_round_1(fleet, mosquitto, target, payloads)
    summary = asyncio.run(fleet.run())
    messages = summary["messages"]
    # Without the run key nothing reaches an agent; with it, the agent still refuses it.
    assert messages["received_foreign"] == (0 if insider else len(payloads))
    assert messages["dropped_malformed"] == (len(payloads) if insider else 0)
    assert messages["dropped_spoofed"] == 0
    if not insider:  # an insider's messages are the fleet's as far as counting goes
        assert messages["sent"] == messages["delivered"] + messages["dropped"] + summary["lost"]
    assert summary["results"]["residue"] == 0.0
    assert summary["crashes"] == []


@pytest.mark.parametrize("insider", [False, True])
def test_a_message_claiming_another_sender_is_counted_as_spoofed(
    mosquitto: MosquittoServer, insider: bool
) -> None:
    fleet = Fleet(fast(count=20), broker_url=mosquitto.url)
    world = fleet.world
    # Published as client a05, claiming to come from a07: an impostor.
    target = topics.inbox(world.run_id, world.ids[3]) + f"/{world.run_id}.{world.ids[5]}"
    impostor = wire.pack("push", world.ids[7], 1, 0.0, 1, [[12345, 0, b"fake rumor"]])
    payloads = [impostor, impostor]
    if insider:
        payloads = _sealed(fleet, target, payloads)
    _publish_at_round_1(fleet, mosquitto, target, payloads)
    summary = asyncio.run(fleet.run())
    assert summary["messages"]["dropped_spoofed"] == (2 if insider else 0)
    assert summary["messages"]["received_foreign"] == (0 if insider else 2)
    assert summary["messages"]["dropped_malformed"] == 0
    assert summary["results"]["residue"] == 0.0


def test_a_replayed_fleet_message_is_foreign(mosquitto: MosquittoServer) -> None:
    fleet = Fleet(fast(count=20), broker_url=mosquitto.url)
    world = fleet.world
    target = topics.inbox(world.run_id, world.ids[3]) + f"/{world.run_id}.{world.ids[5]}"
    once = _sealed(fleet, target, [wire.pack("push", world.ids[5], 1, 0.0, 1, [])])
    moved = topics.inbox(world.run_id, world.ids[4]) + f"/{world.run_id}.{world.ids[5]}"
    _publish_at_round_1(fleet, mosquitto, target, once * 3)
    _publish_at_round_1(fleet, mosquitto, moved, once)  # sealed for another topic
    summary = asyncio.run(fleet.run())
    assert summary["messages"]["received_foreign"] == 3  # two replays and the moved one


def _publish_at_round_1(fleet: Fleet, server: MosquittoServer, topic: str, payloads: list[bytes]):
    """A round participant that publishes raw payloads with mosquitto_pub in round 1."""
    mosquitto_pub = shutil.which("mosquitto_pub")
    assert mosquitto_pub, "mosquitto_pub is missing: apt-get install mosquitto-clients"

    def inject(round: int) -> None:
        if round == 1:
            for payload in payloads:
                command = [mosquitto_pub, "-p", str(server.port), "-t", topic, "-s"]
                subprocess.run(command, input=payload, check=True, timeout=10)

    fleet.world.rounds.add(("rogue", topic, tuple(payloads)), inject)


def test_missing_mosquitto_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setattr(server_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(server_module, "FALLBACK_PATHS", ())
    with pytest.raises(MosquittoNotFound, match="apt-get install mosquitto"):
        find_mosquitto()


def test_swarm_broker_prints_its_url_and_stops_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "swarm", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"mqtt://127.0.0.1:{port}" in first
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_broker_restart_mid_run_is_survived_and_counted() -> None:
    with MosquittoServer() as broker:
        scenario = fast(count=30, run={"rounds": 60, "stop_when_done": False}, fanout=2)
        fleet = Fleet(scenario, broker_url=broker.url)

        def restart(round: int) -> None:
            if round == 10:
                broker.stop()
                time.sleep(0.2)
                broker.start()

        async def main() -> dict:
            fleet.world.rounds.add("chaos", restart)
            return await asyncio.wait_for(fleet.run(), 60)

        summary = asyncio.run(main())
    assert summary["reconnects"] >= 30  # every client came back
    assert summary["rounds"] == 60
    # Rows lost in the restart are stated, one gap event each; nobody is reported lost.
    recorded = {row["round"] for row in fleet.recorder.rows}
    missing = {r for first, last in summary["missing_rounds"] for r in range(first, last + 1)}
    assert recorded | missing == set(range(61)) and not recorded & missing
    gaps = [e for e in fleet.recorder.events if e["event"] == "gap"]
    assert [[e["first"], e["last"]] for e in gaps] == summary["missing_rounds"]
    assert summary["agents_lost"] == 0
    rejoined = {e["agent"] for e in fleet.recorder.events if e["event"] == "rejoined"}
    assert {e["agent"] for e in fleet.recorder.events if e["event"] == "lost"} <= rejoined
    assert summary["results"]["residue"] == 0.0
    messages = summary["messages"]
    assert messages["delivered"] > 0
    # What the restart swallowed is reported, not silently missing.
    assert messages["sent"] == messages["delivered"] + messages["dropped"] + summary["lost"]


def shared(protocol: str = "push", count: int = 60, **gossip: object):
    data = fast(protocol, count, **gossip).to_dict()
    data["broker"] = {"connections": "shared", "clients": 2}
    return from_dict(data)


@pytest.mark.parametrize("protocol", ["push", "pull", "push-sum"])
def test_shared_mode_bundles_and_still_informs_everyone(mosquitto: MosquittoServer, protocol):
    summary = run_scenario(shared(protocol), broker_url=mosquitto.url)
    messages = summary["messages"]
    assert messages["sent"] == messages["delivered"] > 0
    assert messages["dropped"] == messages["dropped_malformed"] == summary["lost"] == 0
    if protocol == "push-sum":
        assert summary["results"]["mass_error"] < 1e-9
    else:
        assert summary["results"]["residue"] == 0.0


def test_shared_mode_counts_forged_bundles(mosquitto: MosquittoServer) -> None:
    fleet = Fleet(shared(count=20), broker_url=mosquitto.url)
    run_id = fleet.world.run_id
    # The last level names the publishing client: here, connection 1 of shard 0.
    bundle_topic = f"{topics.bundle(run_id, 0)}/swarm-{run_id}-shard0-1"
    inbox = topics.inbox(run_id, fleet.world.ids[2])
    items = [["swarm/elsewhere/metrics", b"x"], [inbox, b"junk"]]
    forged = [
        b"not msgpack",
        wire.pack("push", "shard0", 1, 0.0, 0, []),  # a valid envelope of the wrong kind
        wire.pack("bundle", "shard0", 1, 0.0, 0, items),
        wire.pack("bundle", "shard7", 1, 0.0, 0, items),  # claims a shard it is not
    ]

    _publish_at_round_1(fleet, mosquitto, bundle_topic, forged)
    _publish_at_round_1(fleet, mosquitto, bundle_topic, _sealed(fleet, bundle_topic, forged))
    summary = asyncio.run(fleet.run())
    assert summary["messages"]["received_foreign"] == 4  # without the run key
    # With it: two bad bundles, one item outside the inboxes, one payload an agent rejects.
    assert summary["messages"]["dropped_malformed"] == 4
    assert summary["messages"]["dropped_spoofed"] == 1
    assert summary["results"]["residue"] == 0.0


def test_a_full_incoming_queue_is_counted(mosquitto: MosquittoServer) -> None:
    mosquitto_pub = shutil.which("mosquitto_pub")
    assert mosquitto_pub

    async def main() -> tuple[int, int]:
        transport = MqttTransport(mosquitto.url)
        link = transport.connect("slow-reader")
        link.incoming = 5
        link.subscribe("flood")
        await transport.start()
        # Block the loop while 200 messages arrive: they pile up in the socket, and the
        # client reads them all at once into a queue with room for 5.
        subprocess.run(
            [mosquitto_pub, "-p", str(mosquitto.port), "-t", "flood", "-l", "-q", "1"],
            input="\n".join(f"m{i}" for i in range(200)) + "\n",
            text=True,
            check=True,
            timeout=10,
        )
        time.sleep(0.5)
        await transport.drain(timeout=2.0)
        received = len(link.drain())
        await transport.stop()
        return received, transport.counters.dropped

    received, dropped = asyncio.run(main())
    assert received + dropped == 200
    assert dropped > 0


@pytest.fixture(scope="module")
def guarded() -> Iterator[MosquittoServer]:
    """A mosquitto with authentication on and the fleet ACL, as `swarm broker --auth`."""
    with MosquittoServer(users={"fleet": "pa:ss w0rd"}) as server:
        yield server


@pytest.mark.parametrize("connections", ["per-agent", "shared"])
def test_a_fleet_runs_on_a_broker_with_authentication(guarded: MosquittoServer, connections):
    data = fast(count=30).to_dict()
    data["broker"] = {"connections": connections}
    summary = run_scenario(from_dict(data), broker_url=guarded.url)
    assert summary["results"]["residue"] == 0.0
    messages = summary["messages"]
    assert messages["sent"] == messages["delivered"] > 0
    assert messages["dropped_spoofed"] == messages["dropped_malformed"] == 0


def test_the_acl_refuses_anonymous_clients_and_impostors(guarded: MosquittoServer) -> None:
    mosquitto_pub = shutil.which("mosquitto_pub")
    assert mosquitto_pub

    def publish(*args: str) -> str:
        command = [mosquitto_pub, "-V", "mqttv5", "-q", "1", "-p", str(guarded.port), "-m", "x"]
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=10)
        return done.stdout + done.stderr

    login = ["-u", "fleet", "-P", "pa:ss w0rd", "-i", "run.a05"]
    assert "Not authorized" in publish("-t", "swarm/run/metrics")  # anonymous
    assert "Not authorized" not in publish(*login, "-t", "swarm/run/agent/a03/inbox/run.a05")
    assert "Not authorized" in publish(*login, "-t", "swarm/run/agent/a03/inbox/run.a07")
    assert "Not authorized" in publish(*login, "-t", "swarm/run/shard/0/bundle/run.a07")


def test_swarm_broker_auth_prints_a_url_with_credentials(capsys) -> None:
    assert main(["broker", "--auth", "fleet", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "allow_anonymous false" in out and "pattern write swarm/+/agent/+/inbox/%c" in out
    assert main(["broker", "--auth", ":nouser", "--print-config"]) == 2


def test_the_broker_password_never_reaches_the_output(
    guarded: MosquittoServer, tmp_path, capsys, monkeypatch
):
    """Neither from the URL nor from --password-file: stdout and summary.json redact it."""
    monkeypatch.delenv("SWARM_BROKER_PASSWORD", raising=False)  # --password-file sets it
    bare = guarded.url.replace(guarded.url.split("//", 1)[1].split("@", 1)[0], "fleet")
    secret = tmp_path / "secret"
    secret.write_text("pa:ss w0rd\n")
    base = ["run", "rumor", "--agents", "20", "--set", "run.rounds=8", "--json"]
    base += ["--set", "gossip.period=0.05"]
    for extra in (
        ["--broker", guarded.url, "--out", str(tmp_path / "a")],
        ["--broker", bare, "--password-file", str(secret), "--out", str(tmp_path / "b")],
    ):
        assert main([*base, *extra]) == 0
        out = capsys.readouterr().out
        written = (Path(extra[-1]) / "summary.json").read_text()
        for text in (out, written):
            assert "w0rd" not in text and "pa%3A" not in text
            assert "mqtt://fleet" in text
