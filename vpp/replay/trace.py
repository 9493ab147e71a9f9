"""What one strategy did over a replayed day, step by step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vpp.replay import plant as k
from vpp.replay.layout import PlantInputs

F64 = NDArray[np.float64]

#: Plan columns kept beside what really happened, as ``planned_<name>``.
PLANNED_COLUMNS = (
    "grid_w",
    "battery_w",
    "pv_w",
    "heat_pump_el_w",
    "boiler_th_w",
    "store_wh",
    "battery_soc_wh",
    "load_w",
    "pv_available_w",
    "heat_demand_th_w",
    "co2_g_per_kwh",
)
#: Forecast quantities among :data:`PLANNED_COLUMNS` and the plant's output columns of what
#: really happened (the plan in force at a quarter hour was made just before it, so its
#: values are the forecasts for the quarter hour about to start).
FORECAST_QUANTITIES = {
    "load": ("load_w", "load_w"),
    "pv": ("pv_available_w", "pv_available_w"),
    "heat": ("heat_demand_th_w", "heat_demand_th_w"),
}
#: The quantiles of the learned forecasts kept per forecast quantity (P50 included: the
#: plan's value is the P50 of the plan in force).
BAND_QUANTILES = (0.1, 0.5, 0.9)
#: Columns of :attr:`Trace.bands`: each quantity of FORECAST_QUANTITIES, each quantile.
BAND_COLUMNS = tuple(
    f"{plan_col}_p{round(q * 100)}"
    for plan_col, _ in FORECAST_QUANTITIES.values()
    for q in BAND_QUANTILES
)


@dataclass
class Trace:
    """Flows of every step (``out``: steps x :data:`~vpp.replay.plant.OUTPUT_COLUMNS`) and
    per device (steps x devices): battery power [W, mean, > 0 discharge] and its charging
    part [W, >= 0; a battery corrected within the quarter hour may both discharge and charge
    in it, so its discharge is ``bat_w + bat_ch_w``], battery energy at the step's end [Wh],
    PV output [W]. ``planned`` holds the plan's values of :data:`PLANNED_COLUMNS` (NaN
    where no plan covered the step, and for rules); ``setpoints`` the setpoints sent
    (battery W, PV cap W, heat pump W) by strategies that follow plans (no columns for
    rules). ``stats`` counts plans, clamps, seconds; ``notes`` says why plans failed.
    ``bands``: the learned forecasts' quantiles for the quarter hour about to start
    (steps x :data:`BAND_COLUMNS`, NaN without them), or None."""

    index: pd.DatetimeIndex
    out: F64
    bat_w: F64
    bat_ch_w: F64
    bat_soc_wh: F64
    pv_w: F64
    planned: F64
    setpoints: F64
    stats: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bands: F64 | None = None

    def rows(self, rows: slice) -> Trace:
        """Some steps of the trace, copied (no stats, no notes)."""
        return Trace(
            index=self.index[rows],
            out=self.out[rows].copy(),
            bat_w=self.bat_w[rows].copy(),
            bat_ch_w=self.bat_ch_w[rows].copy(),
            bat_soc_wh=self.bat_soc_wh[rows].copy(),
            pv_w=self.pv_w[rows].copy(),
            planned=self.planned[rows].copy(),
            setpoints=self.setpoints[rows].copy(),
            bands=None if self.bands is None else self.bands[rows].copy(),
        )

    @classmethod
    def empty(cls, index: pd.DatetimeIndex, batteries: int, inverters: int, planned: bool) -> Trace:
        """Zeros to fill step by step; plan columns NaN, setpoints only if ``planned``."""
        n = len(index)
        sent = batteries + inverters + 1 if planned else 0
        return cls(
            index=index,
            out=np.zeros((n, k.N_OUT)),
            bat_w=np.zeros((n, batteries)),
            bat_ch_w=np.zeros((n, batteries)),
            bat_soc_wh=np.zeros((n, batteries)),
            pv_w=np.zeros((n, inverters)),
            planned=np.full((n, len(PLANNED_COLUMNS)), np.nan),
            setpoints=np.zeros((n, sent)),
        )

    @property
    def steps(self) -> int:
        return len(self.index)

    @property
    def bat_dis_w(self) -> F64:
        """Mean discharging power per step and battery [W, >= 0]."""
        discharge: F64 = self.bat_w + self.bat_ch_w
        return discharge

    def frame(self, inputs: PlantInputs) -> pd.DataFrame:
        """Site flows, prices and (if any) the plan's values, one row per step."""
        df = pd.DataFrame(self.out, index=self.index, columns=list(k.OUTPUT_COLUMNS))
        n = self.steps
        for name in (
            "price_import_eur_per_mwh",
            "price_export_eur_per_mwh",
            "co2_g_per_kwh",
            "heat_pump_cop",
        ):
            df[name] = inputs.inp[:n, k.INPUT_COLUMNS.index(name)]
        for i, name in enumerate(PLANNED_COLUMNS):
            df[f"planned_{name}"] = self.planned[:, i]
        df.index.name = "time"
        return df


def planned_values(row: pd.Series | None) -> F64:
    """The plan's :data:`PLANNED_COLUMNS` for one step (NaN without a plan)."""
    if row is None:
        return np.full(len(PLANNED_COLUMNS), np.nan)
    grid = float(row["grid_import_w"]) - float(row["grid_export_w"])
    rest = [float(row[c]) for c in PLANNED_COLUMNS[1:]]
    return np.array([grid, *rest])


def band_values(bands: pd.DataFrame | None, step: pd.Timestamp) -> F64:
    """The row of :data:`BAND_COLUMNS` at ``step`` of the site-unit bands (NaN without)."""
    out = np.full(len(BAND_COLUMNS), np.nan)
    if bands is None or step not in bands.index:
        return out
    at = int(bands.index.get_loc(step))  # type: ignore[arg-type]
    for i, name in enumerate(BAND_COLUMNS):
        if name in bands.columns:
            out[i] = float(bands[name].to_numpy()[at])
    return out
