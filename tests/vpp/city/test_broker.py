"""Mosquitto with the city's ACL: an agent publishes only its own topics and reads only its
own targets; a stranger does not get in."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from tests.vpp.city.conftest import coordinator_link, link_for
from vpp.city import schema as s
from vpp.city.broker import Broker
from vpp.city.link import LinkConfig


def client(cfg: LinkConfig, client_id: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        cfg.host, cfg.port, username=cfg.username, password=cfg.password,
        identifier=client_id, protocol=aiomqtt.ProtocolVersion.V5, timeout=10,
    )  # fmt: skip


async def next_message(c: aiomqtt.Client, timeout_s: float = 10.0) -> aiomqtt.Message:
    async with asyncio.timeout(timeout_s):
        return await anext(c.messages)


async def test_an_agent_cannot_publish_as_another(broker: Broker) -> None:
    async with (
        client(coordinator_link(broker), "c") as coord,
        client(link_for(broker, "north"), "n") as north,
    ):
        await coord.subscribe(f"{s.ROOT}/+/up/#", qos=1)
        # Refused, then allowed, on one connection: QoS 1 keeps their order, so once the
        # allowed one arrives the refused one would have arrived before it.
        await north.publish(s.topic("south", "up/telemetry"), b"forged", qos=1)
        await north.publish(s.topic("north", "down/targets"), b"forged", qos=1)
        await north.publish(s.topic("north", "up/telemetry"), b"mine", qos=1)
        got = await next_message(coord)
        assert (str(got.topic), got.payload) == (s.topic("north", "up/telemetry"), b"mine")


async def test_an_agent_reads_only_its_own_targets(broker: Broker) -> None:
    async with (
        client(coordinator_link(broker), "c") as coord,
        client(link_for(broker, "north"), "n") as north,
    ):
        await coord.publish(s.topic("south", "down/targets"), b"for south", qos=1, retain=True)
        await coord.publish(s.topic("north", "down/targets"), b"for north", qos=1, retain=True)
        await north.subscribe(f"{s.ROOT}/+/down/#", qos=1)
        first = await next_message(north)
        await coord.publish(s.topic("south", "down/targets"), b"south again", qos=1)
        await coord.publish(s.topic("north", "down/targets"), b"north again", qos=1)
        second = await next_message(north)
        assert [first.payload, second.payload] == [b"for north", b"north again"]
        # The coordinator cannot speak for an agent either.
        await coord.subscribe(f"{s.ROOT}/+/up/#", qos=1)
        await coord.publish(s.topic("north", "up/telemetry"), b"forged", qos=1)
        await north.publish(s.topic("north", "up/ack"), b"real", qos=1)
        got = await next_message(coord)
        assert got.payload == b"real"


async def test_wrong_password_and_anonymous_are_refused(broker: Broker) -> None:
    cfg = link_for(broker, "north")
    bad = LinkConfig(cfg.host, cfg.port, "north", "not-the-password", "x")
    with pytest.raises(aiomqtt.MqttError):
        async with client(bad, "x"):
            pass
    anon = LinkConfig(cfg.host, cfg.port, "", "", "y")
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(anon.host, anon.port, protocol=aiomqtt.ProtocolVersion.V5,
                                  timeout=10):  # fmt: skip
            pass
