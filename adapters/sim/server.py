"""Modbus TCP servers for simulated devices.

One gateway server listens on one (host, port) and serves every simulated device of that
port by its unit id, like a Modbus TCP gateway in front of an RS-485 line. Two kinds answer
alike. :class:`GatewayServer`, the default, is the pymodbus server with its simulator
datastore (``SimDevice``/``SimData``); its ``action`` callback copies the requested registers
from the device and passes writes to it. :class:`LightGatewayServer` is a small asyncio
protocol of its own for the register function codes 3, 4, 6, 16 and 23 (Modbus
Application Protocol 1.1b3, sections 6.3-6.17): the pymodbus server costs about 130 us of
CPU per request (a thread-safe future per request, one ``struct.pack`` per register),
which at 10,000 devices made the simulator, not the controller, what a benchmark measured.
Requests without a delay or fault are answered inside ``data_received``, a delayed one
from a timer of the loop, a faulty one in a task of its own, so one slow device holds up no
other.

The device's own :class:`~adapters.sim.images.RegisterImage` is the one copy of its
registers: reads copy from it (holding and input registers are the same data, function
codes 3 and 4 read the same registers: the SunSpec map is holding registers only, and a
register map never puts both tables on one address, ``images.build_map_image`` checks), and
writes go through :meth:`SimulatedDevice.write`, which refuses a write touching a read-only
register with ILLEGAL_ADDRESS. A read outside the image is ILLEGAL_ADDRESS, a count beyond
the protocol's limits ILLEGAL_VALUE, another function code ILLEGAL_FUNCTION, and a unit id
with no device GATEWAY_NO_RESPONSE, as a real gateway answers.

:class:`ControlBoxServer` (coils, discrete inputs) stays on the pymodbus server.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.sim.controlbox import SimControlBox
from adapters.sim.device import (
    GATEWAY_NO_RESPONSE,
    ILLEGAL_ADDRESS,
    ILLEGAL_FUNCTION,
    ILLEGAL_VALUE,
    SimulatedDevice,
)

#: Function codes served: read holding/input, write single/multiple, read-write multiple.
_REGISTER_CODES = frozenset({3, 4, 6, 16, 23})
_WRITE_CODES = frozenset({6, 16, 23})
Action = Callable[
    [int, int, int, int, list[int], list[int] | list[bool] | None],
    Coroutine[None, None, ExcCodes | None],
]
#: Longest a "silent" device holds a request before dropping it [s] (clients give up sooner).
SILENT_HOLD_S = 60.0
#: Register count limits per function code (MODBUS Application Protocol 1.1b3).
MAX_READ = 125
MAX_WRITE = 123
MAX_WRITE_READ = 121
_HEADER = struct.Struct(">HHHB")  # MBAP: transaction id, protocol id, length, unit id
_READ = struct.Struct(">HH")
_WRITE_READ = struct.Struct(">HHHHB")


class _Answer(Exception):
    """A Modbus exception code for the request being handled."""

    def __init__(self, code: int) -> None:
        self.code = code


def _registers(data: bytes, count: int, at: int) -> list[int]:
    if len(data) < at + 2 * count:
        raise _Answer(ILLEGAL_VALUE)
    return list(struct.unpack_from(f">{count}H", data, at))


def _read(device: SimulatedDevice, address: int, count: int) -> list[int]:
    """Registers ``address .. address + count - 1`` of ``device`` (faults applied)."""
    if not 1 <= count <= MAX_READ:
        raise _Answer(ILLEGAL_VALUE)
    image = device.image
    offset = address - image.base
    if offset < 0 or offset + count > len(image.regs):
        raise _Answer(ILLEGAL_ADDRESS)
    return device.read_regs(offset, count)


def _write(device: SimulatedDevice, address: int, values: list[int]) -> None:
    code = device.write(address, values)
    if code is not None:
        raise _Answer(code)


def _body(fc: int, device: SimulatedDevice, pdu: bytes) -> bytes:
    """The response PDU after the function code; raises _Answer for an exception."""
    if fc in (3, 4):
        if len(pdu) < 5:
            raise _Answer(ILLEGAL_VALUE)
        address, count = _READ.unpack_from(pdu, 1)
        regs = _read(device, address, count)
        return struct.pack(f">B{count}H", 2 * count, *regs)
    if fc == 6:
        if len(pdu) < 5:
            raise _Answer(ILLEGAL_VALUE)
        address, value = _READ.unpack_from(pdu, 1)
        _write(device, address, [value])
        return pdu[1:5]
    if fc == 16:
        if len(pdu) < 6:
            raise _Answer(ILLEGAL_VALUE)
        address, count = _READ.unpack_from(pdu, 1)
        if not 1 <= count <= MAX_WRITE or pdu[5] != 2 * count:
            raise _Answer(ILLEGAL_VALUE)
        _write(device, address, _registers(pdu, count, 6))
        return pdu[1:5]
    if fc == 23:
        if len(pdu) < 10:
            raise _Answer(ILLEGAL_VALUE)
        r_address, r_count, w_address, w_count, nbytes = _WRITE_READ.unpack_from(pdu, 1)
        if not 1 <= r_count <= MAX_READ or not 1 <= w_count <= MAX_WRITE_READ:
            raise _Answer(ILLEGAL_VALUE)
        if nbytes != 2 * w_count:
            raise _Answer(ILLEGAL_VALUE)
        image = device.image
        offset = r_address - image.base
        if offset < 0 or offset + r_count > len(image.regs):
            raise _Answer(ILLEGAL_ADDRESS)  # checked before the write: all or nothing
        _write(device, w_address, _registers(pdu, w_count, 10))  # the write comes first
        regs = _read(device, r_address, r_count)
        return struct.pack(f">B{r_count}H", 2 * r_count, *regs)
    raise _Answer(ILLEGAL_FUNCTION)


def _frame(tid: int, unit: int, fc: int, body: bytes) -> bytes:
    return _HEADER.pack(tid, 0, 2 + len(body), unit) + bytes((fc,)) + body


def _exception(tid: int, unit: int, fc: int, code: int) -> bytes:
    return _HEADER.pack(tid, 0, 3, unit) + bytes((fc | 0x80, code))


class _Connection(asyncio.Protocol):
    """One client connection of a gateway: frames in, answers out."""

    def __init__(self, gateway: LightGatewayServer) -> None:
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gateway._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway._connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        while len(buf) >= 8:
            tid, pid, length, unit = _HEADER.unpack_from(buf, 0)
            if pid != 0 or not 2 <= length <= 254:  # not Modbus: drop the connection
                buf.clear()
                if self.transport is not None:
                    self.transport.close()
                return
            if len(buf) < 6 + length:
                return
            pdu = bytes(buf[7 : 6 + length])
            del buf[: 6 + length]
            self.gateway._request(self, tid, unit, pdu)

    def send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)


class _Gateway:
    """What both gateway servers hold: the devices of one port (distinct unit ids)."""

    def __init__(
        self,
        host: str,
        port: int,
        devices: Sequence[SimulatedDevice],
        silent_hold_s: float = SILENT_HOLD_S,
    ) -> None:
        units = [d.unit for d in devices]
        if len(set(units)) != len(units):
            raise ValueError(f"port {port}: two simulated devices share a unit id")
        self.host = host
        self.port = port
        self.devices = list(devices)
        self.silent_hold_s = silent_hold_s

    async def _drop_held(self, held_tasks: set[Any]) -> None:
        """Cancel the requests still being held (delays, silent devices) and wait for them."""
        held = [t for t in held_tasks if not t.done()]
        for task in held:
            task.cancel()
        if held:
            await asyncio.gather(*held, return_exceptions=True)
        held_tasks.clear()


class LightGatewayServer(_Gateway):
    """A Modbus TCP server of its own on ``(host, port)`` for ``devices`` (distinct unit ids),
    answering as :class:`GatewayServer` does at a third of its CPU per request
    (``SimFleet(server="light")``, the benchmarks' sharded fleets)."""

    def __init__(
        self,
        host: str,
        port: int,
        devices: Sequence[SimulatedDevice],
        silent_hold_s: float = SILENT_HOLD_S,
    ) -> None:
        super().__init__(host, port, devices, silent_hold_s)
        self._by_unit = {d.unit: d for d in self.devices}
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._held: set[asyncio.Task[None]] = set()
        # Requests of a device that only delays its answers wait on a timer of the loop, not
        # in a task each: a task and its sleep cost about as much CPU as the answer itself.
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._next_timer = 0

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen; raises OSError (e.g. address in use) naming the port."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Connection(self), self.host, self.port, reuse_address=True
            )
        except OSError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc}") from None

    async def stop(self) -> None:
        """Close the listener and every connection; drop requests still being held."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.close()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await self._drop_held(self._held)
        if server is not None:
            await server.wait_closed()

    def _request(self, conn: _Connection, tid: int, unit: int, pdu: bytes) -> None:
        fc = pdu[0]
        device = self._by_unit.get(unit)
        if device is None:
            conn.send(_exception(tid, unit, fc, GATEWAY_NO_RESPONSE))
            return
        device.requests += 1
        if device.fault == "none" and device.response_delay_s > 0:
            key = self._next_timer = self._next_timer + 1
            self._timers[key] = asyncio.get_running_loop().call_later(
                device.response_delay_s, self._delayed_answer, key, conn, device, tid, unit, pdu
            )
        elif device.fault != "none":
            self._hold(conn, device, tid, unit, pdu, delay=True)
        else:
            conn.send(self._answer(device, tid, unit, pdu))

    def _hold(
        self,
        conn: _Connection,
        device: SimulatedDevice,
        tid: int,
        unit: int,
        pdu: bytes,
        delay: bool,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._held_answer(conn, device, tid, unit, pdu, delay)
        )
        self._held.add(task)
        task.add_done_callback(self._held.discard)

    def _answer(self, device: SimulatedDevice, tid: int, unit: int, pdu: bytes) -> bytes:
        fc = pdu[0]
        try:
            return _frame(tid, unit, fc, _body(fc, device, pdu))
        except _Answer as answer:
            return _exception(tid, unit, fc, answer.code)

    def _delayed_answer(
        self, key: int, conn: _Connection, device: SimulatedDevice, tid: int, unit: int, pdu: bytes
    ) -> None:
        """The answer of a request held for the device's response delay, made now (a write
        takes effect when it is answered, as with a fault's hold); a fault that came up
        meanwhile acts as if it had been there (without a second delay)."""
        if self._timers.pop(key, None) is None:
            return
        if device.fault == "none":
            conn.send(self._answer(device, tid, unit, pdu))
        else:
            self._hold(conn, device, tid, unit, pdu, delay=False)

    async def _held_answer(
        self,
        conn: _Connection,
        device: SimulatedDevice,
        tid: int,
        unit: int,
        pdu: bytes,
        delay: bool = True,
    ) -> None:
        """Response delay and the faults: "silent" holds and drops, "error" answers with
        the device's error code (a function code 23 request is held once, not per half)."""
        if delay and device.response_delay_s > 0:
            await asyncio.sleep(device.response_delay_s)
        if device.fault == "silent":
            await asyncio.sleep(self.silent_hold_s)
            return  # no answer
        if device.fault == "error":
            conn.send(_exception(tid, unit, pdu[0], device.error_code))
            return
        conn.send(self._answer(device, tid, unit, pdu))


def _runs(writable: Sequence[bool]) -> list[tuple[int, int, bool]]:
    """(offset, count, writable) of the maximal runs of equal writability."""
    runs: list[tuple[int, int, bool]] = []
    start = 0
    for i in range(1, len(writable) + 1):
        if i == len(writable) or writable[i] != writable[start]:
            runs.append((start, i - start, writable[start]))
            start = i
    return runs


def _simdata(device: SimulatedDevice) -> list[SimData]:
    image = device.refresh()
    return [
        SimData(
            address=image.base + off,
            values=image.regs[off : off + count],
            datatype=DataType.REGISTERS,
            readonly=not writable,
        )
        for off, count, writable in _runs(image.writable)
    ]


class GatewayServer(_Gateway):
    """A pymodbus TCP server on ``(host, port)`` for ``devices`` (distinct unit ids): the
    simulated fleet's default (``SimFleet(server="pymodbus")``)."""

    def __init__(
        self,
        host: str,
        port: int,
        devices: Sequence[SimulatedDevice],
        silent_hold_s: float = SILENT_HOLD_S,
    ) -> None:
        super().__init__(host, port, devices, silent_hold_s)
        self._server: ModbusTcpServer | None = None
        self._held: set[asyncio.Task[object]] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen; raises OSError (e.g. address in use) naming the port."""
        if self._server is not None:
            return
        context = [SimDevice(id=d.unit, simdata=_simdata(d), action=self._action(d))
                   for d in self.devices]  # fmt: skip
        if all(d.unit != 0 for d in self.devices):
            context.append(self._no_device())
        self._server = await _listen(self.host, self.port, context)

    async def stop(self) -> None:
        """Close the listener and every connection; drop requests still being held."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
        await self._drop_held(self._held)

    def _no_device(self) -> SimDevice:
        async def action(*_args: object) -> ExcCodes | None:
            return ExcCodes(GATEWAY_NO_RESPONSE)

        # Unit id 0 catches every id without a device; it spans the whole address space so
        # the callback (not an address check) decides the answer.
        block = SimData(address=0, count=0x10000, values=0, datatype=DataType.REGISTERS)
        return SimDevice(id=0, simdata=[block], action=action)

    def _action(self, device: SimulatedDevice) -> Action:
        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            # Function code 23 calls back twice, write then read: one request, one hold.
            second_half = function_code == 23 and values is None
            if not second_half:
                device.requests += 1
            if (device.fault != "none" or device.response_delay_s > 0) and not second_half:
                await self._hold(device)
                if device.fault == "error":
                    return ExcCodes(device.error_code)
            if function_code not in _REGISTER_CODES:
                return ExcCodes(ILLEGAL_FUNCTION)
            if function_code in _WRITE_CODES and values is not None:
                code = device.write(address, [int(v) for v in values])
                return ExcCodes(code) if code is not None else None
            device.read_into(registers, address - start_address, count)
            return None

        return action

    async def _hold(self, device: SimulatedDevice) -> None:
        """Response delay and the "silent" fault; held requests are dropped by ``stop``."""
        task = asyncio.current_task()
        if task is not None:
            self._held.add(task)
        try:
            if device.response_delay_s > 0:
                await asyncio.sleep(device.response_delay_s)
            if device.fault == "silent":
                await asyncio.sleep(self.silent_hold_s)
                # pymodbus sends no answer for this exception (ignore_missing_devices=True).
                raise NoSuchIdException(f"simulated device {device.id} is silent")
        finally:
            if task is not None:
                self._held.discard(task)


class ControlBoxServer:
    """A pymodbus TCP server on ``(host, port)`` for one simulated control box at its unit
    id: its relays as coils and discrete inputs, its heartbeat and registers as holding (and
    input) registers. Every request copies the box's state into the datastore first, so
    what a test sets on the box is what the next read sees."""

    def __init__(self, host: str, port: int, box: SimControlBox) -> None:
        self.host = host
        self.port = port
        self.box = box
        self._server: ModbusTcpServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        box = self.box
        n_bits, n_regs = box.bit_span(), box.register_span()

        def bits() -> SimData:
            return SimData(address=0, values=[False] * n_bits, datatype=DataType.BITS)

        def regs() -> SimData:
            return SimData(address=0, values=[0] * n_regs, datatype=DataType.REGISTERS)

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            box.requests += 1
            if values is not None:
                return ExcCodes(ILLEGAL_FUNCTION)  # the box is read-only
            if function_code in (1, 2):
                words = _pack(box.bits(n_bits))
                registers[: len(words)] = words
            else:
                regs = box.holding(n_regs)
                registers[: len(regs)] = regs
            return None

        device = SimDevice(
            id=box.config.modbus.unit,
            simdata=([bits()], [bits()], [regs()], [regs()]),
            action=action,
        )
        self._server = await _listen(self.host, self.port, [device])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]


async def _listen(host: str, port: int, context: list[Any]) -> ModbusTcpServer:
    """A pymodbus server for ``context`` listening on ``host:port`` (OSError if it cannot)."""
    server = ModbusTcpServer(context=context, address=(host, port), ignore_missing_devices=True)
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:
        await server.shutdown()  # type: ignore[no-untyped-call]
        raise OSError(f"cannot listen on {host}:{port}: {exc}") from None
    return server


def _pack(bits: Sequence[bool]) -> list[int]:
    """Bits as 16-bit words, bit address ``16 * word + i`` in bit ``i`` of each word."""
    return [
        sum(1 << i for i, b in enumerate(bits[w : w + 16]) if b) for w in range(0, len(bits), 16)
    ]
