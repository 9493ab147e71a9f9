"""Control writes: register sequences per DEVICES.md, read-back, clamping and refusals."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from adapters.breaker import BreakerOpenError
from adapters.bridge import ModbusBridge
from adapters.controls import ControlRefused, Controls
from adapters.poll import FleetPoller
from adapters.regmap import load_map
from adapters.snapshot import BatteryReading, PvReading
from adapters.sunspec.decode import point_address
from adapters.sunspec.models import load_model
from tests.adapters.fleet import Fleet, serve_fleet
from tests.adapters.servers import FakeUnit

REVERT_S = 600


@asynccontextmanager
async def controlled(
    read_write: bool = False,
) -> AsyncIterator[tuple[Fleet, FleetPoller, Controls]]:
    async with (
        serve_fleet(read_write=read_write, revert_s=REVERT_S) as fleet,
        ModbusBridge() as bridge,
    ):
        poller = FleetPoller(fleet.site, bridge)
        await poller.poll()  # discovery, as in the running controller
        yield fleet, poller, Controls(poller)


def address(poller: FleetPoller, device_id: str, model_id: int, point: str) -> int:
    layout = poller.driver(device_id).layout  # type: ignore[attr-defined]
    loc = layout.location(model_id)
    return point_address(load_model(model_id), loc.address, point)[0]


def written(fake: FakeUnit) -> list[tuple[int, int, list[int]]]:
    return list(fake.writes)


async def test_pv_limit_123_writes_limit_timer_enable_and_reads_back() -> None:
    async with controlled() as (fleet, poller, controls):
        before = fleet.units["pv-1"].requests
        result = await controls.set_pv_limit("pv-1", 42.5)
        # One write and one read-back: the scale factor comes from the last poll.
        assert fleet.units["pv-1"].requests - before == 2
        a = address(poller, "pv-1", 123, "WMaxLimPct")
        assert written(fleet.units["pv-1"]) == [
            # WMaxLimPct (SF -1), WinTms and RmpTms as the device holds them, timer, enable
            (16, a, [425, 0xFFFF, REVERT_S, 0xFFFF, 1]),
        ]
        reading = (await poller.poll_device("pv-1")).reading
    assert result.ok and not result.clamped
    assert (result.requested, result.written, result.read_back) == (42.5, 42.5, 42.5)
    assert result.revert_s == REVERT_S and result.device_id == "pv-1"
    assert isinstance(reading, PvReading) and reading.limit_pct == 42.5


async def test_pv_limit_704_and_quantisation_to_the_register_step() -> None:
    async with controlled() as (fleet, poller, controls):
        result = await controls.set_pv_limit("pv-2", 70.4)  # WMaxLimPct_SF = 0
        (code, start, regs), *more = written(fleet.units["pv-2"])
        a = address(poller, "pv-2", 704, "WMaxLimPctRvrtTms")
        assert code == 16 and not more  # enable, limit, ..., timer in one request
        assert start == address(poller, "pv-2", 704, "WMaxLimPctEna")
        assert regs[0] == 1 and regs[1] == 70 and regs[a - start : a - start + 2] == [0, REVERT_S]
    assert result.ok and result.written == 70.0 and result.read_back == 70.0


async def test_pv_limit_below_minimum_is_clamped_up_and_reported() -> None:
    async with controlled() as (fleet, _, controls):
        result = await controls.set_pv_limit("pv-1", 0.0)  # min_limit_pct defaults to 5
        assert written(fleet.units["pv-1"])[0][2][0] == 50
    assert result.clamped and result.ok and result.written == 5.0
    assert "clamped up to min_limit_pct 5 %" in result.message


@pytest.mark.parametrize(
    ("pct", "why"), [(100.5, "above the maximum 100 %"), (-1, "below the minimum 0 %")]
)
async def test_pv_limit_outside_0_100_is_refused_and_nothing_written(pct: float, why: str) -> None:
    async with controlled() as (fleet, _, controls):
        with pytest.raises(ControlRefused, match=f"pv-1: pv_limit_pct {pct:g} refused, {why}"):
            await controls.set_pv_limit("pv-1", pct)
        assert written(fleet.units["pv-1"]) == []


def int16(value: int) -> int:
    return value & 0xFFFF


@pytest.mark.parametrize(
    ("power_w", "rates"),
    [(2000.0, [40, int16(-40)]), (-1250.0, [int16(-25), 25]), (0.0, [0, 0])],
)
async def test_battery_124_window_of_zero_width_timer_then_mode(
    power_w: float, rates: list[int]
) -> None:
    async with controlled() as (fleet, poller, controls):
        result = await controls.set_battery_power("bat-1", power_w)
        a_rates = address(poller, "bat-1", 124, "OutWRte")
        a_mode = address(poller, "bat-1", 124, "StorCtl_Mod")
        assert written(fleet.units["bat-1"]) == [
            (16, a_rates, [*rates, 0xFFFF, REVERT_S]),  # OutWRte, InWRte, WinTms kept, timer
            (16, a_mode, [3]),  # both bounds: the window [-InWRte, OutWRte]
        ]
        reading = (await poller.poll_device("bat-1")).reading
    assert result.ok and result.written == power_w and result.read_back == power_w
    assert isinstance(reading, BatteryReading) and reading.setpoint_w == power_w


@pytest.mark.parametrize("again_w", [1500.0, -1500.0, 0.0])
async def test_battery_124_under_control_is_one_write_and_one_read_in_either_direction(
    again_w: float,
) -> None:
    async with controlled() as (fleet, poller, controls):
        await controls.set_battery_power("bat-1", 2000.0)
        fake = fleet.units["bat-1"]
        before, writes = fake.requests, len(fake.writes)
        result = await controls.set_battery_power("bat-1", again_w)
        assert fake.requests - before == 2  # the mode is set already: rates only
        a_rates = address(poller, "bat-1", 124, "OutWRte")
        pct = round(again_w / 50)
        assert fake.writes[writes:] == [(16, a_rates, [int16(pct), int16(-pct), 0xFFFF, REVERT_S])]
        reading = (await poller.poll_device("bat-1")).reading
    assert result.ok and result.read_back == again_w
    assert isinstance(reading, BatteryReading) and reading.setpoint_w == again_w


async def test_battery_124_window_with_room_reads_as_no_setpoint() -> None:
    """A window someone else left with room inside (here charge up to 20 %, discharge up to
    40 %) does not hold the battery at one power: no setpoint is read, and a write replaces
    it with a window of zero width."""
    async with controlled() as (fleet, poller, controls):
        fake = fleet.units["bat-1"]
        fake.set(address(poller, "bat-1", 124, "StorCtl_Mod"), [3])
        fake.set(address(poller, "bat-1", 124, "OutWRte"), [40, 20])
        reading = (await poller.poll_device("bat-1")).reading
        assert isinstance(reading, BatteryReading) and reading.setpoint_w is None
        result = await controls.set_battery_power("bat-1", -500.0)
    assert result.ok and result.read_back == -500.0


async def test_battery_802_writes_wset_mode_timer_enable() -> None:
    async with controlled() as (fleet, poller, controls):
        before = fleet.units["bat-2"].requests
        result = await controls.set_battery_power("bat-2", -3333.0)
        assert fleet.units["bat-2"].requests - before == 2
        a = {p: address(poller, "bat-2", 704, p) for p in ("WSetEna", "WSetRvrtTms")}
        [(code, start, regs)] = written(fleet.units["bat-2"])
        assert (code, start) == (16, a["WSetEna"])
        assert regs[:4] == [1, 1, 0xFFFF, 0xFFFF - 3332]  # WSetEna, WSetMod, WSet int32 = -3333
        t = a["WSetRvrtTms"] - start
        assert regs[t : t + 2] == [0, REVERT_S]
        reading = (await poller.poll_device("bat-2")).reading
    assert result.ok and result.read_back == -3333.0
    assert isinstance(reading, BatteryReading) and reading.setpoint_w == -3333.0


@pytest.mark.parametrize(
    ("device_id", "power_w", "match"),
    [
        (
            "bat-1",
            5001.0,
            "bat-1: battery_power_w 5001 refused, above the maximum discharge power 5000 W",
        ),
        (
            "bat-2",
            -10500.0,
            "bat-2: battery_power_w -10500 refused, below the maximum charge "
            "power .negative. -10000 W",
        ),
    ],
)
async def test_battery_beyond_config_rating_is_refused_without_io(
    device_id: str, power_w: float, match: str
) -> None:
    async with controlled() as (fleet, _, controls):
        requests = fleet.units[device_id].requests
        with pytest.raises(ControlRefused, match=match):
            await controls.set_battery_power(device_id, power_w)
        assert fleet.units[device_id].requests == requests  # refused before any I/O
        assert written(fleet.units[device_id]) == []


async def test_battery_beyond_the_devices_own_rating_is_refused() -> None:
    async with controlled() as (fleet, poller, controls):
        fake = fleet.units["bat-1"]
        fake.set(address(poller, "bat-1", 124, "WChaMax"), [3000])  # device: 3 kW, config: 5
        # Controls take the device's ratings as last read: the next poll brings the new one.
        await poller.poll_device("bat-1")
        with pytest.raises(ControlRefused, match="above the maximum discharge power 3000 W"):
            await controls.set_battery_power("bat-1", 4000.0)
        assert written(fake) == []
        assert (await controls.set_battery_power("bat-1", 3000.0)).ok


async def test_heat_pump_setpoint_and_timer_in_one_write() -> None:
    async with controlled() as (fleet, poller, controls):
        result = await controls.set_heat_pump_power("hp", 250_000.0)
        rmap = load_map("heat_pump")
        timer, setpoint = rmap.channel("setpoint_revert_s"), rmap.channel("el_setpoint_w")
        regs = await poller.driver("hp").link.read(setpoint.address, 3)
        with pytest.raises(
            ControlRefused, match=r"hp: heat_pump_el_w 400001 refused, above max_el_w"
        ):
            await controls.set_heat_pump_power("hp", 400_001.0)
        assert len(written(fleet.units["hp"])) == 1
    assert result.ok and result.read_back == 250_000.0
    assert rmap.decode("holding", setpoint.address, regs)["setpoint_revert_s"] == REVERT_S
    assert timer.address == setpoint.address + 2


async def test_read_back_mismatch_is_reported_not_hidden() -> None:
    async with controlled() as (fleet, _, controls):
        fleet.units["pv-1"].ignore_writes = True  # acknowledges, keeps its old values
        result = await controls.set_pv_limit("pv-1", 30.0)
    assert not result.ok
    assert "read back 100.0 instead of 30" in result.message
    assert "WMaxLim_Ena read back 0 instead of 1" in result.message


async def test_read_write_endpoint_writes_and_reads_back_in_one_request() -> None:
    """With ``modbus.read_write`` the last write of a setpoint carries its read-back
    (function code 23): a PV limit, an 802 battery and a 124 battery under control are one
    request each (in either direction), a 124 battery taken out of its own mode two (rates,
    then mode)."""
    async with controlled(read_write=True) as (fleet, poller, controls):
        units = fleet.units
        before = {name: units[name].requests for name in ("pv-1", "pv-2", "bat-1", "bat-2")}
        pv1 = await controls.set_pv_limit("pv-1", 42.5)
        pv2 = await controls.set_pv_limit("pv-2", 55.0)
        bat2 = await controls.set_battery_power("bat-2", -3333.0)
        bat1 = await controls.set_battery_power("bat-1", 2000.0)
        counts = {name: units[name].requests - n for name, n in before.items()}
        a_limit = address(poller, "pv-1", 123, "WMaxLimPct")
        a_rates = address(poller, "bat-1", 124, "OutWRte")
        a_mode = address(poller, "bat-1", 124, "StorCtl_Mod")
        assert written(units["pv-1"]) == [(23, a_limit, [425, 0xFFFF, REVERT_S, 0xFFFF, 1])]
        assert written(units["bat-1"]) == [
            (16, a_rates, [40, int16(-40), 0xFFFF, REVERT_S]),
            (23, a_mode, [3]),
        ]
        again = await controls.set_battery_power("bat-1", -1500.0)  # the other direction
        assert units["bat-1"].requests - before["bat-1"] - counts["bat-1"] == 1
        assert units["bat-1"].writes[-1] == (23, a_rates, [int16(-30), 30, 0xFFFF, REVERT_S])
        reading = (await poller.poll_device("bat-1")).reading
    assert counts == {"pv-1": 1, "pv-2": 1, "bat-2": 1, "bat-1": 2}
    assert pv1.ok and (pv1.written, pv1.read_back) == (42.5, 42.5)
    assert pv2.ok and (pv2.written, pv2.read_back) == (55.0, 55.0)
    assert bat2.ok and (bat2.written, bat2.read_back) == (-3333.0, -3333.0)
    assert bat1.ok and (bat1.written, bat1.read_back) == (2000.0, 2000.0)
    assert again.ok and again.read_back == -1500.0
    assert isinstance(reading, BatteryReading) and reading.setpoint_w == -1500.0


async def test_read_write_read_back_mismatch_is_reported_not_hidden() -> None:
    """The read half of function code 23 is what the device holds: a device that
    acknowledges and keeps its old values is caught as before."""
    async with controlled(read_write=True) as (fleet, _, controls):
        fleet.units["pv-1"].ignore_writes = True
        result = await controls.set_pv_limit("pv-1", 30.0)
        assert fleet.units["pv-1"].writes[-1][0] == 23
    assert not result.ok
    assert "read back 100.0 instead of 30" in result.message
    assert "WMaxLim_Ena read back 0 instead of 1" in result.message


async def test_open_breaker_refuses_a_control_at_once() -> None:
    async with controlled() as (fleet, poller, controls):
        fleet.units["bat-1"].fault = "silent"
        for _ in range(2):  # breaker_failures = 2 in the test site
            await poller.poll()
        t0 = time.monotonic()
        with pytest.raises(BreakerOpenError, match="bat-1: circuit breaker open"):
            await controls.set_battery_power("bat-1", 100.0)
        assert time.monotonic() - t0 < 0.1


async def test_kind_mismatch_is_refused() -> None:
    async with controlled() as (_, _, controls):
        with pytest.raises(LookupError, match="pv-1 is a pv device, not battery"):
            await controls.set_battery_power("pv-1", 100.0)
        with pytest.raises(KeyError, match="no enabled device 'nope'"):
            await controls.apply("nope", 1.0)
