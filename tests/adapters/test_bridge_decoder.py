"""The bridge's PDU decoder decodes every frame as pymodbus' own decoder does."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from pymodbus.pdu import DecodePDU, ModbusPDU

from adapters.bridge import ModbusBridge
from adapters.bridge.decoder import RegisterDecoder
from tests.adapters.servers import FakeUnit, UnitServer
from tests.conftest import free_port
from vpp.core.site import ModbusEndpoint


def fields(pdu: ModbusPDU | None) -> tuple[object, ...] | None:
    if pdu is None:
        return None
    return (
        type(pdu),
        list(pdu.registers),
        list(pdu.bits),
        pdu.count,
        pdu.address,
        pdu.status,
        pdu.exception_code,
        pdu.dev_id,
        pdu.transaction_id,
    )


def register_answer(code: int, registers: list[int]) -> bytes:
    return bytes([code, 2 * len(registers)]) + struct.pack(f">{len(registers)}H", *registers)


@given(
    code=st.sampled_from([3, 4, 23]),
    registers=st.lists(st.integers(0, 65535), max_size=125),
    tail=st.binary(max_size=3),
)
def test_register_answers_decode_to_the_registers_sent(
    code: int, registers: list[int], tail: bytes
) -> None:
    frame = register_answer(code, registers) + tail
    pdu = RegisterDecoder().decode(frame)
    assert pdu is not None and pdu.function_code == code
    assert list(pdu.registers) == registers
    assert fields(pdu) == fields(DecodePDU(False).decode(frame))


@given(
    frame=st.one_of(
        st.binary(max_size=260),
        st.builds(
            lambda code, body: bytes([code]) + body,
            st.sampled_from([3, 4, 23, 0x83, 0x84, 0x97, 16, 6, 1, 2]),
            st.binary(max_size=260),
        ),
    )
)
def test_any_frame_decodes_as_pymodbus_decodes_it(frame: bytes) -> None:
    """Garbage included: a short frame, an odd or too large byte count, an exception
    answer or another function code gets pymodbus' own answer (None or the same PDU)."""
    assert fields(RegisterDecoder().decode(frame)) == fields(DecodePDU(False).decode(frame))


async def test_bridge_reads_decode_to_what_the_device_holds() -> None:
    port = free_port()
    regs = [0, 1, 0x7FFF, 0x8000, 0xFFFF] + [(7919 * i) % 65536 for i in range(250)]
    fake = FakeUnit(1, regs)
    async with UnitServer(port, [fake]), ModbusBridge() as bridge:
        ep = ModbusEndpoint(port=port, unit=1, timeout_s=0.5, retries=0)
        assert await bridge.read_holding(ep, 40000, len(regs)) == regs
        assert await bridge.read_input(ep, 40001, 125) == regs[1:126]
        back = await bridge.write_read(ep, 40003, [42, 43], 40000, 6)
    assert back == [*regs[:3], 42, 43, regs[5]]
