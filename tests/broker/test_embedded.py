"""The embedded broker: MQTT routing, delivery in virtual time, the network model, links."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm import clock, topics
from swarm.broker.embedded import EmbeddedBroker, EmbeddedLink
from swarm.broker.link import DEFAULT_INBOX_CAPACITY, Inbox, Link, LinkClosed, Message
from swarm.broker.network import Endpoint, NetworkModel
from swarm.topics import TopicError

T = TypeVar("T")
GUARD = 10_000.0  # virtual seconds, far beyond any test's last event


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run on the virtual clock; a copy that never arrives fails the test instead of hanging."""
    return clock.run(asyncio.wait_for(main, timeout=GUARD))


def counts(broker: EmbeddedBroker) -> tuple[int, int, int]:
    c = broker.counters
    return c.sent, c.delivered, c.dropped


# --- routing ---------------------------------------------------------------------------------


def test_exact_topic_publish_subscribe() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        a, b = broker.connect("a"), broker.connect("b")
        b.subscribe("x/y")
        a.publish("x/y", b"hello")
        a.publish("x/z", b"elsewhere")
        await asyncio.sleep(1)
        assert b.drain() == [Message("x/y", b"hello")]
        assert a.drain() == []
        assert counts(broker) == (2, 1, 0)
        assert broker.counters.bytes == len(b"hello") + len(b"elsewhere")

    run(main())


def test_a_publisher_subscribed_to_its_own_topic_hears_itself() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        a = broker.connect("a")
        a.subscribe("t")
        a.publish("t", b"echo")
        await asyncio.sleep(1)
        assert a.drain() == [Message("t", b"echo")]

    run(main())


@pytest.mark.parametrize(
    ("topic_filter", "topic", "delivered"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/+", "a/b/c", False),
        ("a/+", "a/", True),
        ("+/+", "a/b", True),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/#", "ab", False),
        ("#", "anything/at/all", True),
        ("#", "$SYS/broker", False),
        ("+/broker", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("$SYS/+", "$SYS/broker", True),
        ("a/b", "a/b/", False),
    ],
)
def test_wildcard_filters(topic_filter: str, topic: str, delivered: bool) -> None:
    async def main() -> list[Message]:
        broker = EmbeddedBroker()
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe(topic_filter)
        pub.publish(topic, b"m")
        await asyncio.sleep(1)
        assert broker.counters.delivered == int(delivered)
        return sub.drain()

    assert run(main()) == ([Message(topic, b"m")] if delivered else [])


def test_overlapping_filters_deliver_one_copy() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        sub, pub = broker.connect("sub"), broker.connect("pub")
        for topic_filter in ("swarm/r/#", "swarm/+/x", "swarm/r/x", "#", "swarm/r/x"):
            sub.subscribe(topic_filter)
        pub.publish("swarm/r/x", b"once")
        await asyncio.sleep(1)
        assert sub.drain() == [Message("swarm/r/x", b"once")]
        assert counts(broker) == (1, 1, 0)

    run(main())


def test_publishing_without_subscribers_counts_sent_only() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        pub = broker.connect("pub")
        pub.publish("nobody/listens", b"...")
        assert broker.in_flight == 0
        await asyncio.sleep(1)
        assert counts(broker) == (1, 0, 0)

    run(main())


def test_unsubscribe_stops_delivery() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe("t/#")
        sub.unsubscribe("t/#")
        sub.unsubscribe("never/subscribed")
        pub.publish("t/1", b"x")
        await asyncio.sleep(1)
        assert sub.drain() == []
        assert counts(broker) == (1, 0, 0)

    run(main())


def test_invalid_filters_are_refused() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        link = broker.connect("a")
        for bad in ("a/#/b", "a+", "", "a/b#"):
            with pytest.raises(TopicError):
                link.subscribe(bad)
        assert len(broker._index) == 0

    run(main())


def test_exact_routing_touches_only_the_matching_subscriber() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        links = []
        for i in range(10_000):
            link = broker.connect(f"a{i}")
            link.subscribe(topics.inbox("run", f"a{i}"))
            links.append(link)
        assert list(broker._index.match(topics.inbox("run", "a4321"))) == [links[4321]]
        recorder = broker.connect("recorder", Endpoint(reliable=True))
        recorder.subscribe(topics.inbox_filter("run"))
        assert list(broker._index.match(topics.inbox("run", "a17"))) == [links[17], recorder]
        assert list(broker._index.match(topics.inbox("run", "nobody"))) == [recorder]

    run(main())


# --- delivery --------------------------------------------------------------------------------


def test_a_copy_arrives_exactly_latency_later() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        broker = EmbeddedBroker(NetworkModel(latency=0.25))
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe("t")
        await asyncio.sleep(1.0)
        pub.publish("t", b"x")
        assert await sub.wait() is True
        assert loop.time() == 1.25
        assert sub.drain() == [Message("t", b"x")]

    run(main())


def test_wait_returns_false_at_the_deadline_when_nothing_came() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        broker = EmbeddedBroker()
        sub = broker.connect("sub")
        sub.subscribe("t")
        assert await sub.wait(5.0) is False
        assert loop.time() == 5.0
        assert await sub.wait(2.0) is False  # a deadline in the past: at once
        assert loop.time() == 5.0

    run(main())


def test_wait_returns_true_when_a_message_beats_the_deadline() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        broker = EmbeddedBroker(NetworkModel(latency=0.5))
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe("t")
        pub.publish("t", b"x")
        assert await sub.wait(10.0) is True
        assert loop.time() == 0.5
        assert await sub.wait(10.0) is True  # already buffered: no wait
        assert loop.time() == 0.5
        await asyncio.sleep(20)  # the cancelled deadline timer left no trace
        assert loop.time() == 20.5

    run(main())


def test_drain_returns_messages_oldest_first() -> None:
    async def main() -> None:
        broker = EmbeddedBroker(NetworkModel(latency=0.1))
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe("t/#")
        for i in range(3):
            pub.publish(f"t/{i}", bytes([i]))
        await asyncio.sleep(0.05)
        pub.publish("t/3", b"\x03")
        await asyncio.sleep(1)
        assert sub.drain() == [Message(f"t/{i}", bytes([i])) for i in range(4)]
        assert sub.drain() == []

    run(main())


def test_async_for_yields_messages_and_ends_when_the_link_closes() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe("t")
        got: list[tuple[float, Message]] = []

        async def consume() -> None:
            async for message in sub:
                got.append((clock.now(), message))

        consumer = asyncio.create_task(consume())
        for i in range(3):
            pub.publish("t", bytes([i]))
            await asyncio.sleep(1)
        sub.close()
        await asyncio.wait_for(consumer, timeout=1)
        assert got == [(i + 0.01, Message("t", bytes([i]))) for i in range(3)]

    run(main())


def test_async_for_yields_what_was_buffered_before_close() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe("t")
        pub.publish("t", b"1")
        pub.publish("t", b"2")
        await asyncio.sleep(1)
        sub.close()
        assert [m.payload async for m in sub] == [b"1", b"2"]

    run(main())


def test_a_handler_receives_messages_instead_of_the_inbox() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        broker = EmbeddedBroker(NetworkModel(latency=0.2))
        sub, pub = broker.connect("sub"), broker.connect("pub")
        sub.subscribe("t/+")
        heard: list[tuple[float, str, bytes]] = []
        sub.set_handler(lambda topic, payload: heard.append((loop.time(), topic, payload)))
        pub.publish("t/a", b"1")
        await asyncio.sleep(1)
        pub.publish("t/b", b"2")
        await asyncio.sleep(1)
        assert heard == [(0.2, "t/a", b"1"), (1.2, "t/b", b"2")]
        assert len(sub.inbox) == 0
        sub.set_handler(None)
        pub.publish("t/c", b"3")
        await asyncio.sleep(1)
        assert sub.drain() == [Message("t/c", b"3")]
        assert len(heard) == 2
        assert counts(broker) == (3, 3, 0)

    run(main())


def test_copies_due_together_share_one_timer() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        broker = EmbeddedBroker()
        links = [broker.connect(f"a{i}") for i in range(500)]
        for i, link in enumerate(links):
            link.subscribe(f"inbox/{i}")
        for i, link in enumerate(links):
            link.publish(f"inbox/{(i + 1) % 500}", b"hi")
        assert len(loop._scheduled) <= 2  # type: ignore[attr-defined]
        await asyncio.sleep(1)
        assert all(link.drain() == [Message(f"inbox/{i}", b"hi")] for i, link in enumerate(links))

    run(main())


# --- the network model -----------------------------------------------------------------------


def test_bandwidth_queues_messages_on_the_uplink() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        broker = EmbeddedBroker(NetworkModel(latency=0.1, bandwidth=8000.0))
        pub = broker.connect("pub")
        arrivals: dict[str, list[float]] = {"s1": [], "s2": []}
        for name in arrivals:
            sub = broker.connect(name)
            sub.subscribe("t")
            sub.set_handler(lambda _t, _p, name=name: arrivals[name].append(loop.time()))
        pub.publish("t", bytes(1000))
        pub.publish("t", bytes(1000))
        await asyncio.sleep(10)
        assert arrivals == {"s1": [1.1, 2.1], "s2": [1.1, 2.1]}

    run(main())


def test_distance_latency_through_the_broker() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        network = NetworkModel(latency=0.01, distance_latency=True)
        broker = EmbeddedBroker(network)
        pub = broker.connect("pub", Endpoint(x=0.0, y=0.0))
        arrivals: dict[float, float] = {}
        for km in (0.0, 1000.0, 4000.0, 12_000.0):
            sub = broker.connect(f"s{km}", Endpoint(x=km))
            sub.subscribe("t")
            sub.set_handler(lambda _t, _p, km=km: arrivals.__setitem__(km, loop.time()))
        pub.publish("t", b"x")
        await asyncio.sleep(10)
        assert list(arrivals) == [0.0, 1000.0, 4000.0, 12_000.0]  # nearest first
        expected = 0.01 + 4000.0 / (0.67 * 299_792.458) + (1 + 4000 // 500) * 0.0005
        assert arrivals[4000.0] == pytest.approx(expected, rel=1e-12)

    run(main())


def test_loss_drops_about_the_configured_fraction_and_counts_it() -> None:
    async def main() -> None:
        broker = EmbeddedBroker(NetworkModel(loss=0.3, rng=np.random.default_rng(7)))
        pub, sub = broker.connect("pub"), broker.connect("sub")
        sub.subscribe("t")
        heard = []
        sub.set_handler(lambda _t, payload: heard.append(payload))
        for _ in range(10_000):
            pub.publish("t", b"x")
        await asyncio.sleep(1)
        sent, delivered, dropped = counts(broker)
        assert sent == 10_000
        assert delivered == len(heard)
        assert delivered + dropped == 10_000
        assert 0.27 <= dropped / 10_000 <= 0.33

    run(main())


def test_no_loss_never_drops() -> None:
    async def main() -> None:
        broker = EmbeddedBroker(NetworkModel(loss=0.0, rng=np.random.default_rng(7)))
        pub, sub = broker.connect("pub"), broker.connect("sub")
        sub.subscribe("t")
        sub.set_handler(lambda _t, _p: None)
        for _ in range(10_000):
            pub.publish("t", b"x")
        await asyncio.sleep(1)
        assert counts(broker) == (10_000, 10_000, 0)

    run(main())


def test_partitions_cut_regions_apart_until_healed() -> None:
    async def main() -> None:
        network = NetworkModel()
        broker = EmbeddedBroker(network)
        links = {r: broker.connect(f"r{r}", Endpoint(region=r)) for r in range(4)}
        for link in links.values():
            link.subscribe("all")
        network.partition([[0, 1], [2]])  # region 3 is unlisted: a group of its own

        async def heard_by(sender: int) -> set[int]:
            links[sender].publish("all", b"x")
            await asyncio.sleep(1)
            return {r for r, link in links.items() if link.drain()}

        assert await heard_by(0) == {0, 1}
        assert await heard_by(2) == {2}
        assert await heard_by(3) == {3}
        assert broker.counters.dropped == 2 + 3 + 3
        network.heal()
        assert await heard_by(3) == {0, 1, 2, 3}

    run(main())


@pytest.mark.parametrize("partitioned", [False, True])
def test_reliable_endpoints_ignore_latency_loss_and_partitions(partitioned: bool) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        network = NetworkModel(latency=0.5)
        if partitioned:
            network.loss = 1.0
            network.rng = np.random.default_rng(0)
            network.partition([[0], [1]])
        broker = EmbeddedBroker(network)
        control = broker.connect("control", Endpoint(region=5, reliable=True))
        device = broker.connect("device", Endpoint(region=1))
        heard: list[tuple[str, float]] = []
        control.subscribe("up")
        device.subscribe("down")
        control.set_handler(lambda t, _p: heard.append((t, loop.time())))
        device.set_handler(lambda t, _p: heard.append((t, loop.time())))
        await asyncio.sleep(1)
        device.publish("up", b"report")
        control.publish("down", b"command")
        await asyncio.sleep(1)
        assert heard == [("up", 1.0), ("down", 1.0)]
        assert counts(broker) == (2, 2, 0)

    run(main())


def test_a_full_inbox_counts_overflow_and_never_raises() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        pub, sub = broker.connect("pub"), broker.connect("sub", capacity=2)
        sub.subscribe("t")
        for i in range(5):
            pub.publish("t", bytes([i]))
        await asyncio.sleep(1)
        assert sub.drain() == [Message("t", b"\x00"), Message("t", b"\x01")]
        assert sub.inbox.dropped == 3
        assert counts(broker) == (5, 2, 3)
        pub.publish("t", b"room again")
        await asyncio.sleep(1)
        assert sub.drain() == [Message("t", b"room again")]

    run(main())


def test_an_oversize_payload_is_dropped_and_counted() -> None:
    async def main() -> None:
        broker = EmbeddedBroker(max_packet_bytes=100)
        pub = broker.connect("pub")
        subs = [broker.connect(f"s{i}") for i in range(2)]
        for sub in subs:
            sub.subscribe("t")
        pub.publish("t", bytes(101))
        assert broker.in_flight == 0
        pub.publish("t", bytes(100))
        await asyncio.sleep(1)
        assert [[m.payload for m in sub.drain()] for sub in subs] == [[bytes(100)]] * 2
        assert counts(broker) == (2, 2, 2)

    run(main())


def test_closing_a_link_drops_its_subscriptions_and_copies_in_flight() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        pub, sub, other = broker.connect("pub"), broker.connect("sub"), broker.connect("o")
        sub.subscribe("t")
        sub.subscribe("u/#")
        other.subscribe("t")
        pub.publish("t", b"in flight")
        assert broker.in_flight == 2
        sub.close()
        assert sub.closed
        assert len(broker._index) == 1
        await asyncio.sleep(1)
        assert broker.in_flight == 0
        assert counts(broker) == (1, 1, 1)  # one copy delivered (other), one dropped (sub)
        assert sub.inbox.dropped == 0 and len(sub.inbox) == 0
        pub.publish("t", b"after")
        pub.publish("u/1", b"after")
        await asyncio.sleep(1)
        assert counts(broker) == (3, 2, 1)
        assert [m.payload for m in other.drain()] == [b"in flight", b"after"]
        with pytest.raises(LinkClosed):
            sub.publish("t", b"x")
        with pytest.raises(LinkClosed):
            sub.subscribe("t")
        sub.close()  # closing twice is harmless
        assert await sub.wait() is False

    run(main())


def test_closing_a_link_wakes_its_waiter() -> None:
    async def main() -> None:
        broker = EmbeddedBroker()
        sub = broker.connect("sub")
        asyncio.get_running_loop().call_at(3.0, sub.close)
        assert await sub.wait() is False
        assert clock.now() == 3.0

    run(main())


def test_in_flight_counts_copies_not_yet_delivered() -> None:
    async def main() -> None:
        network = NetworkModel(latency=0.0, distance_latency=True, hop_delay=0.0)
        broker = EmbeddedBroker(network)
        pub = broker.connect("pub")
        # 0.67 c covers about 200 km per millisecond.
        subs = [broker.connect(f"s{i}", Endpoint(x=200.0 * (i + 1))) for i in range(3)]
        for sub in subs:
            sub.subscribe("t")
        assert broker.in_flight == 0
        pub.publish("t", b"x")
        pub.publish("t", b"y")
        seen = [broker.in_flight]
        for _ in range(4):
            await asyncio.sleep(0.001)
            seen.append(broker.in_flight)
        assert seen == [6, 4, 2, 0, 0]
        assert broker.counters.delivered == 6

    run(main())


def test_in_flight_on_the_constant_path() -> None:
    async def main() -> None:
        broker = EmbeddedBroker(NetworkModel(latency=1.0))
        pub = broker.connect("pub")
        for i in range(3):
            broker.connect(f"s{i}").subscribe("t")
        pub.publish("t", b"x")
        assert broker.in_flight == 3
        await asyncio.sleep(0.5)
        assert broker.in_flight == 3
        await asyncio.sleep(0.5)
        assert broker.in_flight == 0

    run(main())


ops = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(0, 5), st.sampled_from(["t", "u/1", "u/2"])),
        st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.005, 0.01, 0.05])),
        st.tuples(st.just("close"), st.integers(0, 5)),
        st.tuples(st.just("unsubscribe"), st.integers(0, 5)),
    ),
    max_size=60,
)


@given(ops=ops, loss=st.sampled_from([0.0, 0.5]), partition=st.booleans())
def test_every_copy_is_delivered_dropped_or_in_flight(
    ops: list[tuple], loss: float, partition: bool
) -> None:
    async def main() -> None:
        network = NetworkModel(latency=0.01, loss=loss, rng=np.random.default_rng(1))
        if partition:
            network.partition([[0], [1]])
        broker = EmbeddedBroker(network)
        links = [broker.connect(f"c{i}", Endpoint(region=i % 3), capacity=3) for i in range(6)]
        for i, link in enumerate(links):
            link.subscribe("t")
            link.subscribe("u/+" if i % 2 else "u/#")
        copies = 0
        for op in ops:
            if op[0] == "publish":
                link = links[op[1]]
                if link.closed:
                    with pytest.raises(LinkClosed):
                        link.publish(op[2], b"p")
                    continue
                copies += len(broker._index.match(op[2]))
                link.publish(op[2], b"p")
            elif op[0] == "sleep":
                await asyncio.sleep(op[1])
            elif op[0] == "close":
                links[op[1]].close()
            else:
                links[op[1]].unsubscribe("t")
            c = broker.counters
            assert c.delivered + c.dropped + broker.in_flight == copies
        await asyncio.sleep(1)
        c = broker.counters
        assert broker.in_flight == 0
        assert c.delivered + c.dropped == copies
        assert c.delivered == sum(len(link.inbox) for link in links)

    run(main())


# --- links and inboxes -----------------------------------------------------------------------


def test_an_embedded_link_is_a_link() -> None:
    async def main() -> None:
        link = EmbeddedBroker().connect("a")
        assert isinstance(link, Link)
        assert isinstance(link, EmbeddedLink)
        assert link.client_id == "a"
        assert not link.closed
        assert link.inbox.capacity == DEFAULT_INBOX_CAPACITY

    run(main())


def test_message_is_a_topic_and_a_payload() -> None:
    message = Message("a/b", b"\x00\x01")
    assert message.topic == "a/b" and message.payload == b"\x00\x01"
    topic, payload = message
    assert (topic, payload) == ("a/b", b"\x00\x01")


def test_inbox_buffers_up_to_capacity_and_counts_the_rest() -> None:
    inbox = Inbox(capacity=2)
    assert inbox.put(Message("t", b"1"))
    assert inbox.put(Message("t", b"2"))
    assert not inbox.put(Message("t", b"3"))
    assert (len(inbox), inbox.dropped) == (2, 1)
    assert inbox.drain() == [Message("t", b"1"), Message("t", b"2")]
    assert len(inbox) == 0
    inbox.close()
    assert not inbox.put(Message("t", b"4"))
    assert inbox.dropped == 2


def test_inbox_wait_wakes_on_put() -> None:
    async def main() -> None:
        inbox = Inbox()
        loop = asyncio.get_running_loop()
        loop.call_at(4.0, inbox.put, Message("t", b"x"))
        assert await inbox.wait(10.0) is True
        assert clock.now() == 4.0
        assert inbox.drain() == [Message("t", b"x")]
        assert await inbox.wait(6.0) is False
        assert clock.now() == 6.0

    run(main())


def test_a_cancelled_inbox_wait_leaves_the_inbox_usable() -> None:
    async def main() -> None:
        inbox = Inbox()
        waiter = asyncio.create_task(inbox.wait(100.0))
        await asyncio.sleep(1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        inbox.put(Message("t", b"x"))
        assert await inbox.wait(2.0) is True
        assert clock.now() == 1.0

    run(main())


def test_leaving_async_for_early_keeps_the_rest_queued() -> None:
    async def main() -> list[bytes]:
        broker = EmbeddedBroker()
        link = broker.connect("a")
        link.subscribe("t")
        sender = broker.connect("b")
        for i in range(3):
            sender.publish("t", bytes([i]))
        await asyncio.sleep(1)
        async for message in link:
            assert message.payload == b"\x00"
            break
        return [m.payload for m in link.drain()]

    assert run(main()) == [b"\x01", b"\x02"]


def test_publishing_to_a_wildcard_topic_is_refused() -> None:
    async def main() -> None:
        link = EmbeddedBroker().connect("a")
        with pytest.raises(TopicError, match="wildcards"):
            link.publish("a/+", b"x")
        with pytest.raises(TopicError, match="wildcards"):
            link.publish("a/#", b"x")

    run(main())


def test_a_failing_handler_loses_its_copy_only() -> None:
    async def main() -> tuple[int, int, list[bytes]]:
        broker = EmbeddedBroker()
        bad = broker.connect("bad")
        bad.subscribe("t")

        def explode(topic: str, payload: bytes) -> None:
            raise RuntimeError("handler bug")

        bad.set_handler(explode)
        good = broker.connect("good")
        good.subscribe("t")
        broker.connect("sender").publish("t", b"x")
        await asyncio.sleep(1)
        counters = broker.counters
        return counters.delivered, counters.dropped, [m.payload for m in good.drain()]

    assert run(main()) == (1, 1, [b"x"])
