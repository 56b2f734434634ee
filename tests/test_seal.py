"""The run key's seal: what opens, and everything that must not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm import seal, wire

KEY = bytes(range(32))
TOPIC = "swarm/r/agent/a01/inbox"


def test_a_sealed_message_opens_once_on_its_topic() -> None:
    payload = wire.pack("metrics", "observer", 0, 0.0, 0, {"round": 1})
    sealed = seal.Sealer(KEY, "observer").seal(TOPIC, payload)
    opener = seal.Opener(KEY)
    assert opener.open(TOPIC, sealed) == payload
    assert opener.open(TOPIC, sealed) is None  # a replay
    assert seal.Opener(KEY).open(TOPIC + "x", sealed) is None  # moved to another topic
    assert seal.Opener(bytes(32)).open(TOPIC, sealed) is None  # another run's key
    assert seal.unwrap(sealed) == payload  # an observer reads it without the key


def test_counters_only_grow_per_client() -> None:
    first, second = seal.Sealer(KEY, "a"), seal.Sealer(KEY, "b")
    opener = seal.Opener(KEY)
    early = first.seal(TOPIC, b"1")
    late = first.seal(TOPIC, b"2")
    assert opener.open(TOPIC, late) == b"2"
    assert opener.open(TOPIC, early) is None  # older than what was taken from "a"
    assert opener.open(TOPIC, second.seal(TOPIC, b"3")) == b"3"  # "b" counts on its own


def test_a_tampered_field_does_not_open() -> None:
    sealed = seal.Sealer(KEY, "a").seal(TOPIC, b"payload")
    envelope = wire.decode(sealed)
    client, counter, tag, inner = envelope.body
    for body in (
        [client, counter, tag, b"pay1oad"],
        ["b", counter, tag, inner],
        [client, counter + 1, tag, inner],
        [client, counter, bytes(len(tag)), inner],
        [client, float(counter), tag, inner],
        [client, counter, tag],
    ):
        forged = wire.encode(envelope._replace(body=body))
        assert seal.Opener(KEY).open(TOPIC, forged) is None


@given(st.binary(max_size=300))
def test_garbage_never_opens_and_never_raises(payload: bytes) -> None:
    assert seal.Opener(KEY).open(TOPIC, payload) is None
    assert isinstance(seal.unwrap(payload), bytes)


@pytest.mark.parametrize(("value", "needle"), [("zz", "not hexadecimal"), ("abcd", "too short")])
def test_a_bad_key_in_the_environment_is_named(monkeypatch, value: str, needle: str) -> None:
    monkeypatch.setenv(seal.KEY_ENVIRONMENT, value)
    with pytest.raises(ValueError, match=needle):
        seal.key_from_environment()


@pytest.mark.parametrize(
    ("topic", "family"),
    [
        ("swarm/r/agent/a01/inbox/r.a02", "inbox"),
        ("swarm/r/shard/1/bundle/c", "shard/bundle"),
        ("swarm/r/shard/0/metrics", "shard/metrics"),
        ("swarm/r/events/crash", "events"),
        ("swarm/r/control/pause", "control"),
        ("swarm/r/nonsense", "other"),
        ("elsewhere", "other"),
    ],
)
def test_foreign_messages_are_counted_by_topic_family(topic: str, family: str) -> None:
    from swarm import topics

    assert topics.family(topic) == family
