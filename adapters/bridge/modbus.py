"""The Modbus bridge: pooled connections, timeouts, retries and breakers for every device."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, Literal

from pymodbus.exceptions import ModbusException

from adapters.breaker import CircuitBreaker, MonotonicClock
from adapters.bridge.errors import (
    CommsError,
    ConnectError,
    ProtocolError,
    RequestTimeoutError,
    exception_error,
    exception_name,
)
from adapters.bridge.link import DeviceLink
from adapters.bridge.pool import ClientPool, Request
from vpp.core.site import ModbusEndpoint, PollSettings

#: Most registers one read may ask for (Modbus limit for function codes 3 and 4).
MAX_READ = 125
#: Most bits one read may ask for (Modbus limit for function codes 1 and 2).
MAX_BITS = 2000
#: Most registers function code 23 may write (its read is bounded by MAX_READ).
MAX_WRITE_READ = 121


class ModbusBridge:
    """Pooled, bounded, fault-isolating Modbus TCP access; use as an async context manager.

    ``connections_per_endpoint``: connections per ``host:port`` (requests in flight there).
    ``backoff_s``/``backoff_max_s``: delay before a retry, doubling from the first to the cap
    [s]. ``breaker_failures``/``breaker_reset_s``: settings of the per-device circuit breakers.
    ``clock``: monotonic seconds for the breakers (injected in tests).

    Per request the endpoint's ``timeout_s`` bounds connecting and, separately, the answer;
    ``retries`` transient failures (no answer, no connection, busy) are retried.
    """

    def __init__(
        self,
        *,
        connections_per_endpoint: int = 4,
        backoff_s: float = 0.05,
        backoff_max_s: float = 1.0,
        breaker_failures: int = 3,
        breaker_reset_s: float = 30.0,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        if connections_per_endpoint < 1:
            raise ValueError(f"connections_per_endpoint must be >= 1: {connections_per_endpoint}")
        self.connections_per_endpoint = connections_per_endpoint
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.breaker_failures = breaker_failures
        self.breaker_reset_s = breaker_reset_s
        self._clock = clock
        _quiet_pymodbus()
        self._pools: dict[tuple[str, int], ClientPool] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._closed = False

    async def __aenter__(self) -> ModbusBridge:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; later requests fail with ConnectError."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        # Let the transports run their close callbacks while the loop still runs.
        await asyncio.sleep(0)

    @property
    def open_connections(self) -> int:
        """Connections currently open, over all endpoints."""
        return sum(p.open_connections for p in self._pools.values())

    def breaker(self, device_id: str, settings: PollSettings | None = None) -> CircuitBreaker:
        """The circuit breaker of ``device_id``, created closed on first use with the
        ``breaker_failures``/``breaker_reset_s`` of ``settings`` (else the bridge's)."""
        found = self._breakers.get(device_id)
        if found is None:
            failures = settings.breaker_failures if settings else self.breaker_failures
            reset_s = settings.breaker_reset_s if settings else self.breaker_reset_s
            found = CircuitBreaker(device_id, failures, reset_s, self._clock)
            self._breakers[device_id] = found
        return found

    def link(
        self, device_id: str, endpoint: ModbusEndpoint, settings: PollSettings | None = None
    ) -> DeviceLink:
        """Register access bound to one device, with its breaker (see :meth:`breaker`)."""
        return DeviceLink(self, device_id, endpoint, self.breaker(device_id, settings))

    def reader(
        self, host: str, port: int, unit: int = 1, timeout_s: float = 1.0, retries: int = 1
    ) -> DeviceLink:
        """A SunSpec ``RegisterReader`` for a device known by its address only (a scan)."""
        endpoint = ModbusEndpoint(
            host=host, port=port, unit=unit, timeout_s=timeout_s, retries=retries
        )
        return self.link(f"{host}:{port}/{unit}", endpoint)

    # read_holding and read_input hand back _read's coroutine rather than awaiting it: every
    # coroutine frame between a poll and the socket is passed twice per request.
    def read_holding(
        self, ep: ModbusEndpoint, address: int, count: int
    ) -> Coroutine[Any, Any, list[int]]:
        """Holding registers ``address .. address+count-1`` (function code 3), any count."""
        return self._read(ep, "holding", address, count)

    def read_input(
        self, ep: ModbusEndpoint, address: int, count: int
    ) -> Coroutine[Any, Any, list[int]]:
        """Input registers ``address .. address+count-1`` (function code 4), any count."""
        return self._read(ep, "input", address, count)

    async def read_bits(
        self, ep: ModbusEndpoint, table: Literal["coils", "discrete"], address: int, count: int
    ) -> list[bool]:
        """Coils (function code 1) or discrete inputs (2) ``address .. address+count-1``."""
        if not 1 <= count <= MAX_BITS or address < 0 or address + count > 65536:
            raise ValueError(f"bad bit range {address}+{count}")
        req = Request(table, ep.unit, address, count)
        pdu = await self._request(ep, req)
        bits = [bool(b) for b in pdu.bits]
        if len(bits) < count:
            raise ProtocolError(f"{_where(ep)}: {req.describe()}: got {len(bits)} bits")
        return bits[:count]  # answers are padded to whole bytes

    async def write(self, ep: ModbusEndpoint, address: int, values: Sequence[int]) -> None:
        """Write holding registers with function code 16 (write multiple registers)."""
        regs = tuple(map(int, values))
        if not regs or address < 0 or address + len(regs) > 65536:
            raise ValueError(f"bad register range {address}+{len(regs)}")
        await self._request(ep, Request("write", ep.unit, address, len(regs), regs))

    async def write_read(
        self,
        ep: ModbusEndpoint,
        address: int,
        values: Sequence[int],
        read_address: int,
        read_count: int,
    ) -> list[int]:
        """Write holding registers from ``address``, then read ``read_count`` from
        ``read_address``, in one request (function code 23; the device writes first)."""
        regs = tuple(map(int, values))
        if not 1 <= len(regs) <= MAX_WRITE_READ or address < 0 or address + len(regs) > 65536:
            raise ValueError(f"bad register range {address}+{len(regs)} to write")
        if not 1 <= read_count <= MAX_READ or read_address < 0 or read_address + read_count > 65536:
            raise ValueError(f"bad register range {read_address}+{read_count} to read")
        req = Request("write_read", ep.unit, address, len(regs), regs, read_address, read_count)
        out = (await self._request(ep, req)).registers
        if len(out) != read_count:
            raise ProtocolError(f"{_where(ep)}: {req.describe()}: got {len(out)} registers")
        return out if isinstance(out, list) else list(out)  # Registers: the bytes kept

    async def _read(self, ep: ModbusEndpoint, op: Any, address: int, count: int) -> list[int]:
        if count < 1 or address < 0 or address + count > 65536:
            raise ValueError(f"bad register range {address}+{count}")
        if count <= MAX_READ:  # one request, as every poll's reads are planned
            req = Request(op, ep.unit, address, count)
            regs = (await self._request(ep, req)).registers
            if len(regs) != count:
                raise ProtocolError(f"{_where(ep)}: {req.describe()}: got {len(regs)} registers")
            return regs if isinstance(regs, list) else list(regs)  # Registers: bytes kept
        out: list[int] = []
        for start in range(address, address + count, MAX_READ):
            req = Request(op, ep.unit, start, min(MAX_READ, address + count - start))
            pdu = await self._request(ep, req)
            regs = list(pdu.registers)
            if len(regs) != req.count:
                raise ProtocolError(f"{_where(ep)}: {req.describe()}: got {len(regs)} registers")
            out += regs
        return out

    async def _request(self, ep: ModbusEndpoint, req: Request) -> Any:
        """One request with retries: transient failures are retried after doubling delays.
        (One coroutine for the retries and the exchange: it is on the path of every poll.)"""
        attempt = 0
        while True:
            try:
                pool = self._pool(ep.host, ep.port)
                try:
                    pdu = await pool.send(req, ep.timeout_s)
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"{_where(ep)}: no answer within {ep.timeout_s:g} s {req.describe()}"
                    ) from None
                except ConnectError as exc:
                    raise ConnectError(f"{exc} (unit {ep.unit}, {req.describe()})") from None
                except (ModbusException, OSError) as exc:
                    raise CommsError(f"{_where(ep)}: {req.describe()}: {exc}") from None
                if pdu.isError():
                    code = int(getattr(pdu, "exception_code", 0))
                    raise exception_error(
                        code,
                        f"{_where(ep)}: Modbus exception {exception_name(code)} {req.describe()}",
                    )
                return pdu
            except CommsError as exc:
                if not exc.transient or attempt >= ep.retries or self._closed:
                    raise
            await asyncio.sleep(min(self.backoff_s * 2**attempt, self.backoff_max_s))
            attempt += 1

    def _pool(self, host: str, port: int) -> ClientPool:
        if self._closed:
            raise ConnectError(f"{host}:{port}: bridge is closed")
        pool = self._pools.get((host, port))
        if pool is None:
            pool = ClientPool(host, port, self.connections_per_endpoint)
            self._pools[(host, port)] = pool
        return pool


def _quiet_pymodbus() -> None:
    """Silence pymodbus' own log lines unless the application set its level on purpose.

    Every failure reaches the caller as a CommsError naming device and registers; pymodbus
    would log each one again without the device, on every poll of a dead device, for months.
    """
    logger = logging.getLogger("pymodbus")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


def _where(ep: ModbusEndpoint) -> str:
    return f"{ep.host}:{ep.port} unit {ep.unit}"
