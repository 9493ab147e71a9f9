"""The device-kind registry names real things: reading fields of the adapters' readings and
columns of a real plan."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pandas as pd

from adapters.snapshot import (
    BatteryReading,
    DatacentreReading,
    HeatPumpReading,
    MeterReading,
    PvReading,
)
from optimizer.inputs import State
from optimizer.planner import plan
from optimizer.synthetic import synthetic_forecast
from vpp.core.kinds import BY_SETPOINT, KINDS, kind_of
from vpp.core.site import DeviceKind, read_site

READING = {
    DeviceKind.BATTERY: BatteryReading,
    DeviceKind.PV: PvReading,
    DeviceKind.HEAT_PUMP: HeatPumpReading,
    DeviceKind.METER: MeterReading,
    DeviceKind.DATACENTRE: DatacentreReading,
}


def test_every_kind_is_registered_and_names_fields_its_reading_has() -> None:
    assert set(KINDS) == set(DeviceKind)
    for kind, spec in KINDS.items():
        fields = {f.name for f in dataclasses.fields(READING[kind])}
        named = [spec.power_reading, spec.confirm_reading, *(f for _, f in spec.measures)]
        assert {n for n in named if n is not None} <= fields, kind
        assert kind_of(kind.value) is spec
    assert BY_SETPOINT == {"battery_w": DeviceKind.BATTERY, "pv_limit_w": DeviceKind.PV,
                           "heat_pump_el_w": DeviceKind.HEAT_PUMP}  # fmt: skip


def test_every_setpoint_comes_from_a_column_a_real_plan_has() -> None:
    site = read_site("config/demo.toml")
    start = datetime(2026, 6, 21, 10, tzinfo=UTC)
    forecast = synthetic_forecast(site, pd.Timestamp(start), 8)
    frame = plan(site, State.from_site(site), forecast, start).frame
    for device in site.devices:
        column = KINDS[device.kind].column(device.id)
        if column is not None:
            assert column in frame.columns, (device.id, column)
