"""Errors of the Modbus bridge: each names the endpoint, the unit and the registers."""

from __future__ import annotations

from pymodbus.constants import ExcCodes

from adapters.sunspec.discovery import RegisterReadError

#: Exception codes worth a retry: the device or gateway may answer the next time.
TRANSIENT_CODES = frozenset(
    {ExcCodes.ACKNOWLEDGE, ExcCodes.DEVICE_BUSY, ExcCodes.GATEWAY_NO_RESPONSE}
)


class CommsError(Exception):
    """A Modbus request that failed: no answer, no connection, or an error answer."""

    transient = True


class ConnectError(CommsError):
    """No TCP connection to the endpoint."""


class RequestTimeoutError(CommsError):
    """No answer within the request timeout."""


class ProtocolError(CommsError):
    """An answer that does not fit the request (wrong register count)."""

    transient = False


class ModbusExceptionError(CommsError):
    """The device (or its gateway) answered with a Modbus exception response."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.transient = code in TRANSIENT_CODES
        super().__init__(message)


class IllegalAddressError(ModbusExceptionError, RegisterReadError):
    """Exception 0x02: the device does not serve these registers (SunSpec discovery treats
    it as "not here", unlike a device that does not answer at all)."""


def exception_error(code: int, message: str) -> ModbusExceptionError:
    """The error for an exception response with ``code``."""
    if code == ExcCodes.ILLEGAL_ADDRESS:
        return IllegalAddressError(code, message)
    return ModbusExceptionError(code, message)


def exception_name(code: int) -> str:
    """``0x02 ILLEGAL_ADDRESS`` for a Modbus exception code."""
    try:
        return f"0x{code:02X} {ExcCodes(code).name}"
    except ValueError:
        return f"0x{code:02X}"


def with_device(exc: CommsError, device_id: str) -> CommsError:
    """The same error with the device id in front of its message."""
    message = f"{device_id}: {exc}"
    if isinstance(exc, ModbusExceptionError):
        return exception_error(exc.code, message)
    return type(exc)(message)
