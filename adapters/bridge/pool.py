"""Connections to one ``host:port``: a small pool of pymodbus async clients.

A pymodbus client serialises its requests (one in flight per connection; measured: ten
concurrent reads on one client take ten times as long as on ten clients), so a pool holds up
to ``size`` connections and hands each to one request at a time. A connection that did not
complete its exchange (timeout, broken, cancelled) is closed and never reused: a late answer
must not be taken for the answer to the next request.

Every exchange has its deadline (``timeout_s`` after it was sent), enforced by one timer per
pool rather than one per request: the pool has at most ``size`` exchanges in flight, and its
timer is set to the earliest of their deadlines. When it fires, every exchange past its
deadline fails with TimeoutError (its pending answer is failed, so the request leaves
pymodbus at once), and the timer is set again for those still in flight.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException

from adapters.bridge.decoder import use_register_decoder
from adapters.bridge.errors import ConnectError

#: pymodbus' own timeout is switched off (``asyncio.wait_for`` without a timer, for the answer
#: and for connecting): the bridge enforces its own per request and per connect, so each
#: request runs one timer, not two.
_PYMODBUS_TIMEOUT_S = None


@dataclass(slots=True)  # not frozen: made per request, and a frozen one costs 5x to make
class Request:
    """One Modbus request: read ``count`` registers or bits, or write ``values``, at
    ``address``."""

    op: Literal["holding", "input", "write", "write_read", "coils", "discrete"]
    unit: int
    address: int
    count: int
    values: Sequence[int] = ()
    #: "write_read" (function code 23): the registers read after the write.
    read_address: int = 0
    read_count: int = 0

    def describe(self) -> str:
        if self.op == "write":
            return f"writing {self.count} registers at {self.address}"
        if self.op == "write_read":
            return (
                f"writing {self.count} registers at {self.address} and reading "
                f"{self.read_address}+{self.read_count} (function code 23)"
            )
        if self.op in ("coils", "discrete"):
            table = "coils" if self.op == "coils" else "discrete inputs"
            return f"reading {table} {self.address}+{self.count}"
        return f"reading {self.op} {self.address}+{self.count}"


def execute(client: AsyncModbusTcpClient, req: Request) -> Awaitable[Any]:
    """Send ``req`` on ``client``; await it for the response PDU (an exception PDU included).

    Returns pymodbus' own awaitable: a coroutine of ours around it would be one more frame
    to pass at every step of every request."""
    if req.op == "holding":
        return client.read_holding_registers(req.address, count=req.count, device_id=req.unit)
    if req.op == "input":
        return client.read_input_registers(req.address, count=req.count, device_id=req.unit)
    if req.op == "coils":
        return client.read_coils(req.address, count=req.count, device_id=req.unit)
    if req.op == "discrete":
        return client.read_discrete_inputs(req.address, count=req.count, device_id=req.unit)
    if req.op == "write_read":
        return client.readwrite_registers(
            read_address=req.read_address,
            read_count=req.read_count,
            write_address=req.address,
            values=list(req.values),
            device_id=req.unit,
        )
    return client.write_registers(req.address, list(req.values), device_id=req.unit)


class _DeadlinePassedError(Exception):
    """Set on a pending answer whose exchange ran past its deadline (the pool turns it into
    TimeoutError; pymodbus lets it through as it is)."""


#: An exchange counts as past its deadline this much early: a loop may run a timer a little
#: before its time (uvloop rounds to milliseconds), and it should not have to run it twice.
_EARLY_S = 0.001


class _Exchange:
    """One request in flight on ``client``, due by ``deadline`` (loop time). ``before`` is
    the client's pending-answer future before the request went out: the request's own is
    the one that replaced it."""

    __slots__ = ("before", "client", "deadline")

    def __init__(self, deadline: float, client: AsyncModbusTcpClient) -> None:
        self.deadline = deadline
        self.client = client
        self.before = client.ctx.response_future


class _StaleConnectionError(Exception):
    """A pooled connection was found closed by the peer when it was used again."""


class ClientPool:
    """Up to ``size`` connections to ``host:port``, each used by one request at a time."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host = host
        self.port = port
        self._free = size  # connections not in use by a request
        self._queued: collections.deque[asyncio.Future[None]] = collections.deque()
        self._idle: list[AsyncModbusTcpClient] = []
        self._all: set[AsyncModbusTcpClient] = set()
        self._connect_failed_at = -math.inf
        self.closed = False
        self._in_flight: list[_Exchange] = []  # at most size
        self._timer: asyncio.TimerHandle | None = None

    async def send(self, req: Request, timeout_s: float) -> Any:
        """Send ``req`` and return the answer PDU; ``timeout_s`` bounds connecting and,
        separately, the answer (TimeoutError). Waiting for a free connection is not bounded
        (a busy gateway is not a dead one).

        A reused connection that turns out closed by the peer (the device restarted while it
        sat idle) is replaced by a fresh one, once, together with the other idle ones.
        """
        try:
            return await self._send(req, timeout_s, reuse=True)
        except _StaleConnectionError:
            for client in self._idle:
                self._discard(client)
            self._idle.clear()
            return await self._send(req, timeout_s, reuse=False)

    async def _send(self, req: Request, timeout_s: float, reuse: bool) -> Any:
        """One exchange on a connection of its own: an idle one (unless ``reuse`` is False)
        or a new one. The connection is kept for the next request only if the exchange
        completed; the pool's timer bounds the answer (see the module docstring)."""
        queued_at = time.monotonic()
        if self._free and not self._queued:  # a free connection: no coroutine to wait in
            self._free -= 1
        else:
            await self._queue()
        try:
            if self.closed:
                raise ConnectError(f"{self.host}:{self.port}: bridge is closed")
            client = self._take_idle() if reuse else None
            reused = client is not None
            if client is None:
                # A connect that failed while this request queued fails it too: a dead
                # gateway with 100 units costs one connect timeout, not 100 of them.
                if self._connect_failed_at > queued_at:
                    raise ConnectError(f"cannot connect to {self.host}:{self.port}")
                client = await self._connect(timeout_s)
            completed = False
            exchange = self._watch(client, timeout_s)
            try:
                out = await execute(client, req)
                completed = True
                return out
            except _DeadlinePassedError:
                raise TimeoutError from None
            except ConnectionException as exc:
                if reused:
                    raise _StaleConnectionError(str(exc)) from exc
                raise
            finally:
                self._in_flight.remove(exchange)
                if completed and client.connected and not self.closed:
                    self._idle.append(client)
                else:
                    self._discard(client)
        finally:
            self._release()

    async def _queue(self) -> None:
        """Wait for a connection to be free (first come, first served): a request that
        ends hands its connection slot straight to the first one waiting."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if not turn.cancelled():  # handed a slot, then cancelled: pass it on
                self._release()
            raise

    def _release(self) -> None:
        while self._queued:
            turn = self._queued.popleft()
            if not turn.done():  # a cancelled waiter's turn is done already
                turn.set_result(None)
                return
        self._free += 1

    def _watch(self, client: AsyncModbusTcpClient, timeout_s: float) -> _Exchange:
        """Register the exchange about to start on ``client``, due in ``timeout_s``."""
        loop = asyncio.get_running_loop()
        exchange = _Exchange(loop.time() + timeout_s, client)
        self._in_flight.append(exchange)
        timer = self._timer
        if timer is None or exchange.deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(exchange.deadline, self._expire)
        return exchange

    def _expire(self) -> None:
        """The pool's timer: fail the exchanges past their deadline, wait for the next."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + _EARLY_S
        due = math.inf
        for exchange in self._in_flight:
            if exchange.deadline > now:
                due = min(due, exchange.deadline)
                continue
            answer = exchange.client.ctx.response_future
            if answer is not exchange.before and not answer.done():
                answer.set_exception(_DeadlinePassedError())
            elif answer is exchange.before:
                # Not waiting for an answer (pymodbus did not send): drop the connection,
                # which fails the request at once (ConnectionException).
                self._discard(exchange.client)
        if due < math.inf:
            self._timer = loop.call_at(due, self._expire)

    def _take_idle(self) -> AsyncModbusTcpClient | None:
        while self._idle:
            client = self._idle.pop()
            if client.connected:
                return client
            self._discard(client)
        return None

    async def _connect(self, timeout_s: float) -> AsyncModbusTcpClient:
        # reconnect_delay=0: pymodbus must not start its own reconnect tasks; the pool
        # reconnects on demand.
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            reconnect_delay=0,
            timeout=_PYMODBUS_TIMEOUT_S,  # type: ignore[arg-type]  # None: no timer
            retries=0,
        )
        client.ctx.trace_connect = _fail_pending_on_disconnect(client)
        use_register_decoder(client)
        self._all.add(client)
        try:
            async with asyncio.timeout(timeout_s):
                connected = await client.connect()
        except TimeoutError:
            connected = False
        except BaseException:
            self._discard(client)
            raise
        if not connected:
            self._discard(client)
            self._connect_failed_at = time.monotonic()
            raise ConnectError(
                f"cannot connect to {self.host}:{self.port} (refused, unreachable or no "
                f"answer within {timeout_s:g} s)"
            )
        return client

    def _discard(self, client: AsyncModbusTcpClient) -> None:
        client.close()
        self._all.discard(client)

    def close(self) -> None:
        """Close every connection, idle or in use; the pool refuses further requests."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for client in list(self._all):
            self._discard(client)
        self._idle.clear()

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self._all if c.connected)


def _fail_pending_on_disconnect(client: AsyncModbusTcpClient) -> Callable[[bool], None]:
    """A pymodbus ``trace_connect`` hook failing the request in flight when the peer hangs up.

    Without it a request whose server went away waits for its full timeout.
    """

    def on_connect(connected: bool) -> None:
        future = getattr(client.ctx, "response_future", None)
        if not connected and future is not None and not future.done():
            future.set_exception(ConnectionException("connection closed by peer"))

    return on_connect
