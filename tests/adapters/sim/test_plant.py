"""Device physics seen over Modbus: controls written as the controller writes them (DEVICES.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.regmap import load_map
from adapters.sim import physics
from adapters.sim.battery import BatteryState
from adapters.sim.fleet import SimFleet
from adapters.sim.heat import FULL_RAMP_S
from adapters.sim.profiles import constant_profile
from tests.adapters.sim.util import (
    NOON,
    battery,
    client,
    datacentre,
    heat_pump,
    make_site,
    meter,
    pv,
    scan_unit,
    write_point,
)
from tests.conftest import free_ports
from vpp.core.clock import ManualClock

ST_MPPT, ST_THROTTLED = 4, 5


def fleet_of(
    devices: list[dict[str, object]], irradiance: float = 800.0, **site: object
) -> SimFleet:
    return SimFleet(make_site(devices, **site), ManualClock(NOON),  # type: ignore[arg-type]
                    irradiance=constant_profile(irradiance), step_interval_s=None)  # fmt: skip


async def test_pv_follows_irradiance_profile() -> None:
    (port,) = free_ports(1)
    cloud_at = NOON + timedelta(minutes=5)

    def profile(when: datetime, _tilt: float, _azimuth: float) -> float:
        return 900.0 if when < cloud_at else 300.0

    site = make_site([pv("pv-1", port, 1)])
    async with SimFleet(site, ManualClock(NOON), irradiance=profile, step_interval_s=None) as fleet:
        fleet.step(60)
        sunny = (await scan_unit(port, 1)).model(103).values["W"]
        fleet.step(600)
        cloudy = (await scan_unit(port, 1)).model(103).values["W"]
    expected = physics.pv_available_ac_w(physics.pv_dc_power_w(900.0, 11_000), 10_000)
    assert sunny == pytest.approx(expected, abs=1)
    assert cloudy == pytest.approx(sunny / 3, abs=2)


async def test_pv_limit_caps_output_and_reverts_after_its_timer() -> None:
    (port,) = free_ports(1)
    async with fleet_of([pv("pv-1", port, 1)]) as fleet:
        fleet.step(1)
        found = await scan_unit(port, 1)
        available = found.model(103).values["W"]
        assert available > 7_000 and found.model(103).values["St"] == ST_MPPT
        c = client(port)
        await c.connect()
        try:
            for name, value in (("WMaxLimPct", 40.0), ("WMaxLimPct_RvrtTms", 60),
                                ("WMaxLim_Ena", 1)):  # fmt: skip
                assert not (await write_point(c, 1, found, 123, name, value)).isError()
        finally:
            c.close()
        limited = await scan_unit(port, 1)  # takes effect at once
        assert limited.model(103).values["W"] == 4_000
        assert limited.model(103).values["St"] == ST_THROTTLED
        assert fleet.device("pv-1").state.limit_pct == 40.0
        energy = fleet.device("pv-1").state.energy_wh
        fleet.step(59)
        assert (await scan_unit(port, 1)).model(123).values["WMaxLim_Ena"] == 1
        assert fleet.device("pv-1").state.energy_wh == pytest.approx(energy + 4_000 * 59 / 3600)
        fleet.step(1)
        reverted = await scan_unit(port, 1)
    assert reverted.model(123).values["WMaxLim_Ena"] == 0
    assert reverted.model(103).values["W"] == available
    assert fleet.device("pv-1").state.limit_pct is None


async def write_124(port: int, power_w: float, revert_s: int) -> None:
    """A setpoint written the way DEVICES.md describes for model 124 (WChaMax = 5 kW)."""
    found = await scan_unit(port, 1)
    pct = power_w / 5_000 * 100  # a window of zero width at the setpoint
    await write_124_points(port, found, OutWRte=pct, InWRte=-pct, InOutWRte_RvrtTms=revert_s,
                           StorCtl_Mod=3)  # fmt: skip


async def write_124_points(port: int, found: Any, **points: float) -> None:
    c = client(port)
    await c.connect()
    try:
        for name, value in points.items():
            assert not (await write_point(c, 1, found, 124, name, value)).isError()
    finally:
        c.close()


async def test_battery_124_integrates_setpoint_with_efficiency_and_reverts() -> None:
    (port,) = free_ports(1)
    async with fleet_of([battery("bat-1", port, 1)]) as fleet:
        await write_124(port, -2_500, revert_s=600)
        state: BatteryState = fleet.device("bat-1").state
        assert state.power_w == -2_500
        fleet.step(599)
        assert state.stored_wh == pytest.approx(5_000 + 2_500 * 599 / 3600 * 0.95)
        found = await scan_unit(port, 1)
        assert found.model(124).values["ChaState"] == pytest.approx(state.soc_pct, abs=0.05)
        assert found.model(103).values["W"] == -2_500
        assert found.model(124).values["ChaSt"] == 4  # CHARGING
        fleet.step(2)  # the timer runs out 600 s after the last write, mid-step
        assert state.stored_wh == pytest.approx(5_000 + 2_500 * 600 / 3600 * 0.95)
        reverted = await scan_unit(port, 1)
        assert reverted.model(124).values["StorCtl_Mod"] == 0
        assert reverted.model(103).values["W"] == 0
        assert state.power_w == 0.0 and not state.remote


@pytest.mark.parametrize(
    ("mode", "out_pct", "in_pct", "power_w"),
    [
        (3, 40.0, 20.0, 0.0),  # room on both sides: its own mode (idle) inside
        (3, -30.0, 50.0, -1_500.0),  # a negative discharge bound forces a charge
        (3, 60.0, -20.0, 1_000.0),  # a negative charge bound forces a discharge
        (2, -30.0, 0.0, -1_500.0),  # the discharge bound alone
        (1, 0.0, -20.0, 1_000.0),  # the charge bound alone
        (3, 10.0, -30.0, 500.0),  # an empty window: its high end
        (0, -30.0, 50.0, 0.0),  # neither bit: its own mode
    ],
)
async def test_battery_124_holds_its_own_mode_inside_the_window(
    mode: int, out_pct: float, in_pct: float, power_w: float
) -> None:
    (port,) = free_ports(1)
    async with fleet_of([battery("bat-1", port, 1)]) as fleet:
        found = await scan_unit(port, 1)
        await write_124_points(port, found, OutWRte=out_pct, InWRte=in_pct,
                               InOutWRte_RvrtTms=600, StorCtl_Mod=mode)  # fmt: skip
        fleet.step(1)
        state: BatteryState = fleet.device("bat-1").state
        assert state.power_w == pytest.approx(power_w)
        reading = await scan_unit(port, 1)
        assert reading.model(103).values["W"] == pytest.approx(power_w)


async def test_battery_stops_at_its_soc_limits() -> None:
    (port,) = free_ports(1)
    async with fleet_of([battery("bat-1", port, 1)]) as fleet:
        state: BatteryState = fleet.device("bat-1").state
        await write_124(port, 5_000, revert_s=0)  # 0: never reverts
        fleet.step(3 * 3600)
        assert state.soc_pct == pytest.approx(10.0)  # soc_min_pct
        found = await scan_unit(port, 1)
        assert found.model(103).values["W"] == 0 and found.model(124).values["ChaSt"] == 2
        await write_124(port, -5_000, revert_s=0)
        fleet.step(3 * 3600)
        assert state.soc_pct == pytest.approx(95.0)  # soc_max_pct
        assert (await scan_unit(port, 1)).model(124).values["ChaSt"] == 5  # FULL


async def test_battery_802_follows_wset_and_reverts() -> None:
    (port,) = free_ports(1)
    async with fleet_of([battery("bat-1", port, 1, model=802)]) as fleet:
        found = await scan_unit(port, 1)
        c = client(port)
        await c.connect()
        try:
            for name, value in (("WSet", 3_000), ("WSetMod", 1), ("WSetRvrtTms", 900),
                                ("WSetEna", 1)):  # fmt: skip
                assert not (await write_point(c, 1, found, 704, name, value)).isError()
        finally:
            c.close()
        fleet.step(899)
        state: BatteryState = fleet.device("bat-1").state
        running = await scan_unit(port, 1)
        assert running.model(701).values["W"] == 3_000
        assert running.model(802).values["W"] == 3_000
        assert running.model(802).values["SoC"] == pytest.approx(state.soc_pct, abs=0.05)
        assert running.model(704).values["WSetRvrtRem"] == 1
        fleet.step(30)
        assert state.stored_wh == pytest.approx(5_000 - 3_000 * 900 / 3600 / 0.9)
        reverted = await scan_unit(port, 1)
    assert reverted.model(704).values["WSetEna"] == 0
    assert reverted.model(701).values["W"] == 0


async def test_heat_pump_cop_setpoint_ramp_and_revert_to_heat_led_mode() -> None:
    pd, ph = free_ports(2)
    fleet = fleet_of([datacentre(pd), heat_pump(ph)])
    rmap = load_map("heat_pump")
    (start, count), *_ = rmap.blocks("holding")
    async with fleet:
        c = client(ph)
        await c.connect()
        try:

            async def read() -> dict[str, float | None]:
                reply = await c.read_holding_registers(start, count=count, device_id=1)
                return rmap.decode("holding", start, reply.registers)

            values = await read()
            cop = 0.5 * (70 + 273.15) / (70 - (35 - 5))
            assert values["el_power_w"] == 50_000  # heat-led: 50 % of max_el_w
            assert values["th_power_w"] == pytest.approx(cop * 50_000, abs=1)
            assert values["source_temp_c"] == 35.0 and values["supply_temp_c"] == 70.0
            address, regs = rmap.encode("el_setpoint_w", 80_000)
            regs += rmap.encode("setpoint_revert_s", 300)[1]
            assert not (await c.write_registers(address, regs, device_id=1)).isError()
            fleet.step(12)
            ramping = (await read())["el_power_w"]
            assert ramping == pytest.approx(50_000 + 100_000 / FULL_RAMP_S * 12, abs=1)
            fleet.step(60)
            assert (await read())["el_power_w"] == 80_000
            fleet.step(300 - 72)  # the setpoint times out
            values = await read()
            assert values["el_setpoint_w"] == 50_000 and not fleet.device("hp").state.remote
            fleet.step(60)
            assert (await read())["el_power_w"] == 50_000
        finally:
            c.close()


async def test_datacentre_waste_heat_and_flow() -> None:
    (port,) = free_ports(1)
    dmap = load_map("datacentre_meter")
    (start, count), *_ = dmap.blocks("input")
    async with fleet_of([datacentre(port)]) as fleet:
        c = client(port)
        await c.connect()
        try:
            reply = await c.read_input_registers(start, count=count, device_id=1)
        finally:
            c.close()
    values = dmap.decode("input", start, reply.registers)
    state = fleet.device("dc").state
    assert values["it_power_w"] == pytest.approx(state.it_w, rel=1e-6)
    assert 0.9 * 200_000 < state.it_w < 1.1 * 200_000
    assert values["waste_heat_w"] == pytest.approx(0.9 * state.it_w, rel=1e-6)
    expected_flow = 0.9 * state.it_w / (4186 * 10) / physics.WATER_DENSITY_KG_PER_M3 * 3600
    assert values["flow_m3_per_h"] == pytest.approx(expected_flow, rel=1e-5)


async def test_meter_sums_the_site_and_energy_balances() -> None:
    p1, p2, p3, p4, p5 = free_ports(5)
    devices = [pv("pv-1", p1, 1), pv("pv-2", p1, 2), battery("bat-1", p2, 1),
               meter("grid", p3, 1), datacentre(p4), heat_pump(p5)]  # fmt: skip
    fleet = fleet_of(devices, meter_id="grid", base_load_peak_w=40_000)
    async with fleet:
        await write_124(p2, 3_000, revert_s=0)
        first = (await scan_unit(p3, 1)).model(203).values
        grid_wh = 0.0
        for _ in range(10):
            fleet.step(60)
            grid_wh += fleet.device("grid").state.grid_w * 60 / 3600
        last = (await scan_unit(p3, 1)).model(203).values
    env = fleet.environment
    hp, dc = fleet.device("hp").state, fleet.device("dc").state
    dry_w = 0.05 * (dc.waste_heat_w - (hp.th_w - hp.el_w))
    pv_w = sum(fleet.device(i).state.pv_w for i in ("pv-1", "pv-2"))
    expected = env.base_load_w + hp.el_w + dry_w - pv_w - 3_000
    assert 0 < env.base_load_w <= 40_000 and dry_w > 0
    assert fleet.device("grid").state.grid_w == pytest.approx(expected)
    assert last["W"] == pytest.approx(expected, abs=100)  # W_SF = 2 on this meter
    net_wh = (last["TotWhImp"] - first["TotWhImp"]) - (last["TotWhExp"] - first["TotWhExp"])
    assert net_wh == pytest.approx(grid_wh, abs=2)


async def test_pv_limit_through_model_704() -> None:
    (port,) = free_ports(1)
    async with fleet_of([pv("pv-7", port, 1, control="704")]) as fleet:
        fleet.step(1)
        found = await scan_unit(port, 1)
        assert [loc.id for loc in found.locations] == [1, 103, 120, 704]
        c = client(port)
        await c.connect()
        try:
            for name, value in (("WMaxLimPct", 30.0), ("WMaxLimPctRvrtTms", 120),
                                ("WMaxLimPctEna", 1)):  # fmt: skip
                assert not (await write_point(c, 1, found, 704, name, value)).isError()
        finally:
            c.close()
        fleet.step(20)
        limited = await scan_unit(port, 1)
        assert limited.model(103).values["W"] == 3_000
        assert limited.model(704).values["WMaxLimPctRvrtRem"] == 100
        fleet.step(100)
        reverted = await scan_unit(port, 1)
    assert reverted.model(704).values["WMaxLimPctEna"] == 0
    assert reverted.model(103).values["W"] > 3_000
