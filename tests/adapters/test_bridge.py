"""The Modbus bridge against real pymodbus servers on loopback."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from adapters.bridge import (
    BreakerOpenError,
    CommsError,
    ConnectError,
    IllegalAddressError,
    ModbusBridge,
    ModbusExceptionError,
    RequestTimeoutError,
)
from adapters.sunspec.discovery import RegisterReadError
from tests.adapters.servers import FakeUnit, UnitServer
from tests.conftest import free_port
from vpp.core.loop import LOOPS, run
from vpp.core.site import ModbusEndpoint


def endpoint(port: int, unit: int = 1, timeout_s: float = 0.5, retries: int = 0) -> ModbusEndpoint:
    return ModbusEndpoint(port=port, unit=unit, timeout_s=timeout_s, retries=retries)


def counting_unit(unit: int = 1, n: int = 300) -> FakeUnit:
    return FakeUnit(unit, [(unit * 1000 + i) % 65536 for i in range(n)])


async def test_reads_holding_and_input_and_writes_with_function_code_16() -> None:
    port = free_port()
    fake = counting_unit()
    async with UnitServer(port, [fake]), ModbusBridge() as bridge:
        ep = endpoint(port)
        assert await bridge.read_holding(ep, 40010, 3) == [1010, 1011, 1012]
        assert await bridge.read_input(ep, 40020, 2) == [1020, 1021]
        await bridge.write(ep, 40005, [7, 65535])
        assert fake.writes == [(16, 40005, [7, 65535])]
        assert await bridge.read_holding(ep, 40004, 3) == [1004, 7, 65535]


async def test_long_read_is_split_into_requests_of_at_most_125() -> None:
    port = free_port()
    fake = counting_unit()
    async with UnitServer(port, [fake]), ModbusBridge() as bridge:
        regs = await bridge.read_holding(endpoint(port), 40000, 260)
    assert regs == [1000 + i for i in range(260)]
    assert fake.requests == 3


async def test_exception_response_carries_its_code() -> None:
    port = free_port()
    fake = counting_unit(n=10)
    async with UnitServer(port, [fake]), ModbusBridge() as bridge:
        link = bridge.link("pv-9", endpoint(port))
        with pytest.raises(IllegalAddressError, match=r"pv-9: .*0x02 ILLEGAL_ADDRESS") as info:
            await link.read(40005, 10)  # runs past the 10 registers the unit has
        assert info.value.code == 2
        assert isinstance(info.value, RegisterReadError)  # SunSpec discovery: "not here"
        fake.fault = "error"
        with pytest.raises(ModbusExceptionError, match="0x04 DEVICE_FAILURE") as info2:
            await link.read(40000, 2)
        assert not isinstance(info2.value, RegisterReadError)


async def test_transient_errors_are_retried_with_backoff_others_are_not() -> None:
    port = free_port()
    fake = counting_unit()
    async with UnitServer(port, [fake]), ModbusBridge(backoff_s=0.02) as bridge:
        fake.fault = "busy"
        t0 = time.monotonic()
        with pytest.raises(ModbusExceptionError, match="0x06 DEVICE_BUSY"):
            await bridge.read_holding(endpoint(port, retries=3), 40000, 1)
        assert fake.requests == 4
        assert time.monotonic() - t0 >= 0.02 + 0.04 + 0.08  # doubling delays
        fake.fault, fake.requests = "error", 0
        with pytest.raises(ModbusExceptionError):
            await bridge.read_holding(endpoint(port, retries=3), 40000, 1)
        assert fake.requests == 1  # a device failure answer is final


async def test_offline_port_fails_fast_with_connect_error() -> None:
    port = free_port()  # nothing listens
    async with ModbusBridge() as bridge:
        t0 = time.monotonic()
        with pytest.raises(ConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
            await bridge.link("bat-3", endpoint(port, timeout_s=2.0)).read(40000, 2)
        assert time.monotonic() - t0 < 1.0


async def test_silent_unit_times_out_while_its_neighbour_answers() -> None:
    """A unit that never answers holds up neither its gateway nor a neighbour behind it: the
    neighbour's answer comes while the silent unit's request is still waiting, which then
    fails at its own deadline, not before. Judged by order, not by wall-clock bounds (the
    connection is made first, so its set-up is not inside the deadline on a busy machine)."""
    port = free_port()
    silent, ok = counting_unit(1), counting_unit(2)
    silent.fault = "silent"
    async with UnitServer(port, [silent, ok]), ModbusBridge() as bridge:
        assert await bridge.read_holding(endpoint(port, 2), 40000, 2) == [2000, 2001]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        slow = asyncio.ensure_future(bridge.read_holding(endpoint(port, 1, 2.0), 40000, 2))
        async with asyncio.timeout(30):  # bounds on the test, not the thing tested
            await silent.received.wait()
            assert await bridge.read_holding(endpoint(port, 2), 40000, 2) == [2000, 2001]
            assert not slow.done()
            with pytest.raises(RequestTimeoutError, match=r"no answer within 2 s"):
                await slow
        assert loop.time() - t0 >= 2.0 - 0.001
        # The timed-out connection was dropped; the next request gets a fresh one.
        assert await bridge.read_holding(endpoint(port, 2), 40001, 1) == [2001]


async def test_each_request_fails_at_its_own_deadline_under_one_timer_per_gateway() -> None:
    """The pool's one timer serves requests with different timeouts: each fails no earlier
    than its own deadline and in deadline order (the later one was sent first), a slow
    unit's late answer is never taken for a later request, and a neighbour still answers."""
    port = free_port()
    slow, silent, ok = counting_unit(1), counting_unit(2), counting_unit(3)
    slow.delay_s = 1.0  # answers, but long after its 0.2 s deadline
    silent.fault = "silent"
    async with UnitServer(port, [slow, silent, ok]), ModbusBridge() as bridge:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        late = asyncio.ensure_future(bridge.read_holding(endpoint(port, 2, 2.0), 40000, 2))
        async with asyncio.timeout(30):  # bounds on the test, not the thing tested
            await silent.received.wait()  # the later deadline is the pool's timer first
        early = asyncio.ensure_future(bridge.read_holding(endpoint(port, 1, 0.2), 40000, 2))
        assert await bridge.read_holding(endpoint(port, 3), 40000, 2) == [3000, 3001]
        async with asyncio.timeout(30):
            done, _ = await asyncio.wait({late, early}, return_when=asyncio.FIRST_COMPLETED)
            assert done == {early}
            with pytest.raises(RequestTimeoutError, match=r"unit 1: no answer within 0\.2 s"):
                await early
            assert loop.time() - t0 >= 0.2 - 0.001
            assert not late.done()
            with pytest.raises(RequestTimeoutError, match=r"unit 2: no answer within 2 s"):
                await late
            assert loop.time() - t0 >= 2.0 - 0.001
        slow.delay_s = 0.0
        slow.regs[0] = 4321
        assert await bridge.read_holding(endpoint(port, 1), 40000, 2) == [4321, 1001]
        assert slow.requests == 2
        silent.release()


async def _silent_unit_times_out() -> float:
    """Seconds (loop time) from sending to a silent unit's timeout at 0.25 s."""
    port = free_port()
    silent = counting_unit(1)
    silent.fault = "silent"
    async with UnitServer(port, [silent]), ModbusBridge() as bridge:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(30):  # a bound on the test, not the thing tested
            t0 = loop.time()
            with pytest.raises(RequestTimeoutError, match=r"no answer within 0\.25 s"):
                await bridge.read_holding(endpoint(port, 1, 0.25), 40000, 1)
            elapsed = loop.time() - t0
        silent.release()
        return elapsed


@pytest.mark.parametrize("loop", LOOPS)
def test_the_pool_timer_fires_at_the_deadline_on_each_loop(loop: str) -> None:
    # uvloop runs timers on whole milliseconds: the pool takes a deadline 1 ms early as due.
    assert run(_silent_unit_times_out(), loop) >= 0.25 - 0.002


async def test_requests_queue_for_a_connection_and_a_cancelled_one_leaves_its_turn() -> None:
    port = free_port()
    silent, ok = counting_unit(1), counting_unit(2)
    silent.fault = "silent"
    async with UnitServer(port, [silent, ok]), ModbusBridge(connections_per_endpoint=1) as bridge:
        held = asyncio.ensure_future(bridge.read_holding(endpoint(port, 1, 0.3), 40000, 1))
        async with asyncio.timeout(30):  # a bound on the test, not the thing tested
            await silent.received.wait()
        cancelled = asyncio.ensure_future(bridge.read_holding(endpoint(port, 2), 40000, 1))
        waiting = asyncio.ensure_future(bridge.read_holding(endpoint(port, 2), 40001, 1))
        await asyncio.sleep(0)  # both are queued behind the one connection now
        assert not (cancelled.done() or waiting.done())
        cancelled.cancel()
        with pytest.raises(RequestTimeoutError):
            await held
        assert await waiting == [2001]
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert ok.requests == 1
        assert await bridge.read_holding(endpoint(port, 2), 40002, 1) == [2002]
        silent.release()


async def test_server_restart_reconnects_on_next_request() -> None:
    port = free_port()
    fake = counting_unit()
    server = UnitServer(port, [fake])
    async with server, ModbusBridge() as bridge:
        ep = endpoint(port)  # no retries: the reconnect must not need one
        assert await bridge.read_holding(ep, 40000, 1) == [1000]
        await server.stop()
        await server.start()
        assert await bridge.read_holding(ep, 40000, 1) == [1000]


async def test_request_in_flight_when_server_goes_down_fails_without_waiting_its_timeout() -> None:
    port = free_port()
    fake = counting_unit()
    fake.delay_s = 0.3
    server = UnitServer(port, [fake])
    async with server, ModbusBridge() as bridge:
        pending = asyncio.ensure_future(
            bridge.read_holding(endpoint(port, timeout_s=3.0), 40000, 1)
        )
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await server.stop()
        with pytest.raises(CommsError):  # peer closed; the fresh connection is refused
            await pending
        assert time.monotonic() - t0 < 1.0
        await server.start()
        fake.delay_s = 0.0
        assert await bridge.read_holding(endpoint(port), 40000, 1) == [1000]


@pytest.mark.parametrize(("connections", "lo_s", "hi_s"), [(4, 0.15, 0.5), (1, 0.75, 2.0)])
async def test_gateway_units_are_polled_over_several_connections(
    connections: int, lo_s: float, hi_s: float
) -> None:
    """pymodbus serialises requests on one connection; the pool spreads them over several."""
    port = free_port()
    units = [counting_unit(u) for u in range(1, 9)]
    for fake in units:
        fake.delay_s = 0.1
    async with UnitServer(port, units), ModbusBridge(connections_per_endpoint=connections) as br:
        t0 = time.monotonic()
        got = await asyncio.gather(
            *(br.read_holding(endpoint(port, u.unit, 3.0), 40000, 1) for u in units)
        )
        elapsed = time.monotonic() - t0
        assert got == [[u.unit * 1000] for u in units]
        assert br.open_connections == connections
    assert lo_s <= elapsed < hi_s


async def test_close_closes_every_connection_and_refuses_more_requests() -> None:
    port = free_port()
    async with UnitServer(port, [counting_unit(1), counting_unit(2)]):
        bridge = ModbusBridge()
        async with bridge:
            await asyncio.gather(
                *(bridge.read_holding(endpoint(port, u), 40000, 1) for u in (1, 2))
            )
            assert bridge.open_connections == 2
        assert bridge.open_connections == 0
        with pytest.raises(ConnectError, match="closed"):
            await bridge.read_holding(endpoint(port), 40000, 1)


async def test_bad_register_ranges_are_refused_before_any_io() -> None:
    async with ModbusBridge() as bridge:
        with pytest.raises(ValueError, match="bad register range"):
            await bridge.read_holding(endpoint(1), 65535, 2)
        with pytest.raises(ValueError, match="bad register range"):
            await bridge.write(endpoint(1), 0, [])


async def test_dead_gateway_costs_one_connect_timeout_not_one_per_unit() -> None:
    """A host that never completes the TCP handshake: requests queued behind the failing
    connects fail at once instead of each waiting for its own connect timeout."""
    port = free_port()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", port))
        listener.listen(0)  # never accepted: once the backlog is full, handshakes stall
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.1)
        async with ModbusBridge(connections_per_endpoint=2) as bridge:
            t0 = time.monotonic()
            results = await asyncio.gather(
                *(bridge.read_holding(endpoint(port, u, 0.4), 40000, 1) for u in range(1, 21)),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - t0
    finally:
        for sock in [*fillers, listener]:
            sock.close()
    assert all(isinstance(r, ConnectError) for r in results), results
    assert elapsed < 1.0  # 20 units x 0.4 s / 2 connections would be 4 s


async def test_an_attempt_gives_the_breaker_its_verdict() -> None:
    """A clean exit is a success; the caller's own refusal is a success and propagates; any
    other exception is a failure (and opens the breaker at its threshold); a cancellation
    is no verdict; an open breaker refuses the next attempt at once."""
    async with ModbusBridge(breaker_failures=2, clock=lambda: 0.0) as bridge:
        link = bridge.link("d1", ModbusEndpoint(host="127.0.0.1", port=1, unit=1))
        breaker = link.breaker
        with pytest.raises(OSError, match="gone"):
            async with link.attempt():
                raise OSError("gone")
        assert breaker.consecutive_failures == 1 and breaker.last_error == "gone"
        with pytest.raises(ValueError, match="refused"):
            async with link.attempt(not_failures=(ValueError,)):
                raise ValueError("refused")
        assert breaker.consecutive_failures == 0
        with pytest.raises(asyncio.CancelledError):
            async with link.attempt():
                raise asyncio.CancelledError
        assert breaker.consecutive_failures == 0
        for _ in range(2):
            with pytest.raises(OSError):
                async with link.attempt():
                    raise OSError("gone again")
        with pytest.raises(BreakerOpenError):
            async with link.attempt():
                pytest.fail("an open breaker lets nothing through")
