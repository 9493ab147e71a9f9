"""The adapters against the simulated plant (SimFleet): poll, faults, controls, revert timers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.bridge import ModbusBridge
from adapters.controls import Controls
from adapters.poll import FleetPoller
from adapters.sim.fleet import SimFleet
from adapters.sim.heat import HOURS_PER_YEAR
from adapters.sim.profiles import SimWorld, constant_profile
from adapters.snapshot import BatteryReading, HeatPumpReading, PvReading, Snapshot
from tests.conftest import free_ports
from vpp.control.plant import ModbusPlant
from vpp.core.clock import ManualClock
from vpp.core.site import Site, parse_site

NOON = datetime(2025, 6, 21, 10, 0, tzinfo=UTC)


def small_site() -> Site:
    gateway, meters = free_ports(2)
    ep = {"timeout_s": 0.5, "retries": 0}

    def at(port: int, unit: int) -> dict[str, Any]:
        return {"port": port, "unit": unit, **ep}

    battery = {
        "kind": "battery",
        "capacity_wh": 10000,
        "max_charge_w": 5000,
        "max_discharge_w": 5000,
        "soc_initial_pct": 50,
    }
    return parse_site(
        {
            "site": {"name": "sim"},
            "grid": {"import_limit_w": 1e6, "export_limit_w": 1e6, "meter": "meter"},
            "poll": {"breaker_failures": 2, "revert_s": 10},
            "devices": [
                {
                    "id": "pv-a",
                    "kind": "pv",
                    "rated_w": 8000,
                    "modbus": at(gateway, 1),
                    "sim": {"sunspec_model": 103},
                },
                {
                    "id": "pv-b",
                    "kind": "pv",
                    "rated_w": 6000,
                    "modbus": at(gateway, 2),
                    "sim": {"sunspec_model": 113},
                },
                {
                    "id": "bat-a",
                    "modbus": at(gateway, 3),
                    "control": "124",
                    "sim": {"sunspec_model": 124},
                    **battery,
                },
                {
                    "id": "bat-b",
                    "modbus": at(gateway, 4),
                    "control": "802",
                    "sim": {"sunspec_model": 802},
                    **battery,
                },
                {"id": "meter", "kind": "meter", "modbus": at(meters, 1)},
                {"id": "hp", "kind": "heat_pump", "max_el_w": 300000, "modbus": at(meters, 2)},
                {"id": "dc", "kind": "datacentre", "it_power_w": 1e6, "modbus": at(meters, 3)},
            ],
        }
    )


@asynccontextmanager
async def plant() -> AsyncIterator[tuple[SimFleet, FleetPoller, ManualClock]]:
    site = small_site()
    clock = ManualClock(NOON)
    async with (
        SimFleet(site, clock=clock, step_interval_s=None) as fleet,
        ModbusBridge() as bridge,
    ):
        yield fleet, FleetPoller(site, bridge, clock), clock


def reading(snap: Snapshot, device_id: str) -> Any:
    return snap.devices[device_id].reading


async def test_simulated_site_is_polled_into_the_devices_physics_state() -> None:
    async with plant() as (fleet, poller, _):
        fleet.step(60)
        snap = await poller.poll()
    assert not snap.offline(), [d.health.last_error for d in snap.offline()]
    for pv_id in ("pv-a", "pv-b"):
        pv = reading(snap, pv_id)
        assert isinstance(pv, PvReading)
        assert pv.ac_power_w == pytest.approx(fleet.device(pv_id).state.power_w, abs=1.0)
        assert (pv.ac_power_w or 0.0) > 100  # June, 10:00 UTC in Leipzig: the sun is up
    for bat_id in ("bat-a", "bat-b"):
        bat = reading(snap, bat_id)
        assert isinstance(bat, BatteryReading)
        assert bat.soc_pct == pytest.approx(fleet.device(bat_id).state.soc_pct, abs=0.1)
        assert bat.capacity_wh == 10000.0


@pytest.mark.parametrize("battery_id", ["bat-a", "bat-b"])
async def test_battery_setpoint_is_followed_and_reverts_after_its_timer(battery_id: str) -> None:
    async with plant() as (fleet, poller, _):
        await poller.poll()
        result = await Controls(poller).set_battery_power(battery_id, 2000.0)  # revert 10 s
        assert result.ok, result.message
        fleet.step(5)
        during = reading(await poller.poll(), battery_id)
        fleet.step(10)
        after = reading(await poller.poll(), battery_id)
    assert isinstance(during, BatteryReading) and isinstance(after, BatteryReading)
    assert during.setpoint_w == 2000.0 and during.power_w == pytest.approx(2000.0, abs=50)
    assert after.setpoint_w is None and after.power_w == pytest.approx(0.0, abs=50)


async def test_pv_limit_is_applied_by_the_simulated_inverter() -> None:
    async with plant() as (fleet, poller, _):
        fleet.step(60)
        await poller.poll()
        result = await Controls(poller, revert_s=900).set_pv_limit("pv-a", 10.0)
        fleet.step(1)
        pv = reading(await poller.poll(), "pv-a")
    assert result.ok
    assert isinstance(pv, PvReading) and pv.limit_pct == 10.0
    assert pv.ac_power_w is not None and pv.ac_power_w <= 0.1 * 8000 + 1


async def test_heat_pump_takes_its_setpoint() -> None:
    async with plant() as (fleet, poller, _):
        await poller.poll()
        result = await Controls(poller).set_heat_pump_power("hp", 120_000.0)
        fleet.step(1)
        hp = reading(await poller.poll(), "hp")
    assert result.ok, result.message
    assert hp.el_setpoint_w == 120_000.0


def _demand_w(when: datetime) -> float:
    """A heat demand that changes every minute [W thermal], odd watts included."""
    minute = int((when - NOON).total_seconds() // 60)
    return 812_345.0 + 7_919.0 * (minute % 13) + 0.25 * (minute % 3)


async def test_network_heat_meter_decodes_to_what_the_simulated_plant_holds() -> None:
    site = small_site()
    world = SimWorld(
        irradiance=constant_profile(0.0),
        base_load_w=lambda _w: None,
        it_power_w=lambda _w: None,
        waste_heat_temp_c=lambda _w: None,
        heat_demand_th_w=_demand_w,
    )
    clock = ManualClock(NOON)
    seen: list[float] = []
    async with (
        SimFleet(site, clock=clock, step_interval_s=None, world=world) as fleet,
        ModbusBridge() as bridge,
    ):
        poller = FleetPoller(site, bridge, clock)
        for _ in range(5):
            fleet.step(60)
            hp = reading(await poller.poll(), "hp")
            held = fleet.device("hp").state.network_th_w
            assert isinstance(hp, HeatPumpReading) and hp.network_th_w is not None
            # The device holds the world's demand; the uint32 register rounds to 1 W.
            assert held == _demand_w(clock.now())
            assert hp.network_th_w == round(held)
            # The meter is the network's: not the heat pump's own output.
            assert hp.network_th_w != pytest.approx(hp.th_power_w or 0.0, abs=1.0)
            seen.append(hp.network_th_w)
    assert len(set(seen)) == len(seen), seen  # it follows the world from minute to minute


async def test_network_heat_meter_without_a_world_shows_the_annual_mean() -> None:
    site = small_site()
    site = site.model_copy(
        update={"heat": site.heat.model_copy(update={"annual_demand_wh": 7_008_000_000.0})}
    )
    async with (
        SimFleet(site, clock=ManualClock(NOON), step_interval_s=None) as fleet,
        ModbusBridge() as bridge,
    ):
        fleet.step(60)
        hp = reading(await FleetPoller(site, bridge, fleet.clock).poll(), "hp")
    assert hp.network_th_w == 7_008_000_000.0 / HOURS_PER_YEAR == 800_000.0


@pytest.mark.parametrize("metered", [True, False])
async def test_site_without_network_meter_hides_it_from_the_controller(metered: bool) -> None:
    site = small_site()
    site = site.model_copy(
        update={
            "heat": site.heat.model_copy(
                update={"annual_demand_wh": 876_000_000.0, "network_meter": metered}
            )
        }
    )
    clock = ManualClock(NOON)
    async with (
        SimFleet(site, clock=clock, step_interval_s=None) as fleet,
        ModbusBridge() as bridge,
    ):
        fleet.step(60)
        hp = reading(await ModbusPlant.for_site(site, bridge, clock).read(), "hp")
    assert isinstance(hp, HeatPumpReading) and hp.el_power_w is not None
    assert hp.network_th_w == (100_000.0 if metered else None)


async def test_simulator_faults_fail_only_their_device() -> None:
    async with plant() as (fleet, poller, _):
        await poller.poll()
        fleet.device("pv-a").fault = "silent"
        fleet.device("bat-a").fault = "error"
        fleet.device("bat-b").fault = "garbage"
        snap = await poller.poll()
        errors = {d.id: d.health.last_error for d in snap.offline()}
        assert set(errors) == {"pv-a", "bat-a", "bat-b"}, errors
        assert "no answer within 0.5 s" in (errors["pv-a"] or "")
        assert "Modbus exception 0x0B GATEWAY_NO_RESPONSE" in (errors["bat-a"] or "")
        assert (errors["bat-b"] or "").startswith("bat-b: ")
        for device_id in errors:  # the last good reading stays
            assert snap.devices[device_id].reading is not None

        await fleet.stop_port(fleet.site.device("meter").modbus.port)
        snap = await poller.poll()
        assert (snap.devices["meter"].health.last_error or "").startswith("meter: cannot connect")
        await fleet.start_port(fleet.site.device("meter").modbus.port)
        for device_id in ("pv-a", "bat-a", "bat-b"):
            fleet.device(device_id).fault = "none"
        # pv-a, bat-a and bat-b failed twice: their breakers are open until breaker_reset_s.
        snap = await poller.poll()
    assert {d.id for d in snap.online()} == {"pv-b", "meter", "hp", "dc"}
