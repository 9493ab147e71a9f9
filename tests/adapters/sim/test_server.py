"""The simulator's Modbus side: discovery, access rules, faults, delays, gateways going away."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymodbus.exceptions import ModbusIOException

from adapters.sim.fleet import SimFleet
from adapters.sim.profiles import constant_profile
from tests.adapters.sim.util import (
    NOON,
    battery,
    client,
    make_site,
    point,
    pv,
    raw,
    scan_unit,
    write_point,
)
from tests.conftest import free_ports
from vpp.core.clock import ManualClock

ILLEGAL_ADDRESS, ILLEGAL_VALUE, GATEWAY_NO_RESPONSE = 0x02, 0x03, 0x0B
#: Both gateway servers of the simulated fleet answer alike (adapters.sim.server).
SERVERS = ["pymodbus", "light"]


def two_port_fleet(**kwargs: object) -> tuple[SimFleet, int, int]:
    pa, pb = free_ports(2)
    site = make_site([pv("pv-1", pa, 1), pv("pv-2", pa, 2, 113), battery("bat-1", pb, 1)])
    fleet = SimFleet(site, ManualClock(NOON), irradiance=constant_profile(600.0),
                     step_interval_s=None, **kwargs)  # type: ignore[arg-type]  # fmt: skip
    return fleet, pa, pb


@pytest.mark.parametrize("server", SERVERS)
async def test_scan_reads_what_the_physics_says(server: str) -> None:
    fleet, pa, pb = two_port_fleet(server=server)
    async with fleet:
        fleet.step(10)
        for unit, model in ((1, 103), (2, 113)):
            found = await scan_unit(pa, unit)
            assert found.base == 40000
            dev = fleet.device(f"pv-{unit}")
            assert found.model(model).values["W"] == pytest.approx(dev.state.pv_w, abs=1)
            assert found.model(model).values["WH"] == pytest.approx(dev.state.energy_wh, abs=1)
        found = await scan_unit(pb, 1)
        assert found.model(124).values["ChaState"] == 50.0


@pytest.mark.parametrize("base", [0, 50000])
async def test_discovery_finds_other_base_addresses(base: int) -> None:
    (port,) = free_ports(1)
    site = make_site([pv("pv-1", port, 1)])
    async with SimFleet(site, ManualClock(NOON), bases={"pv-1": base}, step_interval_s=None):
        found = await scan_unit(port, 1)
    assert found.base == base
    assert [loc.id for loc in found.locations] == [1, 103, 120, 123]


@pytest.mark.parametrize("server", SERVERS)
async def test_writes_to_read_only_registers_and_bad_values_are_refused(server: str) -> None:
    fleet, pa, _pb = two_port_fleet(server=server)
    async with fleet:
        found = await scan_unit(pa, 1)
        c = client(pa)
        await c.connect()
        try:
            w_address, _ = point(found, 103, "W")
            reply = await c.write_registers(w_address, [1234], device_id=1)
            assert reply.isError() and reply.exception_code == ILLEGAL_ADDRESS
            sf_address, _ = point(found, 123, "WMaxLimPct_SF")
            lim_address, _ = point(found, 123, "WMaxLimPct")
            # A write spanning RW points and a read-only one is refused as a whole.
            span = await c.write_registers(lim_address, [0] * (sf_address - lim_address + 1),
                                           device_id=1)  # fmt: skip
            assert span.isError() and span.exception_code == ILLEGAL_ADDRESS
            bad = await write_point(c, 1, found, 123, "WMaxLimPct", 150.0)
            assert bad.isError() and bad.exception_code == ILLEGAL_VALUE
            ok = await write_point(c, 1, found, 123, "WMaxLimPct", 55.0)
            assert not ok.isError()
            back = await c.read_holding_registers(lim_address, count=1, device_id=1)
            assert back.registers == raw(found, 123, "WMaxLimPct", 55.0)
            assert fleet.device("pv-1").writes == 1
            unknown = await c.read_holding_registers(40000, count=2, device_id=77)
            assert unknown.isError() and unknown.exception_code == GATEWAY_NO_RESPONSE
        finally:
            c.close()


@pytest.mark.parametrize("server", SERVERS)
async def test_error_and_garbage_faults(server: str) -> None:
    fleet, pa, _pb = two_port_fleet(server=server)
    async with fleet:
        fleet.step(10)
        found = await scan_unit(pa, 1)
        w_address, _ = point(found, 103, "W")
        model = found.model(103)
        c = client(pa)
        await c.connect()
        try:
            fleet.device("pv-1").fault = "error"
            reply = await c.read_holding_registers(w_address, count=2, device_id=1)
            assert reply.isError() and reply.exception_code == GATEWAY_NO_RESPONSE
            other = await c.read_holding_registers(w_address, count=2, device_id=2)
            assert not other.isError()  # the gateway's other units still answer
            fleet.device("pv-1").fault = "garbage"
            body = await c.read_holding_registers(model.address, count=2 + model.length,
                                                  device_id=1)  # fmt: skip
            assert body.registers[:2] == [103, model.length]  # headers stay intact
            assert body.registers[2:] != [*model.raw]
            common = await c.read_holding_registers(40002, count=2, device_id=1)
            assert common.registers == [1, 66]
            fleet.device("pv-1").fault = "none"
            clean = await c.read_holding_registers(model.address + 2, count=model.length,
                                                   device_id=1)  # fmt: skip
            assert clean.registers == model.raw
        finally:
            c.close()


@pytest.mark.parametrize("server", SERVERS)
async def test_silent_device_times_out_and_shutdown_is_not_held_up(server: str) -> None:
    fleet, pa, _pb = two_port_fleet(server=server, silent_hold_s=30.0)
    async with fleet:
        fleet.device("pv-1").fault = "silent"
        c = client(pa, timeout_s=0.3)
        await c.connect()
        try:
            started = time.monotonic()
            with pytest.raises(ModbusIOException):
                await c.read_holding_registers(40000, count=2, device_id=1)
            assert time.monotonic() - started < 2.0
        finally:
            c.close()
        slow = client(pa, timeout_s=1.5)
        await slow.connect()

        async def read() -> object:
            return await slow.read_holding_registers(40000, count=2, device_id=1)

        pending = asyncio.create_task(read())
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await fleet.stop()
        assert time.monotonic() - started < 2.0
        with pytest.raises(ModbusIOException):
            await asyncio.wait_for(pending, 5.0)
        slow.close()


@pytest.mark.parametrize("server", SERVERS)
async def test_response_delay_lets_many_requests_be_in_flight(server: str) -> None:
    (port,) = free_ports(1)
    site = make_site([pv(f"pv-{u}", port, u, sim={"response_delay_s": 0.3}) for u in range(1, 7)])
    async with SimFleet(site, ManualClock(NOON), step_interval_s=None, server=server) as fleet:
        assert fleet.device("pv-3").response_delay_s == 0.3
        clients = [client(port) for _ in range(6)]
        for c in clients:
            await c.connect()
        try:
            started = time.monotonic()
            replies = await asyncio.gather(*(
                c.read_holding_registers(40000, count=2, device_id=u)
                for u, c in enumerate(clients, start=1)))  # fmt: skip
            elapsed = time.monotonic() - started
        finally:
            for c in clients:
                c.close()
    assert all(not r.isError() for r in replies)
    assert 0.3 <= elapsed < 1.0  # in parallel, not 6 x 0.3 s


@pytest.mark.parametrize("server", SERVERS)
async def test_write_read_request_writes_first_and_is_held_once(server: str) -> None:
    """Function code 23: the device takes the write, then answers the read with what it
    holds afterwards; a response delay holds the request once, not once per half."""
    (port,) = free_ports(1)
    site = make_site([pv("pv-1", port, 1, sim={"response_delay_s": 0.5})])
    async with SimFleet(site, ManualClock(NOON), step_interval_s=None, server=server) as fleet:
        result = await scan_unit(port, 1)
        address, _pdef = point(result, 123, "WMaxLimPct")
        model = result.model(123)
        c = client(port)
        await c.connect()
        try:
            started = time.monotonic()
            reply = await c.readwrite_registers(
                read_address=model.address, read_count=model.length + 2,
                write_address=address, values=raw(result, 123, "WMaxLimPct", 40.0),
                device_id=1)  # fmt: skip
            elapsed = time.monotonic() - started
        finally:
            c.close()
        sim = fleet.device("pv-1")
    assert not reply.isError()
    assert reply.registers[address - model.address] == raw(result, 123, "WMaxLimPct", 40.0)[0]
    assert sim.writes == 1 and sim.image.get("123.WMaxLimPct") == 40.0
    assert 0.5 <= elapsed < 0.9  # one hold of 0.5 s, not two


async def _until(done: object, deadline_s: float = 5.0) -> None:
    """Let the loop run until ``done()`` is true (AssertionError after ``deadline_s``)."""
    end = time.monotonic() + deadline_s
    while not done():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("server", SERVERS)
async def test_fault_that_comes_up_during_the_delay_answers_the_held_request(server: str) -> None:
    (port,) = free_ports(1)
    site = make_site([pv("pv-1", port, 1, sim={"response_delay_s": 0.5})])
    async with SimFleet(site, ManualClock(NOON), step_interval_s=None, server=server) as fleet:
        sim = fleet.device("pv-1")
        c = client(port, timeout_s=3.0)
        await c.connect()
        try:
            started = time.monotonic()
            pending = asyncio.create_task(c.read_holding_registers(40000, count=2, device_id=1))
            await _until(lambda: sim.requests == 1)
            sim.fault, sim.error_code = "error", ILLEGAL_VALUE
            reply = await asyncio.wait_for(pending, 5.0)
            elapsed = time.monotonic() - started
        finally:
            c.close()
    assert reply.isError() and reply.exception_code == ILLEGAL_VALUE
    assert 0.5 <= elapsed < 1.5  # the delay once, then the fault's answer


@pytest.mark.parametrize("server", SERVERS)
async def test_stop_drops_delayed_writes_unanswered_and_not_taken(server: str) -> None:
    (port,) = free_ports(1)
    site = make_site([pv("pv-1", port, 1, sim={"response_delay_s": 30.0})])
    fleet = SimFleet(site, ManualClock(NOON), step_interval_s=None, server=server)
    async with fleet:
        sim = fleet.device("pv-1")
        limit = sim.image.slots["123.WMaxLimPct"]
        c = client(port, timeout_s=2.0)  # the pymodbus server leaves the connection open
        await c.connect()
        try:
            write = c.write_registers(limit.address, limit.encode(40.0), device_id=1)
            pending = asyncio.create_task(write)
            await _until(lambda: sim.requests == 1)
            started = time.monotonic()
            await fleet.stop()
            assert time.monotonic() - started < 5.0
            with pytest.raises(ModbusIOException):
                await asyncio.wait_for(pending, 10.0)
        finally:
            c.close()
    assert sim.writes == 0 and sim.image.get("123.WMaxLimPct") != 40.0


@pytest.mark.parametrize("server", SERVERS)
async def test_fleet_wide_delay_override(server: str) -> None:
    fleet, _pa, _pb = two_port_fleet(server=server, delay_s=0.05)
    assert {d.response_delay_s for d in fleet.devices} == {0.05}


@pytest.mark.parametrize("server", SERVERS)
async def test_stop_and_start_port(server: str) -> None:
    fleet, pa, pb = two_port_fleet(server=server)
    async with fleet:
        await fleet.stop_port(pa)
        assert not fleet.is_serving(pa) and fleet.is_serving(pb)
        c = client(pa, timeout_s=0.5)
        assert not await c.connect()
        c.close()
        assert (await scan_unit(pb, 1)).model(124).values["ChaState"] == 50.0
        energy_before = fleet.device("pv-1").state.energy_wh
        fleet.step(3600)  # the inverter keeps producing while its gateway is away
        await fleet.start_port(pa)
        found = await scan_unit(pa, 1)
        assert found.model(103).values["WH"] > energy_before + 1000
        await fleet.stop_port(pa)
        await fleet.stop_port(pa)  # idempotent
    assert not fleet.is_serving(pb)


async def test_protocol_edges_single_writes_input_reads_limits_and_pipelining() -> None:
    """Function code 6 writes one register, 4 reads what 3 reads, counts beyond the
    protocol's limits are ILLEGAL_VALUE, reads past the image ILLEGAL_ADDRESS, other
    function codes ILLEGAL_FUNCTION, and two requests in one TCP segment get both answers."""
    fleet, pa, _pb = two_port_fleet(server="light")
    async with fleet:
        found = await scan_unit(pa, 1)
        lim_address, _ = point(found, 123, "WMaxLimPct")
        c = client(pa)
        await c.connect()
        try:
            (value,) = raw(found, 123, "WMaxLimPct", 70.0)
            single = await c.write_register(lim_address, value, device_id=1)
            assert not single.isError()
            assert fleet.device("pv-1").image.get("123.WMaxLimPct") == 70.0
            holding = await c.read_holding_registers(40000, count=60, device_id=1)
            inputs = await c.read_input_registers(40000, count=60, device_id=1)
            assert inputs.registers == holding.registers
            assert holding.registers[:2] == [0x5375, 0x6E53]
            end = fleet.device("pv-1").image.end
            past = await c.read_holding_registers(end - 1, count=2, device_id=1)
            assert past.isError() and past.exception_code == ILLEGAL_ADDRESS
            coils = await c.read_coils(0, count=8, device_id=1)
            assert coils.isError() and coils.exception_code == 0x01
        finally:
            c.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", pa)
        try:
            too_many = bytes([0, 7, 0, 0, 0, 6, 1, 3]) + (40000).to_bytes(2) + (126).to_bytes(2)
            marker = bytes([0, 8, 0, 0, 0, 6, 2, 3]) + (40000).to_bytes(2) + (2).to_bytes(2)
            writer.write(too_many + marker)  # one segment, two requests
            first = await asyncio.wait_for(reader.readexactly(9), 5.0)
            second = await asyncio.wait_for(reader.readexactly(13), 5.0)
        finally:
            writer.close()
    assert first == bytes([0, 7, 0, 0, 0, 3, 1, 0x83, ILLEGAL_VALUE])
    assert second == bytes([0, 8, 0, 0, 0, 7, 2, 3, 4, 0x53, 0x75, 0x6E, 0x53])


def test_an_unknown_server_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'bogus'.*pymodbus, light"):
        two_port_fleet(server="bogus")
