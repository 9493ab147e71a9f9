"""Small real Modbus TCP servers on loopback for the adapter tests.

Each :class:`FakeUnit` is one unit id with a register image the test can read and change, a
log of the writes it received, and fault switches: ``fault`` "error" answers every request
with exception 0x04, "silent" never answers, and ``delay_s`` delays every answer.
:class:`UnitServer` serves a set of units on one port and can be stopped and started again on
the same port (a device restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.sunspec.decode import encode_model
from adapters.sunspec.models import load_model
from tests.conftest import LOOPBACK

SUNS = [0x5375, 0x6E53]
END = [0xFFFF, 0]
_WRITE_CODES = {6, 16, 23}
_FAULT_CODES = {"error": ExcCodes.DEVICE_FAILURE, "busy": ExcCodes.DEVICE_BUSY}


def sunspec_image(models: Sequence[tuple[int, Mapping[str, Any]]]) -> list[int]:
    """Registers from the base on: "SunS", each (model id, point values) encoded, end marker."""
    regs = list(SUNS)
    for model_id, values in models:
        regs += encode_model(load_model(model_id), values)
    return regs + END


def resize_model(regs: Sequence[int], model_id: int, length: int, fill: int = 0x1234) -> list[int]:
    """A SunSpec image (as from sunspec_image) whose first ``model_id`` reports L=``length``:
    its body cut to that many registers, or extended with ``fill`` (vendor registers)."""
    address = 2
    while regs[address] != 0xFFFF:
        if regs[address] == model_id:
            body = list(regs[address + 2 : address + 2 + regs[address + 1]])
            body = body[:length] + [fill] * (length - len(body))
            rest = regs[address + 2 + regs[address + 1] :]
            return [*regs[:address], model_id, length, *body, *rest]
        address += 2 + regs[address + 1]
    raise ValueError(f"no model {model_id} in the image")


class FakeUnit:
    """One unit id: ``regs`` holds the registers from ``start`` on (both holding and input)."""

    def __init__(self, unit: int, regs: Sequence[int], start: int = 40000) -> None:
        self.unit = unit
        self.start = start
        self.regs = list(regs)
        self.fault = "none"
        self.delay_s = 0.0
        self.writes: list[tuple[int, int, list[int]]] = []
        self.ignore_writes = False
        self.requests = 0
        # (start, end) on time.monotonic() of every delayed answer: what was in flight when
        self.delayed: list[tuple[float, float]] = []
        self._released = asyncio.Event()
        #: Set when a request reaches the unit (tests wait for it rather than poll).
        self.received = asyncio.Event()

    def get(self, address: int, count: int = 1) -> list[int]:
        return self.regs[address - self.start : address - self.start + count]

    def set(self, address: int, values: Sequence[int]) -> None:
        self.regs[address - self.start : address - self.start + len(values)] = list(values)

    def release(self) -> None:
        """Let requests held by a "silent" fault finish (the server is going away)."""
        self._released.set()

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        # Function code 23 calls back twice (write, then read): one request, one delay.
        second_half = function_code == 23 and set_values is None
        self.requests += 0 if second_half else 1
        self.received.set()
        if self.delay_s and not second_half:
            started = time.monotonic()
            await asyncio.sleep(self.delay_s)
            self.delayed.append((started, time.monotonic()))
        if self.fault == "silent":
            await self._released.wait()
            return ExcCodes.GATEWAY_NO_RESPONSE
        if self.fault in _FAULT_CODES:
            return _FAULT_CODES[self.fault]
        lo = address - start_address
        if function_code in _WRITE_CODES and set_values is not None:
            values = [int(v) for v in set_values]
            self.writes.append((function_code, address, values))
            if not self.ignore_writes:  # reads copy from ``regs``, so the write is lost
                self.set(address, values)
        else:
            current[lo : lo + count] = self.get(address, count)
        return None

    def sim_device(self) -> SimDevice:
        data = SimData(self.start, values=list(self.regs), datatype=DataType.REGISTERS)
        return SimDevice(id=self.unit, simdata=[data], action=self.action)


class UnitServer:
    """A Modbus TCP server on 127.0.0.1:``port`` serving ``units``; async context manager."""

    def __init__(self, port: int, units: Sequence[FakeUnit]) -> None:
        self.port = port
        self.units = {u.unit: u for u in units}
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        devices = [u.sim_device() for u in self.units.values()]
        self._server = ModbusTcpServer(context=devices, address=(LOOPBACK, self.port))
        for unit in self.units.values():
            unit._released = asyncio.Event()
        for _ in range(50):  # the port of a just-stopped server may need a moment
            with contextlib.suppress(RuntimeError):
                await self._server.serve_forever(background=True)
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"cannot listen on port {self.port}")

    async def stop(self) -> None:
        for unit in self.units.values():
            unit.release()
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        await asyncio.sleep(0.02)  # let handler tasks finish

    async def __aenter__(self) -> UnitServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
