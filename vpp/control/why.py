"""Why the plan does what it does, one short reason per quarter hour and per part of the plant.

Read from the plan table alone (pure; no solver needed): what is at a limit (import and
export caps, the heat pump's rating), what is curtailed, and the price spread the batteries
and the heat pump work against, e.g. "charging: 41 EUR/MWh now against 120 at 18:00",
"PV curtailed: held at the export cap 80 kW", "boiler on: heat pump at its rating".

The planning model is a mixed-integer programme (battery direction and heat-pump on/off are
binary), so the solver's duals are not defined at its optimum; the binding limits and the
prices are read from the plan's own values instead, which is also what the operator can check.

Powers in W, prices in EUR/MWh; times shown in the site's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vpp.core.site import Site

#: A power within this share of a limit (or of the largest value) counts as at the limit.
AT_LIMIT = 0.01
#: Powers below this are nothing, W.
NOISE_W = 500.0


@dataclass(frozen=True, slots=True)
class Why:
    """Reasons for one quarter hour, by part; None where that part just follows the load."""

    battery: str | None = None
    pv: str | None = None
    grid: str | None = None
    heat: str | None = None

    @property
    def text(self) -> str:
        parts = [p for p in (self.battery, self.pv, self.grid, self.heat) if p]
        return "; ".join(parts) if parts else "nothing to shift: load and PV meet at the grid"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "battery": self.battery,
            "pv": self.pv,
            "grid": self.grid,
            "heat": self.heat,
            "text": self.text,
        }


def _col(frame: pd.DataFrame, name: str) -> NDArray[np.float64]:
    if name not in frame.columns:
        return np.zeros(len(frame))
    values: NDArray[np.float64] = np.nan_to_num(frame[name].to_numpy(dtype=float))
    return values


def explain(frame: pd.DataFrame, site: Site) -> list[Why]:
    """One :class:`Why` per row of a plan table (:data:`optimizer.plan.SITE_COLUMNS`)."""
    n = len(frame)
    if n == 0:
        return []
    tz = ZoneInfo(site.site.timezone)
    times = [t.tz_convert(tz).strftime("%H:%M") for t in pd.DatetimeIndex(frame.index)]
    bat = _col(frame, "battery_w")
    p_imp = _col(frame, "price_import_eur_per_mwh")
    p_exp = _col(frame, "price_export_eur_per_mwh")
    pv, pv_avail = _col(frame, "pv_w"), _col(frame, "pv_available_w")
    imp, exp = _col(frame, "grid_import_w"), _col(frame, "grid_export_w")
    imp_cap, exp_cap = _col(frame, "import_cap_w"), _col(frame, "export_cap_w")
    hp_el, hp_th = _col(frame, "heat_pump_el_w"), _col(frame, "heat_pump_th_w")
    boiler, store = _col(frame, "boiler_th_w"), _col(frame, "store_th_w")
    waste = _col(frame, "waste_heat_th_w")
    hp_max = site.heat_pump.max_el_w if site.heat_pump is not None else 0.0
    heat = site.heat
    gas_heat = heat.gas_price_eur_per_mwh / heat.boiler_efficiency
    out = []
    for t in range(n):
        later = slice(t + 1, n)
        out.append(
            Why(
                battery=_battery(t, bat, p_imp, p_exp, exp, times, later),
                pv=_pv(t, pv, pv_avail, exp, exp_cap, p_exp),
                grid=_grid(t, imp, imp_cap, site.grid.import_limit_w),
                heat=_heat(t, hp_el, hp_th, hp_max, waste, boiler, store, p_imp, gas_heat),
            )
        )
    return out


def _near(value: float, limit: float) -> bool:
    return limit > 0 and value >= limit * (1 - AT_LIMIT) - NOISE_W / 10


def _battery(
    t: int,
    bat: NDArray[np.float64],
    p_imp: NDArray[np.float64],
    p_exp: NDArray[np.float64],
    exp: NDArray[np.float64],
    times: list[str],
    later: slice,
) -> str | None:
    if abs(bat[t]) < NOISE_W:
        return None
    idx = np.arange(len(bat))[later]
    if bat[t] < 0:  # charging: worth it against the dearest hour it discharges in later
        use = idx[bat[later] > NOISE_W]
        if exp[t] > NOISE_W:
            now = f"charging from PV surplus: export pays {p_exp[t]:.0f} EUR/MWh now"
        else:
            now = f"charging: {p_imp[t]:.0f} EUR/MWh now"
        if len(use):
            best = use[np.argmax(p_imp[use])]
            return f"{now} against {p_imp[best]:.0f} at {times[best]}"
        if len(idx):
            best = idx[np.argmax(p_imp[idx])]
            return f"{now}, up to {p_imp[best]:.0f} later ({times[best]})"
        return now
    # discharging: now is dearer than when it charged or will charge again
    fill = idx[bat[later] < -NOISE_W]
    now = f"discharging: {p_imp[t]:.0f} EUR/MWh now"
    if len(fill):
        cheap = fill[np.argmin(p_imp[fill])]
        return f"{now} against {p_imp[cheap]:.0f} at {times[cheap]}"
    return f"{now}, the stored energy is worth less by the end of the plan"


def _pv(
    t: int,
    pv: NDArray[np.float64],
    avail: NDArray[np.float64],
    exp: NDArray[np.float64],
    exp_cap: NDArray[np.float64],
    p_exp: NDArray[np.float64],
) -> str | None:
    cut = avail[t] - pv[t]
    if cut < NOISE_W:
        return None
    if _near(exp[t], exp_cap[t]):
        return (
            f"PV curtailed by {cut / 1e3:.0f} kW: held at the export cap {exp_cap[t] / 1e3:.0f} kW"
        )
    if p_exp[t] < 0:
        return f"PV curtailed by {cut / 1e3:.0f} kW: export price {p_exp[t]:.0f} EUR/MWh"
    return f"PV curtailed by {cut / 1e3:.0f} kW"


def _grid(
    t: int, imp: NDArray[np.float64], imp_cap: NDArray[np.float64], site_limit_w: float
) -> str | None:
    if imp[t] < NOISE_W or not _near(imp[t], imp_cap[t]):
        return None
    what = "operator or grid cap" if imp_cap[t] < site_limit_w * (1 - AT_LIMIT) else "limit"
    return f"import held at the {what} {imp_cap[t] / 1e3:.0f} kW"


def _heat(
    t: int,
    hp_el: NDArray[np.float64],
    hp_th: NDArray[np.float64],
    hp_max: float,
    waste: NDArray[np.float64],
    boiler: NDArray[np.float64],
    store: NDArray[np.float64],
    p_imp: NDArray[np.float64],
    gas_heat: float,
) -> str | None:
    cop = hp_th[t] / hp_el[t] if hp_el[t] > NOISE_W else None
    hp_heat = p_imp[t] / cop if cop else None
    if boiler[t] > NOISE_W:
        if hp_max and _near(hp_el[t], hp_max):
            return "boiler on: heat pump at its rating"
        if hp_el[t] > NOISE_W and _near(hp_th[t] - hp_el[t], waste[t]):
            return (
                f"boiler on: heat pump lifts all the waste heat offered ({waste[t] / 1e3:.0f} kW)"
            )
        if hp_heat is not None and hp_heat > gas_heat:
            return f"boiler on: heat from gas {gas_heat:.0f} EUR/MWh, heat pump {hp_heat:.0f}"
        if hp_heat is None:
            return f"boiler on: heat pump off (heat from gas {gas_heat:.0f} EUR/MWh)"
        return "boiler on: heat pump limited by its source"
    if hp_el[t] > NOISE_W and store[t] < -NOISE_W:
        return f"heat pump filling the store: heat at {hp_heat:.0f} EUR/MWh now"
    if store[t] > NOISE_W and hp_el[t] < NOISE_W:
        return f"store covers the heat: electricity {p_imp[t]:.0f} EUR/MWh"
    return None
