"""The PDU decoder the bridge's pymodbus clients use: register answers in one unpack.

pymodbus decodes a register answer one ``struct.unpack`` per register and then formats the
whole PDU, registers included, as the argument of a debug log call that is off (``str(pdu)``
is evaluated before the level is checked). On the poll path that was a fifth of the
controller's CPU. :class:`RegisterDecoder` is a :class:`pymodbus.pdu.DecodePDU` (the class
each client's framer holds as ``decoder``) that decodes well-formed answers to function codes
3, 4 and 23 itself, into the same pymodbus response classes with the same fields, and hands
every other frame (exception answers, writes, anything malformed) to pymodbus unchanged.

The registers come as :class:`Registers`, a list that keeps the answer's bytes too: the
SunSpec decoders unpack a model straight from them instead of packing the list again.
"""

from __future__ import annotations

import struct

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    ReadWriteMultipleRegistersResponse,
)

#: Function code -> the response class pymodbus would build for it.
_REGISTER_ANSWERS: dict[int, type[ModbusPDU]] = {
    3: ReadHoldingRegistersResponse,
    4: ReadInputRegistersResponse,
    23: ReadWriteMultipleRegistersResponse,
}
#: Big-endian unsigned 16-bit registers, one Struct per count (a byte count is one byte).
_WORDS = [struct.Struct(f">{n}H") for n in range(128)]


class Registers(list[int]):
    """Registers as a list, with ``data``: the same registers as the big-endian bytes of the
    answer they came in."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        n = len(data) >> 1  # an answer holds at most 125; more only when built elsewhere
        super().__init__((_WORDS[n] if n < len(_WORDS) else struct.Struct(f">{n}H")).unpack(data))
        self.data = data


class RegisterDecoder(DecodePDU):
    """Client-side PDU decoder; register answers decoded in one ``unpack_from``."""

    def __init__(self) -> None:
        super().__init__(is_server=False)

    def decode(self, frame: bytes) -> ModbusPDU | None:
        """The response PDU of ``frame`` (function code, byte count, data), as
        ``DecodePDU.decode`` returns it."""
        if len(frame) > 1:
            answer = _REGISTER_ANSWERS.get(frame[0])
            size = frame[1]
            # pymodbus takes an even byte count that fits the frame; the rest go to it.
            if answer is not None and not size & 1 and size < len(frame) - 1:
                pdu = answer()
                pdu.registers = Registers(frame[2 : 2 + size])
                return pdu
        return super().decode(frame)


def use_register_decoder(client: AsyncModbusTcpClient) -> None:
    """Make ``client`` decode its answers with :class:`RegisterDecoder`."""
    client.ctx.framer.decoder = RegisterDecoder()
