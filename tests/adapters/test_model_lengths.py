"""Devices whose SunSpec model lengths differ from the definition, over real Modbus servers.

The small site of tests.adapters.fleet with some images changed by ``resize_model``: the
devices stay online, their readings are what the images hold, the warning is logged once per
device and model however often they are polled, and a control that needs a point beyond the
reported length fails naming device, model and point, with nothing written.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from adapters.bridge import ModbusBridge
from adapters.controls import Controls
from adapters.devices import MissingPointError, SunSpecDriver
from adapters.poll import FleetPoller
from adapters.snapshot import BatteryReading, PvReading
from adapters.sunspec.discovery import scan
from adapters.sunspec.models import load_model
from tests.adapters.fleet import (
    Fleet,
    battery_124_models,
    fleet_units,
    pv_models,
    serve_fleet,
)
from tests.adapters.servers import FakeUnit, UnitServer, resize_model, sunspec_image
from tests.conftest import LOOPBACK, free_port

LOGGER = "adapters.devices.sunspec"
POLLS = 4
ROOM = [0] * 10  # spare registers: a server's register space is fixed when it starts


def pv_image() -> list[int]:
    """pv-1 (103, 120, 123): 103 six registers short (EvtVnd2..4 cut off), so 120 and 123
    start earlier than the definition says; 123 cut to L=20 (WMaxLimPct_SF is gone)."""
    image = resize_model(sunspec_image(pv_models(w=2345.6, wh=777_000.0, dcw=2400.0)), 103, 44)
    return resize_model(image, 123, 20)


def battery_image() -> list[int]:
    """bat-1 (103, 120, 124): 124 with six vendor registers after its definition."""
    return resize_model(sunspec_image(battery_124_models(soc=63.0, w=1200.0)), 124, 24 + 6)


@asynccontextmanager
async def polled_fleet() -> AsyncIterator[tuple[Fleet, FleetPoller]]:
    units = fleet_units()
    units["pv-1"] = FakeUnit(1, pv_image())
    units["bat-1"] = FakeUnit(1, battery_image() + ROOM)
    async with serve_fleet(units, revert_s=600) as fleet, ModbusBridge() as bridge:
        yield fleet, FleetPoller(fleet.site, bridge)


def length_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and " L=" in r.getMessage()
    ]


async def test_misfit_models_stay_online_read_what_fits_and_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with polled_fleet() as (_, poller):
        snaps = [await poller.poll() for _ in range(POLLS)]
        pv = poller.driver("pv-1")
        assert isinstance(pv, SunSpecDriver) and pv.layout is not None
        chain = [(loc.id, loc.address, loc.length) for loc in pv.layout.chain]
        pv.forget()  # what the poller does after a failure: rediscovery must not warn again
        again = await poller.poll()
    for snap in [*snaps, again]:
        assert all(d.health.online for d in snap), [d.health.last_error for d in snap]
        assert snap.devices["pv-1"].reading == PvReading(
            2345.6, 777_000.0, 2400.0, "MPPT", 5000.0, None
        )
        assert snap.devices["bat-1"].reading == BatteryReading(
            63.0, 1200.0, 10000.0, 5000.0, 5000.0, "CHARGING", None
        )
    # The chain is walked with the reported lengths: 120 right after the short 103.
    assert chain == [(1, 40002, 66), (103, 40070, 44), (120, 40116, 26), (123, 40144, 20)]
    assert sorted(length_warnings(caplog)) == [
        "bat-1: model 124 (storage_basic) at 40150: L=30 is longer than the definition "
        "(24 registers): 6 registers beyond the definition ignored (the points inside L are "
        "used)",
        "pv-1: model 103 (inverter_three_phase) at 40070: L=44 is shorter than the definition "
        "(50 registers): 3 points beyond L missing (None): EvtVnd2, EvtVnd3, EvtVnd4 (the "
        "points inside L are used)",
        "pv-1: model 123 (controls) at 40144: L=20 is shorter than the definition "
        "(24 registers): 4 points beyond L missing (None): VArPct_Ena, WMaxLimPct_SF, "
        "OutPFSet_SF, VArPct_SF (the points inside L are used)",
    ]


async def test_a_changed_length_is_warned_about_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with polled_fleet() as (fleet, poller):
        await poller.poll()
        await poller.poll()
        fleet.units["bat-1"].regs = resize_model(battery_image(), 124, 24 + 8) + ROOM[2:]
        failed = await poller.poll()  # header changed: this poll fails and forgets the layout
        healed = [await poller.poll() for _ in range(POLLS)]
    assert not failed.devices["bat-1"].health.online
    assert all(s.devices["bat-1"].health.online for s in healed)
    bat = [w for w in length_warnings(caplog) if w.startswith("bat-1:")]
    assert [w.split(" is longer")[0] for w in bat] == [
        "bat-1: model 124 (storage_basic) at 40150: L=30",
        "bat-1: model 124 (storage_basic) at 40150: L=32",
    ]


async def test_battery_control_works_on_a_model_with_vendor_registers() -> None:
    async with polled_fleet() as (fleet, poller):
        await poller.poll()
        result = await Controls(poller).set_battery_power("bat-1", -2000.0)
        state = await poller.poll_device("bat-1")
        vendor = fleet.units["bat-1"].get(40150 + 2 + 24, 6)
    assert result.ok and result.read_back == -2000.0, result.message
    assert isinstance(state.reading, BatteryReading) and state.reading.setpoint_w == -2000.0
    assert vendor == [0x1234] * 6  # the writes stayed inside the definition


async def test_control_needing_a_point_beyond_l_fails_clearly_and_writes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with polled_fleet() as (fleet, poller):
        await poller.poll()
        with pytest.raises(MissingPointError) as info:
            await Controls(poller).set_pv_limit("pv-1", 50.0)
        driver = poller.driver("pv-1")
        assert isinstance(driver, SunSpecDriver)
        model = (await driver.read_now(123))[123]
        with pytest.raises(MissingPointError, match="model 123 point VArPct_Ena lies beyond"):
            await driver.write_points(model, [[("WMaxLim_Ena", 1)], [("VArPct_Ena", 1)]])
        after = await poller.poll_device("pv-1")
        writes = fleet.units["pv-1"].writes
    assert str(info.value) == (
        "pv-1: cannot write: model 123 point WMaxLimPct: its scale factor WMaxLimPct_SF lies "
        "beyond the length the device reports (L=20); nothing written"
    )
    assert writes == []
    assert after.health.online and isinstance(after.reading, PvReading)
    assert len([w for w in length_warnings(caplog) if w.startswith("pv-1:")]) == 2


async def test_needed_point_beyond_l_names_device_model_and_point() -> None:
    units = fleet_units()
    # The meter's 203 cut just before W: W and everything after it (W_SF too) are gone.
    w = load_model(203).group.point("W").offset
    units["meter"] = FakeUnit(1, resize_model(units["meter"].regs, 203, w - 2))
    async with serve_fleet(units) as fleet, ModbusBridge() as bridge:
        snap = await FleetPoller(fleet.site, bridge).poll()
    meter = snap.devices["meter"].health
    assert not meter.online
    assert meter.last_error == (
        "meter: model 203 point W lies beyond the length the device reports (L=16) (needed)"
    )
    assert all(d.health.online for d in snap if d.id != "meter")


async def test_scan_over_modbus_decodes_whole_repeats_of_a_partial_mppt_model() -> None:
    modules = [{"ID": i, "DCW": 400.0 + i, "DCV": 330.5} for i in (1, 2, 3)]
    mppt = {"DCW_SF": 0, "DCV_SF": -1, "N": 3, "module": modules}
    image = sunspec_image([(1, {"Mn": "ACME"}), (160, mppt)])
    image = resize_model(image, 160, 8 + 3 * 20 - 5)  # the third module lacks 5
    image = resize_model(image, 1, 65)  # and a common model without its pad
    port = free_port()
    async with UnitServer(port, [FakeUnit(1, image)]), ModbusBridge() as bridge:
        result = await scan(bridge.reader(LOOPBACK, port, 1, timeout_s=1.0, retries=0))
    common, model = result.models
    assert common.values["Mn"] == "ACME" and common.warnings == []
    assert [g.values["DCW"] for g in model.groups["module"]] == [401.0, 402.0]
    assert model.values["N"] == 3 and model.errors == []
    assert "hold 2 instances of 20 registers and 15 more" in str(model.warnings[0])
