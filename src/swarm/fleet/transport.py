"""The transport of a run: the embedded broker with its network model, or a real broker.

On the embedded broker the network model (latency, bandwidth, loss, partitions) is what
messages go through; on a real broker the network is real and one client per agent
(`per-agent`) or a few multiplexed clients per process (`shared`) carry the traffic.
"""

from __future__ import annotations

from typing import Any

from swarm import topics
from swarm.broker.embedded import EmbeddedBroker
from swarm.broker.network import NetworkModel
from swarm.fleet.agent import World
from swarm.scenario import Scenario
from swarm.seeding import Stream, generator

__all__ = ["network_model", "transport"]


def network_model(scenario: Scenario) -> NetworkModel:
    """The embedded broker's network, drawn from the scenario's [network] and seed."""
    net = scenario.network
    model = NetworkModel(
        latency=net.latency,
        distance_latency=net.latency_model == "distance",
        light_fraction=net.light_fraction,
        hop_km=net.hop_km,
        hop_delay=net.hop_delay,
        bandwidth=net.bandwidth,
        loss=net.loss,
        rng=generator(scenario.run.seed, Stream.NETWORK),
        per_endpoint_bandwidth=net.device_links,
    )
    if net.partitions:
        index = {name: i for i, name in enumerate(scenario.fleet.regions)}
        model.partition([[index[r] for r in group] for group in net.partitions])
    return model


def transport(
    scenario: Scenario,
    world: World,
    broker_url: str | None,
    shard: int,
    shards: int,
    will: tuple[str, bytes] | None,
    key: bytes | None = None,
) -> Any:
    """What the agents of shard `shard` (of `shards`) connect through.

    `will` is what a shared transport's clients leave with the broker for when the
    process dies; per-agent clients each get their own will when they connect. On a real
    broker `key` seals every message (see `swarm.seal`); only operators' live controls
    travel unsealed.
    """
    control = topics.control_filter(world.run_id)

    def public(topic: str) -> bool:
        return topics.matches(control, topic)

    if broker_url is None:
        return EmbeddedBroker(network_model(scenario), world.counters)
    if scenario.broker.connections == "shared":
        from swarm.broker.shared import SharedTransport  # aiomqtt only with a broker

        index_of = world.index_of
        return SharedTransport(
            broker_url,
            world.run_id,
            world.counters,
            clients=scenario.broker.clients,
            shard=shard,
            shard_of=lambda agent_id: index_of[agent_id] % shards,
            will=will,
            keepalive=5 if shards > 1 else 30,
            key=key,
            public=public,
        )
    from swarm.broker.mqtt import MqttTransport

    world.client_prefix = f"{world.run_id}."
    return MqttTransport(
        broker_url, world.counters, client_prefix=world.client_prefix, key=key, public=public
    )
