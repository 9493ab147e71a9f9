"""From a plan's step to the plant's setpoints, through the live controller's own code.

The plan row becomes setpoints with :func:`vpp.control.dispatch.setpoints_from_row`; they are
checked with :func:`vpp.control.safety.check_setpoints` and held back by
:func:`vpp.control.safety.guard_grid` against a :class:`~adapters.snapshot.Snapshot` built
from the simulated plant, exactly as ``Controller.apply`` does before writing to devices.
The snapshot holds what a poll at the quarter hour would read: each battery's SoC and the
previous quarter hour's mean powers of batteries, inverters, heat pump and grid meter.

Within the quarter hour the live controller nudges the batteries when the grid exchange goes
past a limit (or, with ``run.correction = "schedule"``, off the plan) and curtails PV if the
export goes over its limit (its ``correct`` job, every ``run.correction_interval_s``).
Replay does the same with the same function (:func:`vpp.control.dispatch.corrections`):
the quarter hour's true values are constant within it, so after the first interval the grid
meter shows the whole departure, one correction cancels it (down to the deadband) and holds
for the rest of the quarter hour (:meth:`Follower.correct`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Reading,
    Snapshot,
)
from vpp.control.dispatch import corrections, setpoints_from_row
from vpp.control.safety import Setpoint, check_setpoints, grid_limits_w, guard_grid
from vpp.core.site import DeviceKind, Site
from vpp.replay import plant as k
from vpp.replay.layout import PlantParams

F64 = NDArray[np.float64]
#: Seconds a quarter-hour setpoint is in force (the SoC headroom check looks this far).
QUARTER_S = 900.0


@dataclass(frozen=True)
class Setpoints:
    """What the plant is told for one step: battery W (> 0 discharge), PV caps W, heat pump
    electric W; ``clamped`` counts setpoints the safety code changed."""

    bat_w: F64
    pv_limit_w: F64
    hp_w: float
    clamped: int = 0


@dataclass(frozen=True)
class PlantReading:
    """The plant as a poll at the start of a step sees it (powers of the step before)."""

    soc_wh: F64
    bat_w: F64
    pv_w: F64
    hp_el_w: float
    #: Grid meter [W, > 0 import]; None before the first simulated step.
    grid_w: float | None


def device_defaults(params: PlantParams, inp: F64) -> Setpoints:
    """What the devices do with no setpoint from the controller (their revert defaults):
    batteries idle, PV unlimited, heat pump led by the heat demand."""
    return Setpoints(
        np.zeros(len(params.battery_ids)),
        params.pv_rated_w.copy(),
        float(k.heat_led_w(params.heat, inp)),
    )


class Follower:
    """Turns plan rows into plant setpoints for one site."""

    def __init__(self, site: Site, params: PlantParams) -> None:
        self.site = site
        self.params = params
        self._bat_pos = {d: i for i, d in enumerate(params.battery_ids)}
        self._pv_pos = {d: i for i, d in enumerate(params.pv_ids)}
        self._online = {d.id for d in site.devices if d.enabled}

    def setpoints(
        self, row: pd.Series | None, when: datetime, reading: PlantReading, inp: F64
    ) -> Setpoints:
        """The setpoints for the step starting at ``when`` (device defaults without a row)."""
        base = device_defaults(self.params, inp)
        if row is None:
            return base
        snap = snapshot(self.site, self.params, when, reading)
        proposed = setpoints_from_row(self.site, row, self._online)
        checked = check_setpoints(self.site, snap, proposed, QUARTER_S)
        imp, exp = grid_limits_w(self.site, [], when)
        final = guard_grid(self.site, snap, checked, imp, exp)
        return self._arrays(final, base)

    def correct(
        self,
        row: pd.Series,
        when: datetime,
        reading: PlantReading,
        current: Setpoints,
        horizon_s: float,
    ) -> Setpoints:
        """The setpoints after one intra-quarter correction at ``when``, from a poll's
        ``reading`` of the plant under ``current``; they hold for ``horizon_s`` [s].

        As ``Controller.correct`` followed by ``Controller.apply``: corrections, then the
        safety check and the grid guard on the same snapshot. ``current`` comes back
        unchanged (``clamped`` 0) when the grid is within the deadband of the plan.
        """
        snap = snapshot(self.site, self.params, when, reading)
        active = dict(zip(self.params.battery_ids, map(float, current.bat_w), strict=True))
        imp, exp = grid_limits_w(self.site, [], when)
        proposed = corrections(self.site, snap, row, active, imp, exp, horizon_s)
        if not proposed:
            return Setpoints(current.bat_w, current.pv_limit_w, current.hp_w)
        checked = check_setpoints(self.site, snap, proposed, horizon_s)
        return self._arrays(guard_grid(self.site, snap, checked, imp, exp), current)

    def _arrays(self, setpoints: list[Setpoint], base: Setpoints) -> Setpoints:
        bat, pv, hp = base.bat_w.copy(), base.pv_limit_w.copy(), base.hp_w
        for sp in setpoints:
            if sp.kind == DeviceKind.BATTERY:
                bat[self._bat_pos[sp.device_id]] = sp.value
            elif sp.kind == DeviceKind.PV:
                j = self._pv_pos[sp.device_id]
                pv[j] = sp.value / 100.0 * self.params.pv_rated_w[j]
            elif sp.kind == DeviceKind.HEAT_PUMP:
                hp = sp.value
        return Setpoints(bat, pv, hp, sum(1 for sp in setpoints if sp.clamped))


def snapshot(site: Site, params: PlantParams, when: datetime, reading: PlantReading) -> Snapshot:
    """A process image of the simulated plant, every device online."""
    health = CommsHealth(last_success=when, last_attempt=when)
    devices: dict[str, DeviceState] = {}

    def put(device_id: str, kind: DeviceKind, value: Reading) -> None:
        devices[device_id] = DeviceState(device_id, str(kind), value, health, when)

    for i, bat_id in enumerate(params.battery_ids):
        cap = float(params.bat[i, k.B_CAP])
        put(
            bat_id,
            DeviceKind.BATTERY,
            BatteryReading(
                soc_pct=100.0 * float(reading.soc_wh[i]) / cap,
                power_w=float(reading.bat_w[i]),
                capacity_wh=cap,
                max_charge_w=None,
                max_discharge_w=None,
            ),
        )
    for j, pv_id in enumerate(params.pv_ids):
        put(
            pv_id,
            DeviceKind.PV,
            PvReading(
                ac_power_w=float(reading.pv_w[j]),
                energy_wh=None,
                dc_power_w=None,
                status=None,
                rated_w=float(params.pv_rated_w[j]),
            ),
        )
    if params.heat_pump_id is not None:
        put(
            params.heat_pump_id,
            DeviceKind.HEAT_PUMP,
            HeatPumpReading(
                el_power_w=reading.hp_el_w,
                el_setpoint_w=None,
                th_power_w=None,
                source_temp_c=None,
                supply_temp_c=None,
            ),
        )
    if site.grid.meter is not None and reading.grid_w is not None:
        put(site.grid.meter, DeviceKind.METER, MeterReading(reading.grid_w, None, None))
    return Snapshot(time=when, devices=devices)
