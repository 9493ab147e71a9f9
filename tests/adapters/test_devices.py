"""Device drivers: discovery, normalisation, and bad data that fails one device cleanly."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.bridge import ModbusBridge
from adapters.devices import DeviceDataError, Driver, driver_for, register_driver, registered
from adapters.devices.sunspec import Models, SunSpecDriver, _encode
from adapters.snapshot import BatteryReading, PvReading
from adapters.sunspec.codec import encode_value
from adapters.sunspec.decode import DecodedModel
from adapters.sunspec.discovery import ModelOverrunError, NoSunSpecError
from adapters.sunspec.models import load_model, symbol_name
from tests.adapters.fleet import (
    battery_124_models,
    battery_802_models,
    pv_float_models,
    pv_models,
)
from tests.adapters.servers import SUNS, FakeUnit, UnitServer, sunspec_image
from tests.conftest import free_port
from vpp.core.site import parse_site


def device_config(kind: str, port: int, **extra: Any) -> Any:
    fields = {
        "pv": {"rated_w": 5000},
        "battery": {"capacity_wh": 10000, "max_charge_w": 5000, "max_discharge_w": 5000},
    }[kind]
    modbus = {"port": port, "unit": 1, "timeout_s": 0.5, "retries": 0, **extra.pop("modbus", {})}
    site = parse_site(
        {
            "site": {"name": "t"},
            "grid": {"import_limit_w": 1, "export_limit_w": 1},
            "devices": [{"id": "dev", "kind": kind, "modbus": modbus, **fields, **extra}],
        }
    )
    return site.devices[0]


@asynccontextmanager
async def driven(
    kind: str, regs: list[int], start: int = 40000, **extra: Any
) -> AsyncIterator[tuple[Driver, FakeUnit]]:
    """A driver for one device whose unit serves ``regs`` from ``start``."""
    port = free_port()
    fake = FakeUnit(1, regs, start=start)
    cfg = device_config(kind, port, **extra)
    async with UnitServer(port, [fake]), ModbusBridge() as bridge:
        yield driver_for(cfg, bridge.link(cfg.id, cfg.modbus)), fake


def set_point(fake: FakeUnit, driver: Driver, model_id: int, point: str, regs: list[int]) -> None:
    """Overwrite one point's registers on the device."""
    from adapters.sunspec.decode import point_address
    from adapters.sunspec.models import load_model

    assert isinstance(driver, SunSpecDriver) and driver.layout is not None
    loc = driver.layout.location(model_id)
    assert loc is not None
    address, _ = point_address(load_model(model_id), loc.address, point)
    fake.set(address, regs)


def test_registry_has_one_driver_per_kind_and_protocol() -> None:
    assert registered() == [
        ("battery", "sunspec"),
        ("datacentre", "regmap"),
        ("heat_pump", "regmap"),
        ("meter", "sunspec"),
        ("pv", "sunspec"),
    ]
    with pytest.raises(ValueError, match="registered already"):
        register_driver("pv", "sunspec")(type("Other", (SunSpecDriver,), {}))


async def test_pv_reads_only_the_dynamic_models_after_discovery() -> None:
    async with driven("pv", sunspec_image(pv_models(w=2321.5))) as (driver, fake):
        first = await driver.read()
        discovery_requests = fake.requests
        fake.requests = 0
        second = await driver.read()
    assert first == second
    assert isinstance(first, PvReading)
    assert first.ac_power_w == 2321.5 and first.rated_w == 5000.0
    assert first.energy_wh == 123456.0 and first.status == "MPPT" and first.limit_pct is None
    assert discovery_requests > 3
    assert fake.requests == 1  # models 103 and 123 (with 120 between) in one read


async def test_float_pv_with_704_reports_active_limit() -> None:
    async with driven("pv", sunspec_image(pv_float_models(w=812.25))) as (driver, _):
        reading = await driver.read()
    assert isinstance(reading, PvReading)
    assert (reading.ac_power_w, reading.limit_pct, reading.rated_w) == (812.25, 60.0, 10000.0)
    assert reading.status == "THROTTLED"


@pytest.mark.parametrize("base", [0, 50000])
async def test_discovery_finds_other_bases(base: int) -> None:
    async with driven("pv", sunspec_image(pv_models()), start=base) as (driver, _):
        reading = await driver.read()
        assert isinstance(driver, SunSpecDriver) and driver.layout is not None
        assert driver.layout.base == base
    assert isinstance(reading, PvReading) and reading.ac_power_w == 3000.0


async def test_configured_base_is_tried_first() -> None:
    image = sunspec_image(pv_models())
    async with driven("pv", image, start=30000, modbus={"base": 30000}) as (driver, _):
        await driver.read()
        assert isinstance(driver, SunSpecDriver) and driver.layout is not None
        assert driver.layout.base == 30000


async def test_battery_124_and_802_normalise_signs_and_ratings() -> None:
    async with driven("battery", sunspec_image(battery_124_models(soc=42.0, w=-1800.0))) as (d, _):
        b124 = await d.read()
    async with driven(
        "battery", sunspec_image(battery_802_models(soc=81.0, w=2400.0)), control="802"
    ) as (d, _):
        b802 = await d.read()
    assert b124 == BatteryReading(42.0, -1800.0, 10000.0, 5000.0, 5000.0, "CHARGING", None)
    assert b802 == BatteryReading(81.0, 2400.0, 20000.0, 10000.0, 10000.0, "DISCHARGING", None)


async def test_battery_configured_124_still_reads_a_device_with_only_802() -> None:
    async with driven("battery", sunspec_image(battery_802_models(soc=12.0))) as (driver, _):
        reading = await driver.read()
    assert isinstance(reading, BatteryReading) and reading.soc_pct == 12.0


async def test_wrong_marker_is_a_clear_error() -> None:
    image = sunspec_image(pv_models())
    image[0:2] = [0x5375, 0x6E54]  # "SunT"
    async with driven("pv", image) as (driver, _):
        with pytest.raises(NoSunSpecError, match=r"no SunSpec 'SunS' marker; 40000: found"):
            await driver.read()


async def test_model_length_that_overruns_the_device() -> None:
    image = sunspec_image(pv_models())[:-2]  # no end marker, and the last model's L too long
    image[-26 - 1] = 60  # model 123's L (26 -> 60): runs past the registers the unit has
    async with driven("pv", image) as (driver, _):
        with pytest.raises(ModelOverrunError, match="overruns the readable registers"):
            await driver.read()


async def test_missing_required_model_names_what_is_needed() -> None:
    image = SUNS + sunspec_image([(1, {"Mn": "X"}), (120, {"WRtg": 1})])[2:]
    async with driven("pv", image) as (driver, _):
        with pytest.raises(DeviceDataError, match=r"dev: models \[1, 120\] lack .*measure"):
            await driver.read()


async def test_scale_factor_out_of_range_fails_naming_the_point() -> None:
    async with driven("pv", sunspec_image(pv_models())) as (driver, fake):
        await driver.read()
        set_point(fake, driver, 103, "W_SF", [11])
        with pytest.raises(DeviceDataError, match=r"dev: .*W_SF=11 outside -10..10; W set to"):
            await driver.read()


@pytest.mark.parametrize(
    ("point", "regs", "message"),
    [
        ("W", [9000], r"dev: model 103 point W = 9000 W outside the plausible -500..7500 W"),
        ("W", [0x8001], r"dev: model 103 point W = -32767 W outside the plausible"),
        ("DCW", [30000], r"dev: model 103 point DCW = 30000 W outside the plausible -500..7500"),
    ],
)
async def test_values_beyond_ratings_fail_naming_device_and_point(
    point: str, regs: list[int], message: str
) -> None:
    async with driven("pv", sunspec_image(pv_models())) as (driver, fake):
        await driver.read()
        set_point(fake, driver, 103, "W", [7000, 0])  # W, W_SF: 7 kW of 5 kW rated is fine
        reading = await driver.read()
        assert isinstance(reading, PvReading) and reading.ac_power_w == 7000.0
        set_point(fake, driver, 103, point, regs)
        with pytest.raises(DeviceDataError, match=message):
            await driver.read()


async def test_soc_outside_0_100_fails() -> None:
    async with driven("battery", sunspec_image(battery_124_models())) as (driver, fake):
        await driver.read()
        set_point(fake, driver, 124, "ChaState", [300])
        with pytest.raises(DeviceDataError, match=r"dev: model 124 point ChaState = 300 %"):
            await driver.read()


async def test_nan_where_a_number_is_needed_fails() -> None:
    async with driven("pv", sunspec_image(pv_float_models())) as (driver, fake):
        await driver.read()
        set_point(fake, driver, 113, "W", [0x7FC0, 0x0001])  # a NaN bit pattern
        with pytest.raises(DeviceDataError, match=r"dev: model 113 point W is not available"):
            await driver.read()
        set_point(fake, driver, 113, "W", [0x7F80, 0])  # +inf
        with pytest.raises(DeviceDataError, match=r"model 113 point W = inf is not a finite"):
            await driver.read()


async def test_changed_chain_is_rediscovered_after_the_failure() -> None:
    room = [0] * 100  # the device's register space is fixed when its server starts
    async with driven("pv", sunspec_image(pv_models()) + room) as (driver, fake):
        await driver.read()
        fake.regs = sunspec_image([pv_models()[0], *pv_float_models(w=99.5)[1:]]) + room
        with pytest.raises(Exception, match="rescan"):
            await driver.read()
        driver.forget()  # what the poller does after any failure
        reading = await driver.read()
    assert isinstance(reading, PvReading) and math.isclose(reading.ac_power_w or 0, 99.5)


@given(
    ptype=st.sampled_from(["uint16", "count", "enum16", "bitfield16", "acc16", "int16"]),
    raw=st.integers(-0x10000, 0x1FFFF) | st.sampled_from([-0x8000, -1, 0, 0x7FFF, 0xFFFF]),
)
def test_control_points_encode_as_the_codec_encodes_them(ptype: str, raw: int) -> None:
    """The inline encoding of one-register control points agrees with the SunSpec codec,
    refusals of values that do not fit included (naming model and point)."""
    try:
        want: list[int] | None = encode_value(ptype, raw, 1)
    except ValueError:
        want = None
    if want is None:
        with pytest.raises(ValueError, match="model 123 point WMaxLimPct"):
            _encode(123, "WMaxLimPct", ptype, 1, raw)
    else:
        assert _encode(123, "WMaxLimPct", ptype, 1, raw) == want


@pytest.mark.parametrize(
    ("model_id", "point"), [(103, "St"), (113, "St"), (124, "ChaSt"), (802, "ChaSt")]
)
def test_status_symbols_are_those_of_the_definition(model_id: int, point: str) -> None:
    """``Models.symbol`` (a table made once per point) names what ``symbol_name`` names, and
    a value without a symbol by its number."""
    pdef = load_model(model_id).group.point(point)
    values = [*pdef.symbols.values(), 0, 999]
    for value in values:
        decoded = DecodedModel(model_id, "m", 40000, 1, {point: value}, {}, [])
        got = Models("dev", {"role": decoded}).symbol("role", point)
        assert got == (symbol_name(pdef, value) or str(value))
    assert Models("dev", {}).symbol("role", point) is None
