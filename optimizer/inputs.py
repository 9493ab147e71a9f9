"""What the optimiser is given: the forecast table's schema, the state at the start, and the
conversion from the project's raw yearly data to a forecast for one site.

The forecast is a pandas DataFrame on a timezone-aware UTC index of step starts (quarter
hours). Its columns are defined as data in :data:`FORECAST_COLUMNS`, units in the names. PV comes
as one site-wide profile per kWp, scaled by each inverter's ``peak_wp`` and clipped at its AC
rating; a column ``<device_id>.pv_w`` overrides the profile for one inverter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vpp.core.site import Site

#: Suffix of a per-inverter PV override column: ``<device_id>.pv_w``, W AC available.
PV_OVERRIDE_SUFFIX = ".pv_w"
#: Suffix of a per-device cap column: ``<device_id>.cap_w``, W, on a PV inverter's output, a
#: battery's charging or a heat pump's electric power (grid-operator signals); NaN = no cap.
DEVICE_CAP_SUFFIX = ".cap_w"


class ForecastError(ValueError):
    """A forecast table the optimiser cannot use; the message names the column or the time."""


@dataclass(frozen=True)
class ForecastColumn:
    """One column of the forecast table."""

    name: str
    unit: str
    required: bool
    description: str
    #: Values below this are clipped (with a warning); None = no lower bound.
    lower: float | None = 0.0


FORECAST_COLUMNS: tuple[ForecastColumn, ...] = (
    ForecastColumn(
        "pv_w_per_kwp",
        "W/kWp",
        True,
        "site-wide PV output per kWp installed; scaled by each inverter's peak_wp",
    ),
    ForecastColumn("load_w", "W", True, "site electric base load (homes, street lights)"),
    ForecastColumn("heat_demand_th_w", "W thermal", True, "heat demand of the network"),
    ForecastColumn(
        "it_power_w", "W", False, "data centre IT power; default: the data centre's it_power_w"
    ),
    ForecastColumn(
        "waste_heat_temp_c",
        "degC",
        False,
        "waste-heat temperature; default: the data centre's waste_heat_temp_c",
        lower=None,
    ),
    ForecastColumn(
        "outdoor_temp_c",
        "degC",
        False,
        "outdoor air temperature (carried for reports, not used by the model)",
        lower=None,
    ),
    ForecastColumn(
        "price_import_eur_per_mwh",
        "EUR/MWh",
        True,
        "price of imported energy, all fees included",
        lower=None,
    ),
    ForecastColumn(
        "price_export_eur_per_mwh",
        "EUR/MWh",
        True,
        "price paid for exported energy, fees deducted",
        lower=None,
    ),
    ForecastColumn(
        "co2_g_per_kwh",
        "g/kWh",
        False,
        "CO2 intensity of grid imports; missing = 0 (imports' CO2 not priced)",
    ),
    ForecastColumn(
        "import_limit_w", "W", False, "operator cap on import; NaN = the site's grid.import_limit_w"
    ),
    ForecastColumn(
        "export_limit_w", "W", False, "operator cap on export; NaN = the site's grid.export_limit_w"
    ),
)

#: Columns of the raw input schema (``vpp.data.schema``) that a forecast cannot do without.
RAW_REQUIRED: tuple[str, ...] = (
    "price_eur_per_mwh",
    "pv_w_per_kwp",
    "load_w_per_mwh_a",
    "heat_w_per_mwh_a",
)


@dataclass(frozen=True)
class State:
    """The plant at the start of the plan. Missing entries fall back to the site file."""

    #: Stored energy of each battery, Wh, by device id.
    battery_soc_wh: Mapping[str, float] = field(default_factory=dict)
    #: Energy in the thermal store, Wh thermal; None = the site's ``store_initial_pct``.
    store_wh: float | None = None
    #: Ids of devices that do not answer: they are left out of the plan.
    offline: frozenset[str] = frozenset()
    #: Heat the store should hold at the plan's end, in tiers ``(energy Wh thermal, chance
    #: it is needed)`` in the order the store fills: the forecast demand after the horizon
    #: that the heat pump cannot meet, for several of its quantiles
    #: (:func:`optimizer.reserve.reserve_tiers`). The plan values each tier's energy at that
    #: chance of the boiler's heat it saves (:func:`optimizer.data.set_store_floor`);
    #: ``((R, 1.0),)`` is a reserve ``R`` that is needed for certain. Empty: none.
    store_reserve: tuple[tuple[float, float], ...] = ()
    #: The heat forecast's level error, a share of the forecast heat per step
    #: (:func:`vpp.forecast.heat_level_error`): the store keeps a reserve against it where
    #: the heat pump could not catch up (:func:`optimizer.data.set_heat_risk`). 0 = none.
    heat_level_error: float = 0.0

    @classmethod
    def from_site(cls, site: Site) -> State:
        """The state the site file describes: initial SoCs, store level, all devices online."""
        socs = {b.id: b.capacity_wh * b.soc_initial_pct / 100.0 for b in site.batteries}
        return cls(
            battery_soc_wh=socs,
            store_wh=site.heat.store_capacity_wh * site.heat.store_initial_pct / 100.0,
        )


def forecast_from_raw(site: Site, raw: pd.DataFrame) -> pd.DataFrame:
    """Scale the raw inputs (per-MWh-a profiles, day-ahead price) to one site's forecast.

    - ``load_w = load_w_per_mwh_a * grid.base_load_annual_wh / 1e6``
    - ``heat_demand_th_w = heat_w_per_mwh_a * heat.annual_demand_wh / 1e6``
    - ``it_power_w = it_load_ratio * datacentre.it_power_w`` (0 without a data centre)
    - ``price_import_eur_per_mwh = price_eur_per_mwh + grid.import_fee_eur_per_mwh``
    - ``price_export_eur_per_mwh = price_eur_per_mwh - grid.export_fee_eur_per_mwh``
    - ``pv_w_per_kwp``, ``co2_g_per_kwh``, ``outdoor_temp_c``, ``waste_heat_temp_c`` pass through.

    Optional raw columns that are missing stay missing, and :func:`prepare_forecast` applies
    the forecast schema's defaults (nominal IT power, the site's waste-heat temperature, no
    CO2 price on imports).
    """
    missing = [c for c in RAW_REQUIRED if c not in raw.columns]
    if missing:
        raise ForecastError(f"raw inputs lack column(s): {', '.join(missing)}")
    return scale_raw(site, raw)


def scale_raw(site: Site, raw: pd.DataFrame) -> pd.DataFrame:
    """The raw columns ``raw`` has, scaled to the site as :func:`forecast_from_raw` says
    (in its column order); nothing is required (e.g. the heat side alone, for the store's
    reserve)."""
    dc = site.datacentre
    out: dict[str, pd.Series] = {}
    if "pv_w_per_kwp" in raw.columns:
        out["pv_w_per_kwp"] = raw["pv_w_per_kwp"].astype(float)
    if "load_w_per_mwh_a" in raw.columns:
        out["load_w"] = raw["load_w_per_mwh_a"] * site.grid.base_load_annual_wh / 1e6
    if "heat_w_per_mwh_a" in raw.columns:
        out["heat_demand_th_w"] = raw["heat_w_per_mwh_a"] * site.heat.annual_demand_wh / 1e6
    if "price_eur_per_mwh" in raw.columns:
        price = raw["price_eur_per_mwh"].astype(float)
        out["price_import_eur_per_mwh"] = price + site.grid.import_fee_eur_per_mwh
        out["price_export_eur_per_mwh"] = price - site.grid.export_fee_eur_per_mwh
    if "it_load_ratio" in raw.columns:
        out["it_power_w"] = raw["it_load_ratio"] * (dc.it_power_w if dc is not None else 0.0)
    for name in ("waste_heat_temp_c", "outdoor_temp_c", "co2_g_per_kwh"):
        if name in raw.columns:
            out[name] = raw[name].astype(float)
    return pd.DataFrame(out, index=raw.index)


def plan_index(start: pd.Timestamp, steps: int, step_min: int) -> pd.DatetimeIndex:
    """Step starts of a plan: ``steps`` steps of ``step_min`` minutes from ``start`` (UTC)."""
    return pd.date_range(start, periods=steps, freq=f"{step_min}min", tz="UTC", name="timestamp")


def plan_start(now: pd.Timestamp | object, step_min: int) -> pd.Timestamp:
    """The step containing ``now``, as a UTC timestamp; naive times are taken as UTC."""
    ts = pd.Timestamp(now)  # type: ignore[arg-type]
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor(f"{step_min}min")


def prepare_forecast(
    site: Site, forecast: pd.DataFrame, index: pd.DatetimeIndex
) -> tuple[pd.DataFrame, list[str]]:
    """Bring a forecast onto the plan's steps, fill defaults and repair what can be repaired.

    Returns the table (one row per step of ``index``) and warnings for every repair: gaps
    interpolated, a horizon beyond the forecast's end held at the last value, negative powers
    clipped, export prices above import prices lowered (simultaneous import and export would
    otherwise earn money in the model). Raises :class:`ForecastError` when a required column is
    missing or entirely empty, or the forecast does not overlap the plan at all.
    """
    warnings: list[str] = []
    df = _utc_sorted(forecast, warnings)
    missing = [c.name for c in FORECAST_COLUMNS if c.required and c.name not in df.columns]
    if missing:
        raise ForecastError(f"forecast lacks required column(s): {', '.join(missing)}")
    wanted = [c.name for c in FORECAST_COLUMNS if c.name in df.columns]
    wanted += _override_columns(site, df, warnings)
    df = _on_grid(df[wanted].astype(float), index, warnings)
    _fill_defaults(site, df, warnings)
    _repair_gaps(df, warnings)
    _clip_lower(df, warnings)
    over = df["price_export_eur_per_mwh"] > df["price_import_eur_per_mwh"]
    if over.any():
        warnings.append(
            f"export price above import price in {int(over.sum())} step(s): "
            "lowered to the import price"
        )
        df.loc[over, "price_export_eur_per_mwh"] = df.loc[over, "price_import_eur_per_mwh"]
    return df, warnings


def _utc_sorted(forecast: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    if not isinstance(forecast.index, pd.DatetimeIndex):
        raise ForecastError("forecast index must be a DatetimeIndex of step starts (UTC)")
    df = forecast
    if pd.DatetimeIndex(df.index).tz is None:
        warnings.append("forecast index has no time zone: taken as UTC")
        df = df.tz_localize("UTC")
    else:
        df = df.tz_convert("UTC")
    df = df[~df.index.duplicated(keep="last")].sort_index()
    return df


def _override_columns(site: Site, df: pd.DataFrame, warnings: list[str]) -> list[str]:
    pv_ids = {d.id for d in site.pv}
    cols = [c for c in df.columns if isinstance(c, str) and c.endswith(PV_OVERRIDE_SUFFIX)]
    unknown = [c for c in cols if c.removesuffix(PV_OVERRIDE_SUFFIX) not in pv_ids]
    if unknown:
        warnings.append(f"ignored PV columns of unknown inverters: {', '.join(unknown[:5])}")
    capped = {d.id for d in (*site.pv, *site.batteries)}
    if site.heat_pump is not None:
        capped.add(site.heat_pump.id)
    caps = [c for c in df.columns if isinstance(c, str) and c.endswith(DEVICE_CAP_SUFFIX)]
    bad_caps = [c for c in caps if c.removesuffix(DEVICE_CAP_SUFFIX) not in capped]
    if bad_caps:
        warnings.append(f"ignored cap columns of unknown devices: {', '.join(bad_caps[:5])}")
    return [c for c in cols if c not in unknown] + [c for c in caps if c not in bad_caps]


def _on_grid(df: pd.DataFrame, index: pd.DatetimeIndex, warnings: list[str]) -> pd.DataFrame:
    step = pd.Timedelta(index[1] - index[0]) if len(index) > 1 else pd.Timedelta(minutes=15)
    data_step = pd.Timedelta(df.index[1] - df.index[0]) if len(df) > 1 else step
    if data_step < step:  # finer data: mean over each step
        df = df.resample(step).mean()
    elif data_step > step:  # coarser data (hourly prices): each value holds over its interval
        fine = pd.date_range(df.index[0], df.index[-1] + data_step - step, freq=step)
        df = df.reindex(fine, method="ffill")
    if df.empty or df.index[-1] < index[0] or df.index[0] > index[-1]:
        raise ForecastError(
            f"forecast {_span(df)} does not cover the plan's start {index[0].isoformat()}"
        )
    # Each step takes the row at or before it (gaps inside the data stay NaN for repair).
    out = df.reindex(index, method="ffill")
    if df.index[-1] < index[-1]:
        held = int((index > df.index[-1]).sum())
        warnings.append(
            f"forecast ends {df.index[-1].isoformat()}: last values held for {held} step(s)"
        )
    if df.index[0] > index[0]:
        early = int((index < df.index[0]).sum())
        warnings.append(
            f"forecast starts {df.index[0].isoformat()}: first values used for {early} step(s)"
        )
        out = out.bfill()
    return out


def _span(df: pd.DataFrame) -> str:
    if df.empty:
        return "(empty)"
    return f"{df.index[0].isoformat()}..{df.index[-1].isoformat()}"


def _fill_defaults(site: Site, df: pd.DataFrame, warnings: list[str]) -> None:
    """Optional columns that are absent or empty get the schema's default."""
    dc = site.datacentre
    defaults = {
        "it_power_w": dc.it_power_w if dc is not None else 0.0,
        "waste_heat_temp_c": dc.waste_heat_temp_c if dc is not None else np.nan,
        "co2_g_per_kwh": 0.0,
        "outdoor_temp_c": np.nan,
        "import_limit_w": np.nan,
        "export_limit_w": np.nan,
    }
    for name, value in defaults.items():
        if name not in df.columns or df[name].isna().all():
            df[name] = value
            if name == "co2_g_per_kwh":
                warnings.append("no grid CO2 intensity in the forecast: imports' CO2 not priced")


def _repair_gaps(df: pd.DataFrame, warnings: list[str]) -> None:
    optional_nan = {"outdoor_temp_c", "import_limit_w", "export_limit_w"}
    for name in df.columns:
        if name in optional_nan or name.endswith(DEVICE_CAP_SUFFIX):
            continue
        col = df[name]
        gaps = int(col.isna().sum())
        if gaps == 0:
            continue
        if gaps == len(col):
            if name == "waste_heat_temp_c":  # no data centre: nothing to lift
                continue
            raise ForecastError(f"forecast column {name!r} has no values in the plan's horizon")
        warnings.append(f"forecast column {name!r}: {gaps} missing value(s) interpolated")
        df[name] = col.interpolate(limit_direction="both")


def _clip_lower(df: pd.DataFrame, warnings: list[str]) -> None:
    lower = {c.name: c.lower for c in FORECAST_COLUMNS}
    for name in df.columns:
        lo = lower.get(name, 0.0)  # override columns are powers
        if lo is None:
            continue
        below = df[name] < lo
        if below.any():
            warnings.append(
                f"forecast column {name!r}: {int(below.sum())} value(s) below {lo:g} clipped"
            )
            df.loc[below, name] = lo
