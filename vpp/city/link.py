"""One MQTT 5 connection that survives the broker going away.

:class:`Link` connects with a persistent session (``clean_start`` off, a session expiry), a
last will, subscribes, and then both hands every message heard to ``on_message`` and drains
``outbox`` (QoS 1, in sequence order). When the broker is gone it waits a bounded back-off
and connects again; after each connect the outbox is sent again from the last confirmed
number, so nothing the coordinator has not stored is lost. Control never waits on the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vpp.city.outbox import Outbox

log = logging.getLogger("vpp.city.link")
#: The client's own log repeats every pending publish while the broker is gone; the link
#: reports the loss and the reconnect itself.
_MQTT_LOG = logging.getLogger("vpp.city.mqtt")
_MQTT_LOG.setLevel(logging.ERROR)
#: QoS 1 messages in flight at once (and the outbox's batch).
INFLIGHT = 100

#: How long the broker keeps a session (and its queued QoS 1 messages) after a disconnect.
SESSION_EXPIRY_S = 24 * 3600
#: Back-off between connection attempts, seconds (doubles up to the maximum).
BACKOFF_S = (0.2, 5.0)


@dataclass
class LinkConfig:
    host: str
    port: int
    username: str
    password: str
    client_id: str
    tls: ssl.SSLContext | None = None
    keepalive_s: int = 10


@dataclass
class LinkStats:
    connected: bool = False
    connects_total: int = 0
    disconnects_total: int = 0
    published_total: int = 0
    published_bytes_total: int = 0
    received_total: int = 0
    received_bytes_total: int = 0
    per_stream: dict[str, int] = field(default_factory=dict)


class TlsError(ValueError):
    """TLS files that cannot be used; the message names the option and the file."""


def tls_context(
    cafile: Path | None, certfile: Path | None = None, keyfile: Path | None = None
) -> ssl.SSLContext:
    """A client context that verifies the broker against ``cafile`` (the system's CAs when
    None) and shows ``certfile``/``keyfile`` when given (both or neither)."""
    if (certfile is None) != (keyfile is None):
        raise TlsError("--tls-cert and --tls-key: give both or neither")
    try:
        ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"--tls-ca: {cafile}: {_why(exc)}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None and keyfile is not None:
        try:
            ctx.load_cert_chain(str(certfile), str(keyfile))
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"--tls-cert/--tls-key: {certfile}, {keyfile}: {_why(exc)}") from None
    return ctx


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)


def expiry(seconds: float) -> Properties:
    """PUBLISH properties with a message expiry interval (whole seconds, at least 1)."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = max(1, int(seconds))
    return props


Handler = Callable[[aiomqtt.Message], Awaitable[None]]
OnConnect = Callable[[aiomqtt.Client], Awaitable[None]]


class Link:
    """A reconnecting MQTT 5 client; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        config: LinkConfig,
        subscriptions: list[str],
        on_message: Handler,
        *,
        will: aiomqtt.Will | None = None,
        outbox: Outbox | None = None,
        topic_of: Callable[[str], str] | None = None,
        on_connect: OnConnect | None = None,
    ) -> None:
        self.config = config
        self.subscriptions = subscriptions
        self.on_message = on_message
        self.will = will
        self.outbox = outbox
        self.topic_of = topic_of
        self.on_connect = on_connect
        self.stats = LinkStats()
        self.client: aiomqtt.Client | None = None
        self._wake = asyncio.Event()
        self._sent = 0
        self._rewind: int | None = None

    def rewind(self, upto: int) -> None:
        """Send again everything numbered above ``upto`` (the coordinator asked for it).
        Call on the loop."""
        self._rewind = upto if self._rewind is None else min(self._rewind, upto)
        self._wake.set()

    def wake(self) -> None:
        """Something new is in the outbox (thread-unsafe: call on the loop)."""
        self._wake.set()

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, expiry_s: float | None = None
    ) -> bool:
        """Publish now (QoS 1) if connected; False when the broker is not there."""
        client = self.client
        if client is None:
            return False
        try:
            props = expiry(expiry_s) if expiry_s is not None else None
            await client.publish(topic, payload, qos=1, retain=retain, properties=props, timeout=10)
        except (TimeoutError, aiomqtt.MqttError):
            return False
        self._count(topic, len(payload))
        return True

    def _count(self, topic: str, size: int) -> None:
        s = self.stats
        s.published_total += 1
        s.published_bytes_total += size
        stream = topic.rsplit("/", 2)[-2] + "/" + topic.rsplit("/", 1)[-1]
        s.per_stream[stream] = s.per_stream.get(stream, 0) + 1

    async def run(self, stop: asyncio.Event) -> None:
        backoff = BACKOFF_S[0]
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = BACKOFF_S[0]
            except (TimeoutError, aiomqtt.MqttError, OSError) as exc:
                if self.stats.connected:
                    log.warning("%s: broker link lost: %s", self.config.client_id, exc)
                    self.stats.disconnects_total += 1
            finally:
                self.stats.connected = False
                self.client = None
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_S[1])

    async def _session(self, stop: asyncio.Event) -> None:
        cfg = self.config
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password,
            identifier=cfg.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            will=self.will,
            keepalive=cfg.keepalive_s,
            tls_context=cfg.tls,
            timeout=10,
            max_queued_incoming_messages=100_000,
            max_inflight_messages=INFLIGHT,
            logger=_MQTT_LOG,
        )
        async with client:
            self.client = client
            self.stats.connected = True
            self.stats.connects_total += 1
            for sub in self.subscriptions:
                await client.subscribe(sub, qos=1)
            if self.on_connect is not None:
                await self.on_connect(client)
            # After a (re)connect everything not confirmed goes again, in order.
            self._sent = self.outbox.confirmed if self.outbox is not None else 0
            self._rewind = None
            tasks = [asyncio.create_task(self._listen(client))]
            if self.outbox is not None:
                tasks.append(asyncio.create_task(self._drain(client)))
            stopper = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in [*tasks, stopper]:
                    t.cancel()
                await asyncio.gather(*tasks, stopper, return_exceptions=True)
            for t in done:
                if t is not stopper and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            size = len(message.payload) if isinstance(message.payload, bytes | str) else 0
            self.stats.received_total += 1
            self.stats.received_bytes_total += size
            try:
                await self.on_message(message)
            except Exception:  # a bad message must not end the link
                log.exception("%s: handling %s failed", self.config.client_id, message.topic)

    async def _drain(self, client: aiomqtt.Client) -> None:
        assert self.outbox is not None and self.topic_of is not None
        while True:
            if self._rewind is not None:
                self._sent, self._rewind = min(self._sent, self._rewind), None
            rows = await asyncio.to_thread(self.outbox.after, self._sent, INFLIGHT)
            if not rows:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            # QoS 1 publishes in flight together; the broker keeps their order.
            sends = []
            for _seq, stream, payload in rows:
                topic = self.topic_of(stream)
                sends.append(client.publish(topic, payload, qos=1, retain=stream == "up/flex",
                                            timeout=30))  # fmt: skip
            await asyncio.gather(*sends)
            for _, stream, payload in rows:
                self._count(self.topic_of(stream), len(payload))
            self._sent = rows[-1][0]
