"""Modbus TCP servers for simulated devices: the only module that touches pymodbus' server API.

One :class:`GatewayServer` listens on one (host, port) and serves every simulated device of
that port by its unit id, like a Modbus TCP gateway in front of an RS-485 line. It uses the
pymodbus 3.16 simulator datastore (``SimDevice``/``SimData``): each device is one shared
register block whose registers are read-only except where the definition says RW, so a
write touching a read-only register is refused with ILLEGAL_ADDRESS before the device sees it.
Holding and input registers share that block (function codes 3 and 4 read the same data): the
SunSpec map is holding registers only, and a register map never puts both tables on one
address (``images.build_map_image`` checks).

The device's own :class:`~adapters.sim.images.RegisterImage` stays the source of truth. The
``action`` callback that pymodbus awaits on every request copies the requested registers from
it (so physics updates need no access to pymodbus internals), passes writes to the device,
and applies response delays and faults. A unit id with no device answers
GATEWAY_NO_RESPONSE, as a real gateway does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.sim.controlbox import SimControlBox
from adapters.sim.device import GATEWAY_NO_RESPONSE, ILLEGAL_FUNCTION, SimulatedDevice

#: Function codes served: read holding/input, write single/multiple, read-write multiple.
_REGISTER_CODES = frozenset({3, 4, 6, 16, 23})
_WRITE_CODES = frozenset({6, 16, 23})
#: Longest a "silent" device holds a request before dropping it [s] (clients give up sooner).
SILENT_HOLD_S = 60.0

Action = Callable[
    [int, int, int, int, list[int], list[int] | list[bool] | None],
    Coroutine[None, None, ExcCodes | None],
]


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


class GatewayServer:
    """A pymodbus TCP server on ``(host, port)`` for ``devices`` (distinct unit ids)."""

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
        held = [t for t in self._held if not t.done()]
        for task in held:
            task.cancel()
        if held:
            await asyncio.gather(*held, return_exceptions=True)
        self._held.clear()

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
