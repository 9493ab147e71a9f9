"""Register access bound to one device: what drivers and controls talk through."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from adapters.breaker import CircuitBreaker
from adapters.bridge.errors import CommsError, with_device
from vpp.core.site import ModbusEndpoint

if TYPE_CHECKING:
    from adapters.bridge.modbus import ModbusBridge


class DeviceLink:
    """One device's registers: a SunSpec ``RegisterReader`` plus input reads and writes.

    Errors carry the device id in front. :meth:`attempt` wraps one whole device operation (a
    poll, a control write) in the device's circuit breaker.
    """

    def __init__(
        self,
        bridge: ModbusBridge,
        device_id: str,
        endpoint: ModbusEndpoint,
        breaker: CircuitBreaker,
    ) -> None:
        self.bridge = bridge
        self.device_id = device_id
        self.endpoint = endpoint
        self.breaker = breaker

    async def read(self, address: int, count: int) -> list[int]:
        """Holding registers ``address .. address+count-1``."""
        try:
            return await self.bridge.read_holding(self.endpoint, address, count)
        except CommsError as exc:
            raise with_device(exc, self.device_id) from None

    async def read_input(self, address: int, count: int) -> list[int]:
        """Input registers ``address .. address+count-1``."""
        try:
            return await self.bridge.read_input(self.endpoint, address, count)
        except CommsError as exc:
            raise with_device(exc, self.device_id) from None

    async def write(self, address: int, values: Sequence[int]) -> None:
        """Holding registers from ``address``, function code 16."""
        try:
            await self.bridge.write(self.endpoint, address, values)
        except CommsError as exc:
            raise with_device(exc, self.device_id) from None

    async def write_read(
        self, address: int, values: Sequence[int], read_address: int, read_count: int
    ) -> list[int]:
        """Holding registers from ``address`` written, then ``read_count`` from
        ``read_address`` read, in one request (function code 23)."""
        try:
            return await self.bridge.write_read(
                self.endpoint, address, values, read_address, read_count
            )
        except CommsError as exc:
            raise with_device(exc, self.device_id) from None

    def attempt(self, not_failures: tuple[type[Exception], ...] = ()) -> Attempt:
        """One device operation under the breaker (``async with link.attempt(): ...``).

        Refused at once with BreakerOpenError while the breaker is open; an exception inside
        counts as a failure, a clean exit as a success; a cancellation counts as neither.
        Exceptions of the ``not_failures`` types (the caller's own refusals after the device
        answered fine) count as a success and propagate.
        """
        return Attempt(self.breaker, not_failures)


class Attempt:
    """The context manager of :meth:`DeviceLink.attempt` (a class: every poll of every
    device enters one, and a generator-based one costs several times as much)."""

    __slots__ = ("breaker", "not_failures")

    def __init__(self, breaker: CircuitBreaker, not_failures: tuple[type[Exception], ...]) -> None:
        self.breaker = breaker
        self.not_failures = not_failures

    async def __aenter__(self) -> None:
        self.enter()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.settle(ev)

    # enter and settle are the context manager's two halves, for a caller on every write's
    # path that would rather not make two coroutines (``Controls.apply``).
    def enter(self) -> None:
        """Refuse at once (BreakerOpenError) while the breaker is open."""
        self.breaker.check()

    def settle(self, ev: BaseException | None) -> None:
        """Count the operation's outcome: ``ev`` the exception it ended with, or None."""
        if ev is None or isinstance(ev, self.not_failures):
            self.breaker.record_success()
        elif isinstance(ev, Exception):
            self.breaker.record_failure(str(ev))
        else:
            self.breaker.release()
