"""The Modbus bridge: every Modbus TCP request of the controller goes through this package.

One :class:`ModbusBridge` owns a pool of pymodbus async clients per ``host:port`` with several
unit ids sharing each connection, a per-request timeout, bounded retries with exponential
backoff, and a circuit breaker per device, so that a dead or slow device never stalls the
fleet. Errors are :class:`CommsError` subclasses naming device, endpoint, unit and registers;
a Modbus exception response is a :class:`ModbusExceptionError` carrying its code.

pymodbus changes its API in minor releases, so no module outside this package imports it.
"""

from __future__ import annotations

from adapters.breaker import BreakerOpenError, CircuitBreaker
from adapters.bridge.errors import (
    CommsError,
    ConnectError,
    IllegalAddressError,
    ModbusExceptionError,
    ProtocolError,
    RequestTimeoutError,
    exception_name,
)
from adapters.bridge.link import DeviceLink
from adapters.bridge.modbus import MAX_READ, ModbusBridge

__all__ = [
    "MAX_READ",
    "BreakerOpenError",
    "CircuitBreaker",
    "CommsError",
    "ConnectError",
    "DeviceLink",
    "IllegalAddressError",
    "ModbusBridge",
    "ModbusExceptionError",
    "ProtocolError",
    "RequestTimeoutError",
    "exception_name",
]
