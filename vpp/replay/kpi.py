"""Key figures of a replayed day per strategy, their totals and the comparisons between them.

Money is counted as the optimiser counts it (:func:`optimizer.cost.cost_parts`), but on what
really happened: ``cost_eur = import - export revenue + gas + CO2 + battery wear``, import at
the day-ahead price plus fees, export at the price less fees, gas per MWh of boiler fuel, CO2
of grid imports (at the real intensity) and of gas, at the site's CO2 price.

The headline figures need no value of stored energy: ``bound_cost_eur`` is what the true
lower bound (:mod:`vpp.replay.bound`, perfect foresight over the whole chain of days) paid on
the day when ending the chain where the strategy ended it, ``regret_eur = cost_eur -
bound_cost_eur``, and ``share_vs_<reference>_pct = 100 * (1 - regret / regret of the
reference)`` is the share of the bound's savings over no control or self-consumption that the
strategy achieved (:func:`shares`; exact over whole chains, see docs/replay-bound.md).
``bound_gap_eur`` (on a chain's last day) is how far the solver's optimum lies above the
bound's dual certificate. The plant, and so the bound, has no grid limit; the controller keeps
to the site's: its ``grid_limits_eur`` is what the bound gains on the day by going past them
(the bound held to them, at the controller's end, less the bound), the part of its regret no
operation that keeps to the limits can win back.

As secondary figures, kept from earlier reports: strategies end a day with different amounts
of energy stored. ``storage_value_eur`` values the
change over the day as the optimiser values energy left at a horizon's end
(:func:`optimizer.data.set_terminal_values`, on the day's true prices): battery energy at the
``terminal_price_quantile`` of the import cost times the round-trip efficiency, store energy at
that quantile of the cheapest heat (boiler, or heat pump at import cost / COP). In a chain of
days the energy a day starts with is valued at the previous day's prices
(:class:`StoragePrices`), so the values of a chain's days add up to what is stored at its end
(at the last day's prices) minus what was stored at its start. Comparisons use
``adjusted_cost_eur = cost_eur - storage_value_eur``; ``savings_eur`` is no control's adjusted
cost minus the strategy's, and ``capture_pct`` the share of the oracle's savings a strategy
achieved.

With a planning horizon of exactly 24 h the oracle's single plan ends with the day, so its
terminal value is this storage value and it optimises the very figure it is measured by; the
demo's 36 h plan reaches past the day. ``--forecast perfect`` runs the controller itself on
perfect forecasts (re-planning every quarter hour): set against the oracle it separates what
forecast errors cost from what re-planning on a moving horizon costs.

Energy figures: ``self_consumption_pct = 100 * (1 - export / PV generation)``,
``autarky_pct = 100 * (1 - import / consumption)`` with consumption = base load + heat pump +
dry coolers; ``battery_cycles`` = energy discharged (AC) / total battery capacity;
``peak_import_kw`` = highest quarter-hour mean import.

Forecast errors, of the plan in force for the quarter hour about to start, per quantity
(base load, PV available, heat demand): sums of absolute errors and of the pinball loss
averaged over P10, P50, P90 (``mean_q max(q (y - f_q), (q - 1)(y - f_q))``; a point forecast
counts as all three), as MWh, so MAE and mean pinball [W] are ``sum * 1e6 / (steps * dt_h)``;
and the steps where the truth fell inside P10..P90 out of those with learned quantiles
(``forecast_band_steps``; 80 % if the bands are calibrated).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.params import OptimizerParams
from vpp.core.site import Site
from vpp.replay import plant as k
from vpp.replay.layout import F64, PlantInputs, PlantParams
from vpp.replay.trace import BAND_QUANTILES, FORECAST_QUANTITIES, PLANNED_COLUMNS, Trace

#: Columns that add up over days (totals are sums); the rest are derived from them.
ADDITIVE = (
    "cost_eur",
    "adjusted_cost_eur",
    "storage_value_eur",
    "import_cost_eur",
    "export_revenue_eur",
    "gas_cost_eur",
    "co2_cost_eur",
    "wear_cost_eur",
    "grid_import_mwh",
    "grid_export_mwh",
    "consumption_mwh",
    "pv_generation_mwh",
    "pv_curtailed_mwh",
    "co2_t",
    "waste_heat_used_mwh",
    "waste_heat_mwh",
    "heat_pump_heat_mwh",
    "boiler_heat_mwh",
    "unmet_heat_mwh",
    "battery_discharged_mwh",
    "battery_cycles",
    "plans",
    "fallback_plans",
    "failed_plans",
    "unplanned_steps",
    "clamped_setpoints",
    "grid_limit_steps",
    "steps",
    "bound_cost_eur",
    "regret_eur",
    "bound_gap_eur",
    "grid_limits_eur",
    "forecast_steps",
    "load_forecast_abs_error_mwh",
    "pv_forecast_abs_error_mwh",
    "heat_forecast_abs_error_mwh",
    "load_forecast_pinball_mwh",
    "pv_forecast_pinball_mwh",
    "heat_forecast_pinball_mwh",
    "forecast_band_steps",
    "load_forecast_covered_steps",
    "pv_forecast_covered_steps",
    "heat_forecast_covered_steps",
    "co2_forecast_abs_error_gkwh",
    "co2_forecast_error_gkwh",
    "co2_actual_gkwh",
)
#: References the shares of the bound's savings are measured against.
SHARE_REFERENCES = ("no_control", "self_consumption")
#: Column order of the KPI table.
COLUMNS = (
    "day",
    "strategy",
    "cost_eur",
    "regret_eur",
    "share_vs_no_control_pct",
    "share_vs_self_consumption_pct",
    "adjusted_cost_eur",
    "savings_eur",
    "capture_pct",
    "grid_import_mwh",
    "grid_export_mwh",
    "peak_import_kw",
    "self_consumption_pct",
    "autarky_pct",
    "co2_t",
    "waste_heat_used_mwh",
    "boiler_heat_mwh",
    "battery_cycles",
    *[
        c
        for c in ADDITIVE
        if c
        not in (
            "cost_eur",
            "regret_eur",
            "adjusted_cost_eur",
            "grid_import_mwh",
            "grid_export_mwh",
            "co2_t",
            "waste_heat_used_mwh",
            "boiler_heat_mwh",
            "battery_cycles",
        )
    ],
)


def _mwh(power_w: np.ndarray, dt_h: float) -> float:
    return float(np.sum(power_w)) * dt_h / 1e6


def strategy_kpis(
    trace: Trace,
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    opening: StoragePrices | None = None,
) -> dict[str, float]:
    """The additive figures of one strategy's day (see the module docstring)."""
    n, dt, o = trace.steps, params.dt_h, trace.out
    inp = inputs.inp[:n]
    imp, exp = np.maximum(o[:, k.O_GRID], 0.0), np.maximum(-o[:, k.O_GRID], 0.0)
    gas_mwh = _mwh(o[:, k.O_BOILER], dt) / site.heat.boiler_efficiency
    co2_t = (
        float(np.sum(inp[:, k.I_CO2] * imp)) * dt / 1e9
        + site.economics.gas_co2_kg_per_mwh * gas_mwh / 1e3
    )
    wear = float(np.sum(trace.bat_dis_w * params.bat[:, k.B_WEAR])) * dt / 1e6
    figures = {
        "import_cost_eur": float(np.sum(inp[:, k.I_PRICE_IMP] * imp)) * dt / 1e6,
        "export_revenue_eur": float(np.sum(inp[:, k.I_PRICE_EXP] * exp)) * dt / 1e6,
        "gas_cost_eur": site.heat.gas_price_eur_per_mwh * gas_mwh,
        "co2_cost_eur": site.economics.co2_price_eur_per_t * co2_t,
        "wear_cost_eur": wear,
        "grid_import_mwh": _mwh(imp, dt),
        "grid_export_mwh": _mwh(exp, dt),
        "consumption_mwh": _mwh(o[:, k.O_LOAD] + o[:, k.O_HP_EL] + o[:, k.O_DRY_EL], dt),
        "pv_generation_mwh": _mwh(o[:, k.O_PV], dt),
        "pv_curtailed_mwh": _mwh(o[:, k.O_PV_AVAIL] - o[:, k.O_PV], dt),
        "co2_t": co2_t,
        "waste_heat_used_mwh": _mwh(o[:, k.O_SOURCE], dt),
        "waste_heat_mwh": _mwh(o[:, k.O_WASTE], dt),
        "heat_pump_heat_mwh": _mwh(o[:, k.O_HP_TH], dt),
        "boiler_heat_mwh": _mwh(o[:, k.O_BOILER], dt),
        "unmet_heat_mwh": _mwh(o[:, k.O_UNMET], dt),
        "battery_discharged_mwh": _mwh(o[:, k.O_BAT_DIS], dt),
        "peak_import_kw": float(imp.max(initial=0.0)) / 1e3,
        "grid_limit_steps": float(
            np.sum(
                (imp > site.grid.import_limit_w + 1e-6) | (exp > site.grid.export_limit_w + 1e-6)
            )
        ),
        "steps": float(n),
    }
    capacity = float(params.bat[:, k.B_CAP].sum())
    figures["battery_cycles"] = (
        figures["battery_discharged_mwh"] * 1e6 / capacity if capacity > 0 else 0.0
    )
    figures["cost_eur"] = (
        figures["import_cost_eur"]
        - figures["export_revenue_eur"]
        + figures["gas_cost_eur"]
        + figures["co2_cost_eur"]
        + wear
    )
    figures["storage_value_eur"] = storage_value_eur(trace, site, params, inputs, opening)
    figures["adjusted_cost_eur"] = figures["cost_eur"] - figures["storage_value_eur"]
    for name in ("plans", "fallback_plans", "failed_plans", "unplanned_steps", "clamped_setpoints"):
        figures[name] = float(trace.stats.get(name, 0.0))
    figures.update(forecast_errors(trace, dt))
    figures.update(co2_forecast_errors(trace, inp[:, k.I_CO2]))
    return figures


def forecast_errors(trace: Trace, dt_h: float) -> dict[str, float]:
    """Sums of absolute errors [MWh] of the forecasts in the plans in force (for the quarter
    hour about to start) per quantity, and the number of planned steps: MAE [W] =
    ``error_mwh * 1e6 / (forecast_steps * dt_h)``. Zero for strategies without plans."""
    planned = np.isfinite(trace.planned[:, 0])
    out = {"forecast_steps": float(planned.sum())}
    bands = trace.bands
    with_bands = np.zeros(trace.steps, dtype=bool)
    if bands is not None:
        with_bands = planned & np.isfinite(bands).all(axis=1)
    out["forecast_band_steps"] = float(with_bands.sum())
    for i, (quantity, (plan_col, out_col)) in enumerate(FORECAST_QUANTITIES.items()):
        forecast = trace.planned[planned, PLANNED_COLUMNS.index(plan_col)]
        actual = trace.out[planned, k.OUTPUT_COLUMNS.index(out_col)]
        out[f"{quantity}_forecast_abs_error_mwh"] = _mwh(np.abs(forecast - actual), dt_h)
        # Without quantiles the plan's value stands for all three (a point forecast).
        quantiles = np.repeat(forecast[:, None], len(BAND_QUANTILES), axis=1)
        if bands is not None:
            mine = bands[planned, i * len(BAND_QUANTILES) : (i + 1) * len(BAND_QUANTILES)]
            has = with_bands[planned]
            quantiles[has] = mine[has]
            low, high = mine[has, 0], mine[has, -1]
            inside = (actual[has] >= low) & (actual[has] <= high)
            out[f"{quantity}_forecast_covered_steps"] = float(inside.sum())
        else:
            out[f"{quantity}_forecast_covered_steps"] = 0.0
        loss = pinball(actual, quantiles, BAND_QUANTILES).mean(axis=1)
        out[f"{quantity}_forecast_pinball_mwh"] = _mwh(loss, dt_h)
    return out


def co2_forecast_errors(trace: Trace, actual: np.ndarray) -> dict[str, float]:
    """The grid's CO2 intensity forecast in the plans in force (for the quarter hour about to
    start) against what it was, summed over the planned steps [g/kWh]: absolute errors,
    errors (forecast minus truth) and the truth itself, so that MAE, bias and the mean
    intensity are each ``sum / forecast_steps``. Zero for strategies without plans."""
    planned = np.isfinite(trace.planned[:, 0])
    forecast = trace.planned[planned, PLANNED_COLUMNS.index("co2_g_per_kwh")]
    truth = actual[planned]
    known = np.isfinite(forecast)
    error = forecast[known] - truth[known]
    return {
        "co2_forecast_abs_error_gkwh": float(np.abs(error).sum()),
        "co2_forecast_error_gkwh": float(error.sum()),
        "co2_actual_gkwh": float(truth.sum()),
    }


def forecast_summary(
    figures: Mapping[str, float], dt_h: float = 0.25
) -> dict[str, dict[str, float]]:
    """Per forecast quantity, from summed KPIs (:func:`forecast_errors`): ``mae_w``,
    ``pinball_w`` (mean over steps and the three quantiles) and ``coverage_pct`` (truth
    inside P10..P90; NaN without learned quantiles)."""
    steps = float(figures.get("forecast_steps", 0.0))
    banded = float(figures.get("forecast_band_steps", 0.0))
    out = {}
    for quantity in FORECAST_QUANTITIES:
        per_w = 1e6 / (steps * dt_h) if steps else math.nan
        covered = float(figures.get(f"{quantity}_forecast_covered_steps", 0.0))
        out[quantity] = {
            "mae_w": float(figures.get(f"{quantity}_forecast_abs_error_mwh", math.nan)) * per_w,
            "pinball_w": float(figures.get(f"{quantity}_forecast_pinball_mwh", math.nan)) * per_w,
            "coverage_pct": 100.0 * covered / banded if banded else math.nan,
        }
    # The CO2 intensity [g/kWh]; NaN where the inputs carry none (all zero).
    actual = float(figures.get("co2_actual_gkwh", 0.0))
    has = steps > 0 and actual > 0
    out["co2"] = {
        "mae_gkwh": float(figures.get("co2_forecast_abs_error_gkwh", 0.0)) / steps
        if has
        else math.nan,
        "bias_gkwh": float(figures.get("co2_forecast_error_gkwh", 0.0)) / steps
        if has
        else math.nan,
        "mean_gkwh": actual / steps if has else math.nan,
    }
    return out


def pinball(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Pinball (quantile) loss per step and level [unit of ``actual``]:
    ``max(q * (y - f_q), (q - 1) * (y - f_q))``; ``quantiles`` is steps x levels."""
    q = np.asarray(levels, dtype=float)[None, :]
    diff = actual[:, None] - quantiles
    loss: np.ndarray = np.maximum(q * diff, (q - 1.0) * diff)
    return loss


@dataclass(frozen=True)
class StoragePrices:
    """What a Wh stored is worth on a day: per battery (after the round trip) and in the store
    [EUR/Wh] (see the module docstring)."""

    battery_eur_per_wh: F64
    store_eur_per_wh: float

    def value_eur(self, soc_wh: F64, store_wh: float) -> float:
        """The value of batteries at ``soc_wh`` [Wh] and the store at ``store_wh`` [Wh]."""
        return float(np.sum(soc_wh * self.battery_eur_per_wh)) + store_wh * self.store_eur_per_wh


def storage_prices(
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    opt: OptimizerParams | None = None,
    steps: int | None = None,
) -> StoragePrices:
    """The day's storage prices, from its true prices (its first ``steps`` if given)."""
    q = (opt or OptimizerParams()).terminal_price_quantile
    inp = inputs.inp[:steps]
    co2_price = site.economics.co2_price_eur_per_t
    import_cost = inp[:, k.I_PRICE_IMP] + co2_price * inp[:, k.I_CO2] / 1e3
    price = max(0.0, float(np.quantile(import_cost, q)))
    per_wh = price * params.bat[:, k.B_ETA_C] * params.bat[:, k.B_ETA_D] / 1e6
    h = site.heat
    gas = h.gas_price_eur_per_mwh + co2_price * site.economics.gas_co2_kg_per_mwh / 1e3
    boiler = gas / h.boiler_efficiency if h.boiler_max_th_w > 0 else np.inf
    cop = inp[:, k.I_COP]
    runs = (cop > 0) & (params.heat[k.H_HP_MAX] > 0)
    hp = np.where(runs, import_cost / np.where(runs, cop, 1.0), np.inf)
    cheapest = np.minimum(boiler, hp)
    finite = cheapest[np.isfinite(cheapest)]
    heat_price = max(0.0, float(np.quantile(finite, q))) if finite.size else 0.0
    return StoragePrices(np.asarray(per_wh, dtype=float), heat_price / 1e6)


def storage_value_eur(
    trace: Trace,
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    opening: StoragePrices | None = None,
) -> float:
    """Value of the energy stored at the end of the day minus at its start, EUR.

    The end is valued at the day's prices, the start at ``opening`` (the previous day's
    prices when days are chained, so that the values over a chain add up to its last day's
    closing value minus its first day's opening value); default: the day's prices.
    """
    today = storage_prices(site, params, inputs, steps=trace.steps)
    start = opening or today
    end_soc = trace.bat_soc_wh[-1] if trace.bat_soc_wh.size else params.soc0_wh
    return today.value_eur(end_soc, float(trace.out[-1, k.O_STORE])) - start.value_eur(
        params.soc0_wh, params.store0_wh
    )


def derived(row: Mapping[str, float]) -> dict[str, float]:
    """Ratios of a row of additive figures: self-consumption and autarky [%]."""
    pv, cons = row["pv_generation_mwh"], row["consumption_mwh"]
    return {
        "self_consumption_pct": 100.0 * (1.0 - row["grid_export_mwh"] / pv) if pv > 0 else math.nan,
        "autarky_pct": 100.0 * (1.0 - row["grid_import_mwh"] / cons) if cons > 0 else math.nan,
    }


def compare(
    rows: dict[str, dict[str, float]], reference: str = "no_control", best: str = "oracle"
) -> None:
    """Add ``savings_eur`` and ``capture_pct`` to each strategy's row, in place."""
    base = rows[reference]["adjusted_cost_eur"]
    possible = base - rows[best]["adjusted_cost_eur"] if best in rows else math.nan
    for row in rows.values():
        row["savings_eur"] = base - row["adjusted_cost_eur"]
        row["capture_pct"] = (
            100.0 * row["savings_eur"] / possible if abs(possible) > 1e-6 else math.nan
        )


def shares(rows: dict[str, dict[str, float]]) -> None:
    """Add ``share_vs_<reference>_pct`` to each row, in place: the share of the bound's
    savings over the reference that the strategy achieved, ``100 * (1 - regret /
    regret_reference)`` (see the module docstring); NaN without a bound or where the bound
    saves nothing over the reference."""
    for ref in SHARE_REFERENCES:
        possible = rows[ref].get("regret_eur", math.nan) if ref in rows else math.nan
        for row in rows.values():
            regret = row.get("regret_eur", math.nan)
            row[f"share_vs_{ref}_pct"] = (
                100.0 * (1.0 - regret / possible)
                if math.isfinite(possible) and possible > 1e-6
                else math.nan
            )


def totals(table: pd.DataFrame, label: str = "total") -> pd.DataFrame:
    """One row per strategy, ``day`` = ``label``: sums of the additive figures, ratios from
    the sums, and savings and capture against no control and the oracle."""
    rows: dict[str, dict[str, float]] = {}
    for strategy, group in table.groupby("strategy", sort=False):
        row = {c: float(group[c].sum(min_count=1)) for c in ADDITIVE}
        row["peak_import_kw"] = float(group["peak_import_kw"].max())
        row.update(derived(row))
        rows[str(strategy)] = row
    if "no_control" in rows:
        compare(rows)
    shares(rows)
    out = pd.DataFrame([{"day": label, "strategy": s, **r} for s, r in rows.items()])
    return out.reindex(columns=list(COLUMNS))


def monthly(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`totals` per calendar month of the day rows of a KPI table (``day`` =
    ``YYYY-MM``)."""
    days = table[table["day"] != "total"]
    months = days["day"].astype(str).str[:7]
    parts = [totals(group, str(month)) for month, group in days.groupby(months, sort=True)]
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(parts, ignore_index=True)


def day_table(days: Iterable[tuple[str, dict[str, dict[str, float]]]]) -> pd.DataFrame:
    """The KPI table: one row per day and strategy, then the totals."""
    records = [{"day": day, "strategy": s, **row} for day, rows in days for s, row in rows.items()]
    table = pd.DataFrame(records).reindex(columns=list(COLUMNS))
    return pd.concat([table, totals(table)], ignore_index=True)
