"""Messages only a run's own processes can write: an HMAC under a per-run key.

On a shared broker anyone who may connect may publish on a run's topics, and MQTT does
not say who published. So on a real broker every message a fleet process publishes is
sealed: wrapped in a `sealed` envelope that carries the publishing client, a counter that
only grows, and an HMAC-SHA256 over topic, client, counter and payload under a key that
only the run's processes hold (the coordinator makes it and hands it to the workers it
starts; `SWARM_RUN_KEY` lets workers elsewhere join). A receiver opens each message: a
bad tag, a message moved to another topic, or a replay (a counter not above the last one
seen from that client) is foreign, counted apart and never taken as the fleet's.

Observers without the key (the dashboard, `swarm decode`) unwrap sealed envelopes to read
them; they see what the fleet sent but cannot tell forgeries from it. Sans-I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from swarm import wire

__all__ = [
    "KEY_BYTES",
    "KEY_ENVIRONMENT",
    "SEALED",
    "Opener",
    "Sealer",
    "key_from_environment",
    "new_key",
    "unwrap",
]

SEALED = wire.register_kind("sealed", 5)
KEY_ENVIRONMENT = "SWARM_RUN_KEY"  # hex; how workers receive their run's key
KEY_BYTES = 32
TAG_BYTES = 16  # a truncated HMAC-SHA256: forging one is a 2^-128 guess


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_from_environment() -> bytes | None:
    """The run key in `SWARM_RUN_KEY`, if set; ValueError naming the variable if malformed."""
    text = os.environ.get(KEY_ENVIRONMENT)
    if not text:
        return None
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError(f"{KEY_ENVIRONMENT} is not hexadecimal") from None
    if len(key) < 16:
        raise ValueError(f"{KEY_ENVIRONMENT} is too short: give at least 16 bytes (32 hex digits)")
    return key


def _tag(key: bytes, topic: str, client: str, counter: int, payload: bytes) -> bytes:
    head = f"{topic}\0{client}\0{counter}\0".encode()
    return hmac.digest(key, head + payload, hashlib.sha256)[:TAG_BYTES]


class Sealer:
    """Seals what one client publishes; its counter makes every message unique."""

    __slots__ = ("client", "counter", "key")

    def __init__(self, key: bytes, client: str) -> None:
        self.key = key
        self.client = client
        self.counter = 0

    def seal(self, topic: str, payload: bytes) -> bytes:
        self.counter += 1
        tag = _tag(self.key, topic, self.client, self.counter, payload)
        body = [self.client, self.counter, tag, payload]
        return wire.encode(wire.Envelope(SEALED, self.client, self.counter, 0.0, 0, body))


class Opener:
    """Opens what one client receives; remembers the last counter of every sender."""

    __slots__ = ("key", "last")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.last: dict[str, int] = {}

    def open(self, topic: str, payload: bytes) -> bytes | None:
        """The payload the fleet sealed, or None for anything else (forged, moved, replayed)."""
        try:
            envelope = wire.decode(payload)
        except wire.MalformedMessage:
            return None
        body = envelope.body
        if envelope.kind != SEALED or not isinstance(body, list) or len(body) != 4:
            return None
        client, counter, tag, inner = body
        if not (
            isinstance(client, str)
            and type(counter) is int
            and isinstance(tag, bytes)
            and isinstance(inner, bytes)
        ):
            return None
        if not hmac.compare_digest(tag, _tag(self.key, topic, client, counter, inner)):
            return None
        if counter <= self.last.get(client, 0):
            return None  # a replay of something already taken
        self.last[client] = counter
        return inner


def unwrap(payload: bytes) -> bytes:
    """What a sealed message carries, unchecked (for observers); other payloads as they are."""
    try:
        envelope = wire.decode(payload)
    except wire.MalformedMessage:
        return payload
    body = envelope.body
    if envelope.kind == SEALED and isinstance(body, list) and len(body) == 4:
        inner = body[3]
        if isinstance(inner, bytes):
            return inner
    return payload
