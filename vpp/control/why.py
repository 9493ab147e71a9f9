"""Why the plan does what it does, one short reason per quarter hour and per part of the plant.

Read from the plan table alone (pure; no solver needed): what is at a limit (import and
export caps, the heat pump's rating), what is curtailed, and the price spread the batteries
and the heat pump work against, e.g. "charging: 41 EUR/MWh now against 120 at 18:00",
"PV curtailed: held at the export cap 80 kW", "boiler on: heat pump at its rating".

Where the plan carries the shadow prices of its LP (:mod:`optimizer.duals`: the columns
:data:`optimizer.plan.DUAL_COLUMNS`; a mixed-integer plan gets them from a second solve with
its binaries fixed), the battery and grid reasons come from them: electricity is worth its
marginal value at the connection now (the export price when PV is exported, the import price
when importing, more when a cap binds), a cap binds where its shadow price is positive, and
stored energy has the value the batteries' balance gives it. A plan without them (the
rule-based fallback, a failed extra solve) is explained from its values and prices alone, as
the operator can check them.

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
#: A cap whose shadow price is below this binds in name only, EUR/MWh.
BINDING_EUR_PER_MWH = 0.5


@dataclass(frozen=True, slots=True)
class Why:
    """Reasons for one quarter hour, by part; None where that part just follows the load."""

    battery: str | None = None
    pv: str | None = None
    grid: str | None = None
    heat: str | None = None
    #: "duals" when the battery and grid reasons come from the solver's shadow prices,
    #: "plan" when they are read from the plan's values alone.
    source: str = "plan"

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
            "source": self.source,
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
    pv_cut = _col(frame, "pv_cap_cut_w")
    hp_max = site.heat_pump.max_el_w if site.heat_pump is not None else 0.0
    heat = site.heat
    gas_heat = heat.gas_price_eur_per_mwh / heat.boiler_efficiency
    duals = _duals(frame)
    out = []
    for t in range(n):
        heat_why = _heat(t, hp_el, hp_th, hp_max, waste, boiler, store, p_imp, gas_heat)
        if duals is not None and np.isfinite(duals.el[t]):
            out.append(
                Why(
                    battery=duals.battery(t, bat, times),
                    pv=duals.pv(t, pv, pv_avail, exp_cap) or _pv_capped(t, pv_cut, duals.el[t]),
                    grid=duals.grid(t, imp_cap, exp_cap, site),
                    heat=heat_why,
                    source="duals",
                )
            )
            continue
        out.append(
            Why(
                battery=_battery_by_price(t, bat, p_imp, p_exp, exp, times),
                pv=_curtailed(
                    t, pv, pv_avail, exp_cap, _near(exp[t], exp_cap[t]), p_exp[t], "export price"
                )
                or _pv_capped(t, pv_cut, None),
                grid=_grid(t, imp, imp_cap, site.grid.import_limit_w),
                heat=heat_why,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class _Duals:
    """The plan's shadow prices (:data:`optimizer.plan.DUAL_COLUMNS`), EUR/MWh per step."""

    el: NDArray[np.float64]
    stored: NDArray[np.float64]
    import_cap: NDArray[np.float64]
    export_cap: NDArray[np.float64]

    def battery(self, t: int, bat: NDArray[np.float64], times: list[str]) -> str | None:
        """Charging when stored energy is worth more than electricity now; discharging when
        less, each against the value of electricity where the batteries turn round."""
        if abs(bat[t]) < NOISE_W:
            return None
        worth = f"stored energy worth {self.stored[t]:.0f}"
        now = f"{'charging' if bat[t] < 0 else 'discharging'}: {self.el[t]:.0f} EUR/MWh now"
        return _battery(t, bat, self.el, times, now, f"{now}, {worth}", f" ({worth})")

    def pv(
        self,
        t: int,
        pv: NDArray[np.float64],
        avail: NDArray[np.float64],
        exp_cap: NDArray[np.float64],
    ) -> str | None:
        held = self.export_cap[t] >= BINDING_EUR_PER_MWH
        return _curtailed(t, pv, avail, exp_cap, held, self.el[t], "electricity worth")

    def grid(
        self,
        t: int,
        imp_cap: NDArray[np.float64],
        exp_cap: NDArray[np.float64],
        site: Site,
    ) -> str | None:
        if self.import_cap[t] >= BINDING_EUR_PER_MWH:
            what = _cap_kind(imp_cap[t], site.grid.import_limit_w)
            return (
                f"import held at the {what} {imp_cap[t] / 1e3:.0f} kW: "
                f"{self.import_cap[t]:.0f} EUR/MWh more import would save"
            )
        if self.export_cap[t] >= BINDING_EUR_PER_MWH:
            what = _cap_kind(exp_cap[t], site.grid.export_limit_w)
            return (
                f"export held at the {what} {exp_cap[t] / 1e3:.0f} kW: "
                f"{self.export_cap[t]:.0f} EUR/MWh more export would earn"
            )
        return None


def _pv_capped(t: int, cut: NDArray[np.float64], value: float | None) -> str | None:
    """PV held below what the sun gives by the devices' caps (grid-operator signals, the
    law's feed-in limit); with the duals, what the energy held back would be worth."""
    if cut[t] < NOISE_W:
        return None
    why = f"PV held at its signal caps: {cut[t] / 1e3:.0f} kW of sun unused"
    if value is not None and value >= BINDING_EUR_PER_MWH:
        return f"{why}, worth {value:.0f} EUR/MWh"
    return why


def _cap_kind(cap_w: float, site_limit_w: float) -> str:
    return "operator or grid cap" if cap_w < site_limit_w * (1 - AT_LIMIT) else "limit"


def _duals(frame: pd.DataFrame) -> _Duals | None:
    names = (
        "value_el_eur_per_mwh",
        "value_stored_eur_per_mwh",
        "import_cap_value_eur_per_mwh",
        "export_cap_value_eur_per_mwh",
    )
    if any(name not in frame.columns for name in names):
        return None
    el, stored, imp, exp = (frame[name].to_numpy(dtype=float) for name in names)
    return _Duals(el, stored, np.nan_to_num(imp), np.nan_to_num(exp))


def _near(value: float, limit: float) -> bool:
    return limit > 0 and value >= limit * (1 - AT_LIMIT) - NOISE_W / 10


def _battery(
    t: int,
    bat: NDArray[np.float64],
    value: NDArray[np.float64],
    times: list[str],
    now: str,
    otherwise: str,
    tail: str = "",
) -> str:
    """The batteries' reason at step ``t``: what they do now (``now``) against the later step
    where they turn round, the dearest step they discharge in when charging now, the cheapest
    they charge in when discharging now, by ``value`` (EUR/MWh per step: the import price, or
    the value of electricity from the duals); ``otherwise`` when they do not turn round
    within the plan. ``tail`` ends the reason that names a step."""
    idx = np.arange(t + 1, len(bat))
    if bat[t] < 0:
        use = idx[bat[t + 1 :] > NOISE_W]
        turn = use[np.argmax(value[use])] if len(use) else None
    else:
        fill = idx[bat[t + 1 :] < -NOISE_W]
        turn = fill[np.argmin(value[fill])] if len(fill) else None
    if turn is None:
        return otherwise
    return f"{now} against {value[turn]:.0f} at {times[turn]}{tail}"


def _battery_by_price(
    t: int,
    bat: NDArray[np.float64],
    p_imp: NDArray[np.float64],
    p_exp: NDArray[np.float64],
    exp: NDArray[np.float64],
    times: list[str],
) -> str | None:
    """The batteries' reason from the plan's prices alone (no duals)."""
    if abs(bat[t]) < NOISE_W:
        return None
    if bat[t] >= 0:  # discharging: now is dearer than when it charged or will charge again
        now = f"discharging: {p_imp[t]:.0f} EUR/MWh now"
        return _battery(
            t, bat, p_imp, times, now,
            f"{now}, the stored energy is worth less by the end of the plan",
        )  # fmt: skip
    if exp[t] > NOISE_W:
        now = f"charging from PV surplus: export pays {p_exp[t]:.0f} EUR/MWh now"
    else:
        now = f"charging: {p_imp[t]:.0f} EUR/MWh now"
    otherwise = now
    if t + 1 < len(bat):
        best = t + 1 + int(np.argmax(p_imp[t + 1 :]))
        otherwise = f"{now}, up to {p_imp[best]:.0f} later ({times[best]})"
    return _battery(t, bat, p_imp, times, now, otherwise)


def _curtailed(
    t: int,
    pv: NDArray[np.float64],
    avail: NDArray[np.float64],
    exp_cap: NDArray[np.float64],
    held: bool,
    price: float,
    priced: str,
) -> str | None:
    """PV below what is available: held at the export cap (``held``), or a negative
    ``price`` (EUR/MWh, named ``priced``: the export price, or the duals' value)."""
    cut = avail[t] - pv[t]
    if cut < NOISE_W:
        return None
    head = f"PV curtailed by {cut / 1e3:.0f} kW"
    if held:
        return f"{head}: held at the export cap {exp_cap[t] / 1e3:.0f} kW"
    if price < 0:
        return f"{head}: {priced} {price:.0f} EUR/MWh"
    return head


def _grid(
    t: int, imp: NDArray[np.float64], imp_cap: NDArray[np.float64], site_limit_w: float
) -> str | None:
    if imp[t] < NOISE_W or not _near(imp[t], imp_cap[t]):
        return None
    return f"import held at the {_cap_kind(imp_cap[t], site_limit_w)} {imp_cap[t] / 1e3:.0f} kW"


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
    cop = hp_th[t] / hp_el[t] if hp_el[t] > NOISE_W and hp_th[t] > NOISE_W else None
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
        if hp_heat is None:
            return "heat pump filling the store"
        return f"heat pump filling the store: heat at {hp_heat:.0f} EUR/MWh now"
    if store[t] > NOISE_W and hp_el[t] < NOISE_W:
        return f"store covers the heat: electricity {p_imp[t]:.0f} EUR/MWh"
    return None
