"""The replay plant: the numba plant model behind the controller's :class:`Plant` protocol.

``vpp replay`` runs the very controller that ``vpp run`` runs; only its plant differs. Where
``vpp run`` polls and writes devices over Modbus, replay reads and writes this model, which a
manual clock moves on (:meth:`ReplayPlant.advance_to`, called before the controller's jobs at
every tick).

Inside the quarter hour the electric side steps in one-minute sub-steps (:data:`SUBSTEP_S`),
with PV and load varying from minute to minute (:func:`vpp.data.minutes.within_quarter`: the
quarter-hour data interpolated, each quarter hour keeping its mean; PV per kWp is interpolated,
then scaled to each inverter and clipped at its rating; or, with the cloud process, each
inverter's own minutes from :func:`vpp.data.clouds.pv_minutes`), so a correction only ever
sees what has already happened. The heat side (heat pump, store, boiler, dry coolers) steps
in the same minutes, with the heat-pump setpoint in force in each: the heat demand is
interpolated within the quarter hour as the load is (each quarter hour keeps its mean),
waste heat and COP hold for the quarter hour, and the store's standing loss of the quarter
hour (from its content at the start, as in the plan and the bound) is taken in its first
minute, so each quarter hour's store balance is the plan's and the bound's exactly (also
when the store runs empty within it). A heat-pump setpoint corrected within the quarter hour
(:func:`vpp.control.dispatch.correct_heat_pump`) so acts from the next minute on.

A poll reads what the devices would report: each battery's state of charge now, and the last
minute's mean power of batteries, inverters and grid meter; the heat pump's last minute; the
heat the network takes in the minute of the poll (``network_th_w``, the heat meter at the
network's feed: the demand does not depend on the plant, so the meter shows it as the
simulated one of ``vpp run`` does, from the world's minute containing the poll; at the
very start the minute before it, where the driver knows it, ``heat_before_w``). A write
takes effect from the next minute; the device reads back what it was sent. Devices fall
back to their own control (batteries idle, PV unlimited, heat pump led by the heat demand)
when their setpoint is not renewed within ``poll.revert_s``, as the simulated and real
devices do.

The quarter hours it has run are kept in :attr:`ReplayPlant.trace` (means of each quarter
hour, energies at its end), which the KPIs read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    DatacentreReading,
    DeviceState,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Snapshot,
)
from vpp.control.plant import Written
from vpp.control.safety import Setpoint
from vpp.core.site import DeviceKind, Site
from vpp.data.minutes import within_quarter
from vpp.replay import plant as k
from vpp.replay.layout import PlantInputs, PlantParams
from vpp.replay.trace import Trace

#: Length of the electric sub-step [s].
SUBSTEP_S = 60
#: Sub-steps per quarter hour.
PER_QUARTER = 900 // SUBSTEP_S
#: Electric flows that are quarter-hour means of the sub-steps.
_ELECTRIC_MEANS = [k.O_PV, k.O_PV_AVAIL, k.O_LOAD, k.O_BAT, k.O_BAT_CH, k.O_BAT_DIS, k.O_GRID]
#: Heat flows that are quarter-hour means of the sub-steps (the store's energy is its end).
_HEAT_MEANS = [
    k.O_HP_EL, k.O_HP_TH, k.O_SOURCE, k.O_DRY_TH, k.O_DRY_EL, k.O_STORE_CH, k.O_STORE_DIS,
    k.O_STORE_LOSS, k.O_BOILER, k.O_UNMET, k.O_DEMAND, k.O_WASTE,
]  # fmt: skip


class ReplayPlant:
    """The plant model of ``site`` over the quarter hours of ``inputs``, from the energies in
    ``params`` (``soc0_wh``, ``store0_wh``)."""

    def __init__(
        self,
        site: Site,
        params: PlantParams,
        inputs: PlantInputs,
        heat_before_w: float | None = None,
    ) -> None:
        self.site, self.params, self.inputs = site, params, inputs
        #: The network's heat in the minute before the stretch [W], which the heat meter
        #: shows at its start (None: unknown, the meter shows the first minute's).
        self.heat_before_w = heat_before_w
        self.start = pd.Timestamp(inputs.index[0]).to_pydatetime()
        self.quarters = len(inputs.index)
        n_bat, n_pv = len(params.battery_ids), len(params.pv_ids)
        self.trace = Trace.empty(inputs.index, n_bat, n_pv, True)
        self._pv_avail = inputs.minute_pv_rows(params.pv_rated_w, PER_QUARTER)
        self._load = within_quarter(inputs.inp[:, k.I_LOAD], PER_QUARTER)
        self._demand = within_quarter(inputs.inp[:, k.I_DEMAND], PER_QUARTER)
        #: The store's standing loss of the current quarter hour [Wh], taken in its first minute.
        self._loss_wh = 0.0
        self._heat_min = params.heat.copy()
        self._heat_min[k.H_DT] = SUBSTEP_S / 3600.0
        self.soc = params.soc0_wh.copy()
        self.store = np.array([params.store0_wh])
        # Setpoints in force and when each device was last written [minute index].
        self.bat_set = np.zeros(n_bat)
        self.pv_limit_w = params.pv_rated_w.copy()
        self.hp_set_w: float | None = None
        self._bat_written = np.full(n_bat, -(10**9))
        self._pv_written = np.full(n_pv, -(10**9))
        self._hp_written = -(10**9)
        self._revert_min = max(1, int(site.poll.revert_s // SUBSTEP_S))
        self._bat_pos = {d: i for i, d in enumerate(params.battery_ids)}
        self._pv_pos = {d: j for j, d in enumerate(params.pv_ids)}
        # Last sub-step's readings.
        self.minute = 0
        self._bat_w = np.zeros(n_bat)
        self._pv_w = np.zeros(n_pv)
        self._grid_w: float | None = None
        self._out = np.zeros(k.N_OUT)
        self._inp = np.zeros(len(k.INPUT_COLUMNS))
        self._devices: dict[str, DeviceState] | None = None
        #: The minute whose heat demand the network's heat meter shows (-1: the one before
        #: the stretch).
        self._meter_minute = -1
        #: Seconds spent stepping the model.
        self.busy_s = 0.0
        self._takers = {
            DeviceKind.BATTERY: self._take_battery,
            DeviceKind.PV: self._take_pv,
            DeviceKind.HEAT_PUMP: self._take_heat_pump,
        }

    # -- time -------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The end of the last sub-step the plant has run."""
        return self.start + timedelta(seconds=SUBSTEP_S * self.minute)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=15 * self.quarters)

    def advance_to(self, when: datetime) -> None:
        """Run every whole sub-step that ends at or before ``when`` (none past the data)."""
        # The heat meter's minute: the one containing the instant just before ``when``, as
        # the simulated world of ``vpp run`` picks it (vpp.control.world).
        seconds = (when - self.start).total_seconds()
        meter = min(max(math.ceil(seconds / SUBSTEP_S) - 1, -1), len(self._demand) - 1)
        if meter != self._meter_minute:
            self._meter_minute, self._devices = meter, None
        target = int(seconds // SUBSTEP_S)
        target = min(target, self.quarters * PER_QUARTER)
        if target <= self.minute:
            return
        tic = time.perf_counter()
        while self.minute < target:
            self._substep(self.minute)
            self.minute += 1
        self._devices = None
        self.busy_s += time.perf_counter() - tic

    def _substep(self, m: int) -> None:
        q, part = divmod(m, PER_QUARTER)
        p, tr = self.params, self.trace
        self._revert(m)
        if part == 0:
            self._start_quarter(q)
        out = self._out
        inp = self._inp
        inp[:] = self.inputs.inp[q]
        inp[k.I_LOAD] = self._load[m]
        inp[k.I_DEMAND] = self._demand[m]
        hp = self.hp_set_w if self.hp_set_w is not None else k.heat_led_w(self._heat_min, inp)
        loss = self._loss_wh if part == 0 else 0.0
        k.heat_flows(self._heat_min, inp, float(hp), self.store, self.store[0] - loss, out)
        k.electric_step(
            p.bat, p.pv_rated_w, self._heat_min, self._pv_avail.row(m), inp, self.bat_set,
            self.pv_limit_w, self.soc, self._bat_w, self._pv_w, out,
        )  # fmt: skip
        share = 1.0 / PER_QUARTER
        tr.out[q, _ELECTRIC_MEANS] += share * out[_ELECTRIC_MEANS]
        tr.out[q, _HEAT_MEANS] += share * out[_HEAT_MEANS]
        tr.out[q, k.O_STORE] = self.store[0]
        tr.bat_w[q] += share * self._bat_w
        tr.bat_ch_w[q] += share * np.maximum(-self._bat_w, 0.0)
        tr.pv_w[q] += share * self._pv_w
        self._grid_w = float(out[k.O_GRID])
        if part == PER_QUARTER - 1:
            tr.bat_soc_wh[q] = self.soc
            tr.out[q, k.O_SOC] = float(self.soc.sum())

    def _start_quarter(self, q: int) -> None:
        """The quarter hour's means start at 0; its standing loss is fixed from the store's
        content now; the setpoints in force at its start are recorded."""
        tr, inp = self.trace, self.inputs.inp[q]
        hp = self.hp_set_w if self.hp_set_w is not None else k.heat_led_w(self.params.heat, inp)
        tr.out[q] = 0.0
        self._loss_wh = (1.0 - self.params.heat[k.H_KEEP]) * self.store[0]
        tr.setpoints[q] = np.concatenate([self.bat_set, self.pv_limit_w, [hp]])

    def _revert(self, m: int) -> None:
        """Devices whose setpoint was not renewed in time fall back to their own control."""
        lapsed = m - self._bat_written > self._revert_min
        self.bat_set[lapsed] = 0.0
        lapsed = m - self._pv_written > self._revert_min
        self.pv_limit_w[lapsed] = self.params.pv_rated_w[lapsed]
        if m - self._hp_written > self._revert_min:
            self.hp_set_w = None

    # -- the Plant protocol -------------------------------------------------------------------

    async def read(self) -> Snapshot:
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        """What a poll reads now (the readings change once a sub-step)."""
        if self._devices is None:
            self._devices = self._readings()
        return Snapshot(self.now, self._devices)

    def _readings(self) -> dict[str, DeviceState]:
        p, when = self.params, self.now
        health = CommsHealth(last_success=when, last_attempt=when)
        devices: dict[str, DeviceState] = {}

        def put(device_id: str, kind: DeviceKind, value: object) -> None:
            devices[device_id] = DeviceState(device_id, str(kind), value, health, when)  # type: ignore[arg-type]

        for i, bat_id in enumerate(p.battery_ids):
            cap = float(p.bat[i, k.B_CAP])
            put(bat_id, DeviceKind.BATTERY, BatteryReading(
                soc_pct=100.0 * float(self.soc[i]) / cap,
                power_w=float(self._bat_w[i]),
                capacity_wh=cap,
                max_charge_w=None,
                max_discharge_w=None,
                setpoint_w=float(self.bat_set[i]),
            ))  # fmt: skip
        for j, pv_id in enumerate(p.pv_ids):
            rated = float(p.pv_rated_w[j])
            put(pv_id, DeviceKind.PV, PvReading(
                ac_power_w=float(self._pv_w[j]),
                energy_wh=None,
                dc_power_w=None,
                status=None,
                rated_w=rated,
                limit_pct=100.0 * float(self.pv_limit_w[j]) / rated,
            ))  # fmt: skip
        q = min(self.minute // PER_QUARTER, self.quarters - 1)
        out = self._out if self.minute > 0 else None  # the last minute's flows
        metered = self.site.heat.network_meter
        if p.heat_pump_id is not None:
            put(p.heat_pump_id, DeviceKind.HEAT_PUMP, HeatPumpReading(
                el_power_w=float(out[k.O_HP_EL]) if out is not None else 0.0,
                el_setpoint_w=self.hp_set_w,
                th_power_w=float(out[k.O_HP_TH]) if out is not None else 0.0,
                source_temp_c=None,
                supply_temp_c=None,
                network_th_w=self._network_th_w() if metered else None,
            ))  # fmt: skip
        dc = self.site.datacentre
        if dc is not None:
            waste = float(self.inputs.inp[q, k.I_WASTE])
            put(dc.id, DeviceKind.DATACENTRE, DatacentreReading(
                it_power_w=waste / dc.heat_recovery_ratio if dc.heat_recovery_ratio else None,
                waste_heat_temp_c=None,
                flow_m3_per_h=None,
                waste_heat_w=waste,
            ))  # fmt: skip
        meter = self.site.grid.meter
        if meter is not None and self._grid_w is not None:
            put(meter, DeviceKind.METER, MeterReading(self._grid_w, None, None))
        return devices

    def _network_th_w(self) -> float:
        """The heat meter's reading [W]: the demand of the minute it shows."""
        if self._meter_minute < 0:
            return float(self._demand[0] if self.heat_before_w is None else self.heat_before_w)
        return float(self._demand[self._meter_minute])

    async def write(self, setpoints: Sequence[Setpoint]) -> list[Written]:
        return [self._write(sp) for sp in setpoints]

    def _write(self, sp: Setpoint) -> Written:
        take = self._takers.get(sp.kind)
        if take is None or not take(sp.device_id, float(sp.power_w)):
            return Written(sp.device_id, None, None, False, message="no such device in the plant")
        self._devices = None
        return Written(sp.device_id, float(sp.power_w), float(sp.power_w), True)

    def _take_battery(self, device_id: str, power_w: float) -> bool:
        i = self._bat_pos.get(device_id)
        if i is None:
            return False
        self.bat_set[i], self._bat_written[i] = power_w, self.minute
        return True

    def _take_pv(self, device_id: str, cap_w: float) -> bool:
        j = self._pv_pos.get(device_id)
        if j is None:
            return False
        self.pv_limit_w[j] = cap_w
        self._pv_written[j] = self.minute
        return True

    def _take_heat_pump(self, device_id: str, power_w: float) -> bool:
        if device_id != self.params.heat_pump_id:
            return False
        self.hp_set_w, self._hp_written = power_w, self.minute
        return True
