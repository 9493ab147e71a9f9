"""From a site and a raw input table to the arrays the plant simulator works on.

The truth of a replayed day is the raw input file scaled to the site by the optimiser's own
:func:`optimizer.inputs.forecast_from_raw` (so "what really happened" and "what was
forecast" are the same quantities): PV available per inverter is the site-wide profile per
kWp times the inverter's ``peak_wp``, clipped at its AC rating; waste heat is IT power times
the data centre's recovery ratio; the COP is the optimiser's curve
(:func:`optimizer.carnot.cop_series`) at the real waste-heat temperature, so a plan made
from a perfect forecast is executed as planned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from optimizer.carnot import cop_series
from optimizer.inputs import State
from optimizer.params import OptimizerParams
from vpp.control.world import truth_frame
from vpp.core.site import Site
from vpp.data.clouds import MINUTES_PER_QUARTER, CloudParams, pv_minutes
from vpp.data.minutes import within_quarter
from vpp.data.schema import STEP_H
from vpp.replay import plant as k

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class PlantParams:
    """What the plant is made of, as arrays for the kernels (see :mod:`vpp.replay.plant`)."""

    bat: F64
    pv_rated_w: F64
    heat: F64
    battery_ids: tuple[str, ...]
    pv_ids: tuple[str, ...]
    heat_pump_id: str | None
    #: Battery energy [Wh] and store energy [Wh] at the start of every replayed day.
    soc0_wh: F64
    store0_wh: float

    @property
    def dt_h(self) -> float:
        return float(self.heat[k.H_DT])


@dataclass(frozen=True)
class PlantInputs:
    """What really happened in each step of a day: ``inp`` (steps, :data:`INPUT_COLUMNS`)
    and PV available per inverter (steps, inverters) [W]."""

    index: pd.DatetimeIndex
    inp: F64
    pv_avail_w: F64
    #: PV output per kWp installed [W/kWp] and each inverter's DC peak [W], from which
    #: ``pv_avail_w`` is made (the replay plant interpolates the profile inside the quarter).
    pv_w_per_kwp: F64 = field(default_factory=lambda: np.zeros(0))
    pv_peak_w: F64 = field(default_factory=lambda: np.zeros(0))
    #: Available power of each inverter in each minute [W] (steps * 15, inverters), when the
    #: PV comes from the minute cloud process (:func:`vpp.data.clouds.pv_minutes`); then
    #: ``pv_avail_w`` holds its quarter-hour means. None: the plant interpolates the profile.
    pv_minute_w: F64 | None = None

    def minute_pv_w(self, rated_w: F64, per: int) -> F64:
        """Available power of each inverter in each of ``per`` sub-steps of a quarter hour
        [W], (steps * per, inverters): the minute process, or the quarter-hour profile
        interpolated (each quarter keeping its mean), scaled to each inverter and clipped
        at its rating. The plant runs on it and the bound reads it."""
        if self.pv_minute_w is not None:
            if per * len(self.index) != self.pv_minute_w.shape[0]:
                raise ValueError(f"the minute PV has no values for {per} sub-steps a quarter")
            return self.pv_minute_w
        profile = within_quarter(self.pv_w_per_kwp, per)
        return np.clip(np.outer(profile, self.pv_peak_w / 1000.0), 0.0, rated_w[None, :])

    def minute_pv_rows(self, rated_w: F64, per: int) -> MinutePv:
        """What :meth:`minute_pv_w` returns, one sub-step at a time: the minute process's
        rows as they are, or each row of the interpolated profile made when asked (the
        same values, bit for bit), so that a plant of thousands of inverters does not hold
        a (steps * per, inverters) table it reads one row of per sub-step."""
        if self.pv_minute_w is not None:
            return MinutePv(self.minute_pv_w(rated_w, per), None, None, rated_w)
        profile = within_quarter(self.pv_w_per_kwp, per)
        return MinutePv(None, profile, self.pv_peak_w / 1000.0, rated_w)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.inp, index=self.index, columns=list(k.INPUT_COLUMNS))


class MinutePv:
    """Available power of each inverter in sub-step ``m`` [W] (:meth:`row`): a row of a
    stored (sub-steps, inverters) ``table``, or else ``profile[m]`` times each inverter's
    ``kwp``, clipped at its rating, written into one reused row."""

    def __init__(
        self, table: F64 | None, profile: F64 | None, kwp: F64 | None, rated_w: F64
    ) -> None:
        self.table = table
        self.profile = np.zeros(0) if profile is None else profile
        self.kwp = np.zeros(0) if kwp is None else kwp
        self.rated_w = rated_w
        self._row = np.empty(len(rated_w))

    def __len__(self) -> int:
        return len(self.table) if self.table is not None else len(self.profile)

    def row(self, m: int) -> F64:
        """Sub-step ``m``'s row; the row of a made profile is valid until the next call."""
        if self.table is not None:
            stored: F64 = self.table[m]
            return stored
        np.multiply(self.profile[m], self.kwp, out=self._row)
        np.clip(self._row, 0.0, self.rated_w, out=self._row)
        return self._row


def plant_params(site: Site, state: State | None = None) -> PlantParams:
    """The site's batteries, inverters and heat system; start energies from ``state``
    (default: the site file's initial SoCs and store level)."""
    start = state or State.from_site(site)
    bats = site.batteries
    bat = np.array(
        [
            [
                b.capacity_wh,
                b.capacity_wh * b.soc_min_pct / 100,
                b.capacity_wh * b.soc_max_pct / 100,
                b.max_charge_w,
                b.max_discharge_w,
                b.charge_efficiency,
                b.discharge_efficiency,
                b.wear_cost_eur_per_mwh,
            ]
            for b in bats
        ],
        dtype=float,
    ).reshape(len(bats), k.N_BAT_PARAMS)
    h = site.heat
    hp, dc = site.heat_pump, site.datacentre
    hp_max = hp.max_el_w if hp is not None and dc is not None else 0.0
    hp_min = hp.max_el_w * hp.min_part_load_pct / 100 if hp is not None else 0.0
    heat = np.array(
        [
            STEP_H,
            h.store_capacity_wh,
            (1 - h.store_loss_pct_per_h / 100) ** STEP_H,
            h.store_max_charge_th_w,
            h.store_max_discharge_th_w,
            h.boiler_max_th_w,
            hp_max,
            hp_min,
            dc.dry_cooler_el_per_th if dc is not None else 0.0,
        ]
    )
    soc0 = np.array(
        [start.battery_soc_wh.get(b.id, b.capacity_wh * b.soc_initial_pct / 100) for b in bats],
        dtype=float,
    )
    store0 = (
        start.store_wh
        if start.store_wh is not None
        else h.store_capacity_wh * h.store_initial_pct / 100
    )
    return PlantParams(
        bat=bat,
        pv_rated_w=np.array([p.rated_w for p in site.pv], dtype=float),
        heat=heat,
        battery_ids=tuple(b.id for b in bats),
        pv_ids=tuple(p.id for p in site.pv),
        heat_pump_id=hp.id if hp is not None else None,
        soc0_wh=soc0,
        store0_wh=float(store0),
    )


def plant_inputs(
    site: Site,
    raw: pd.DataFrame,
    params: OptimizerParams | None = None,
    clouds: CloudParams | None = None,
) -> PlantInputs:
    """Per step of ``raw``'s index: load, heat demand, waste heat, COP, prices, CO2, PV.

    With ``clouds``, each inverter's PV comes from the minute cloud process and its roof
    (:func:`vpp.data.clouds.pv_minutes`) and its quarter-hour values are those minutes'
    means; without, every inverter follows the regional profile."""
    fc = truth_frame(site, raw)
    steps = len(fc)
    hp, dc = site.heat_pump, site.datacentre
    waste = (
        fc["it_power_w"].to_numpy(float) * dc.heat_recovery_ratio
        if dc is not None
        else np.zeros(steps)
    )
    cop = np.zeros(steps)
    if hp is not None and dc is not None:
        cop = cop_series(
            hp,
            site.heat.supply_temp_c,
            fc["waste_heat_temp_c"].to_numpy(float),
            params or OptimizerParams(),
        )
    columns = {
        "load_w": fc["load_w"].to_numpy(float),
        "heat_demand_th_w": fc["heat_demand_th_w"].to_numpy(float),
        "waste_heat_th_w": waste,
        "heat_pump_cop": cop,
        "price_import_eur_per_mwh": fc["price_import_eur_per_mwh"].to_numpy(float),
        "price_export_eur_per_mwh": fc["price_export_eur_per_mwh"].to_numpy(float),
        "co2_g_per_kwh": fc["co2_g_per_kwh"].to_numpy(float),
    }
    inp = np.ascontiguousarray(np.column_stack([columns[c] for c in k.INPUT_COLUMNS]))
    peak = np.array([p.dc_peak_w for p in site.pv], dtype=float)
    rated = np.array([p.rated_w for p in site.pv], dtype=float)
    profile = fc["pv_w_per_kwp"].to_numpy(float)
    index = pd.DatetimeIndex(fc.index)
    minute = None
    if clouds is not None and len(site.pv):
        loc = site.site
        minute = pv_minutes(site.pv, index, profile, loc.latitude_deg, loc.longitude_deg, clouds)
        avail = minute.reshape(steps, MINUTES_PER_QUARTER, -1).mean(axis=1)
    else:
        avail = np.clip(np.outer(profile, peak / 1000.0), 0.0, rated[None, :])
    return PlantInputs(
        index=index,
        inp=inp,
        pv_avail_w=np.ascontiguousarray(avail),
        pv_w_per_kwp=profile,
        pv_peak_w=peak,
        pv_minute_w=minute,
    )
