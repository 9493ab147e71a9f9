"""Build one year of inputs in the schema from the public source files.

Everything lands on the quarter hours of the local calendar year (see
:mod:`vpp.data.timegrid`). Prices, PV and the generation mix come from the same real year;
the typical-year weather (DWD TRY) and the standard profiles are laid on that year's
calendar (weekdays and holidays of that year, DST as in that year).

Hourly -> quarter-hourly: prices are repeated per quarter hour (as the market cleared them);
hourly mean irradiance and PV power are repeated too, so each hour's energy is kept exactly;
temperature readings are interpolated linearly between hours. ENTSO-E generation, H25 and
the heat profile are computed on quarter hours directly.

Where ENTSO-E generation for the year is missing (it covers 2017-2019), PV comes from the
TRY weather through :func:`vpp.data.pv.pv_from_weather` and the CO2 column is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vpp.data.dwd import read_dwd_try
from vpp.data.entsoe import (
    co2_intensity,
    pv_per_kwp,
    read_emission_factors,
    read_entsoe_generation,
    read_entsoe_installed,
)
from vpp.data.heat import heat_profile, read_shlp
from vpp.data.profiles import (
    datacentre_it_load_ratio,
    household_load,
    read_bdew25,
    saxony_holidays,
)
from vpp.data.pv import pv_from_weather
from vpp.data.schema import (
    CSV_TIME_FORMAT,
    read_inputs,
    round_to_schema,
    validate_inputs,
    write_inputs,
)
from vpp.data.smard import read_smard_hourly
from vpp.data.timegrid import HOUR, interpolate_instants, repeat_hourly, year_index

#: Leipzig, as in config/demo.toml.
LEIPZIG = (51.34, 12.37)
DEFAULT_YEAR = 2018


@dataclass(frozen=True)
class SharedData:
    """Where each source file sits in the shared data folder."""

    root: Path

    def prices(self, year: int) -> Path:
        return self.root / "prices" / f"smard_dayahead_{year}_hourly.csv"

    def generation(self, year: int) -> Path:
        return self.root / "grid" / f"{year}_DE_gen_entsoe.parquet"

    def installed(self, year: int) -> Path:
        return self.root / "grid" / f"{year}_DE_installedGen_entsoe.parquet"

    @property
    def emission_factors(self) -> Path:
        return self.root / "grid" / "tranberg_specific_emission_factors.csv"

    @property
    def weather(self) -> Path:
        return self.root / "weather" / "dwd_try2010_region04_leipzig.dat"

    @property
    def load_dir(self) -> Path:
        return self.root / "load"


def build_inputs(
    shared: str | Path,
    year: int = DEFAULT_YEAR,
    *,
    latitude: float = LEIPZIG[0],
    longitude: float = LEIPZIG[1],
    waste_heat_temp_c: float = 35.0,
) -> pd.DataFrame:
    """All schema columns for the local calendar ``year``, validated and rounded.

    ``latitude``/``longitude`` [degrees] place the sun for PV from weather (only used when
    ENTSO-E data for the year is missing). ``frame.attrs["sources"]`` says where each
    column came from.
    """
    src = SharedData(Path(shared))
    index = year_index(year)
    holidays = set(saxony_holidays(year))
    weather = read_dwd_try(src.weather, year)
    temp = _temperature(weather, index)
    columns: dict[str, pd.Series] = {
        "price_eur_per_mwh": repeat_hourly(read_smard_hourly(src.prices(year)), index),
        "load_w_per_mwh_a": household_load(index, read_bdew25(src.load_dir / "h25.csv"), holidays),
        "heat_w_per_mwh_a": heat_profile(temp, read_shlp(src.load_dir), holidays),
        "outdoor_temp_c": temp,
        "ghi_w_per_m2": repeat_hourly(weather["ghi_w_per_m2"], index),
        "dhi_w_per_m2": repeat_hourly(weather["dhi_w_per_m2"], index),
        "it_load_ratio": datacentre_it_load_ratio(index, holidays),
        "waste_heat_temp_c": pd.Series(waste_heat_temp_c, index=index),
    }
    sources = dict(_STATIC_SOURCES)
    if src.generation(year).is_file():
        columns.update(_from_entsoe(src, year, index))
        sources.update(_ENTSOE_SOURCES)
    else:
        columns["pv_w_per_kwp"] = repeat_hourly(_pv_from_try(weather, latitude, longitude), index)
        sources["pv_w_per_kwp"] = "pvlib model on DWD TRY 2010 weather, 30 deg south"
    frame = validate_inputs(round_to_schema(pd.DataFrame(columns)), f"build {year}")
    frame.attrs["sources"] = sources
    return frame


def _temperature(weather: pd.DataFrame, index: pd.DatetimeIndex) -> pd.Series:
    """TRY readings (at the end of each hour) interpolated onto ``index``, wrapping the year."""
    readings = weather["temp_air_c"].set_axis(weather.index + HOUR)
    year_length = weather.index[-1] - weather.index[0] + HOUR
    return interpolate_instants(readings, index, period=year_length).rename("outdoor_temp_c")


def _pv_from_try(weather: pd.DataFrame, latitude: float, longitude: float) -> pd.Series:
    """Hourly PV per kWp [W/kWp] of a 30 deg south roof from the TRY hours."""
    mid_hour = _temperature(weather, pd.DatetimeIndex(weather.index) + HOUR / 2)
    return pv_from_weather(
        weather["ghi_w_per_m2"], weather["dhi_w_per_m2"], mid_hour,
        weather["wind_speed_m_per_s"], latitude=latitude, longitude=longitude,
    )  # fmt: skip


def _from_entsoe(src: SharedData, year: int, index: pd.DatetimeIndex) -> dict[str, pd.Series]:
    generation = read_entsoe_generation(src.generation(year)).reindex(index)
    if generation.isna().any().any():
        first = generation.index[generation.isna().any(axis=1)][0]
        raise ValueError(f"{src.generation(year)}: no generation for {first}")
    start_mw = float(read_entsoe_installed(src.installed(year))["Solar"])
    next_year = src.installed(year + 1)
    end_mw = float(read_entsoe_installed(next_year)["Solar"]) if next_year.is_file() else None
    factors = read_emission_factors(src.emission_factors)
    return {
        "pv_w_per_kwp": pv_per_kwp(generation["Solar"], start_mw, end_mw),
        "co2_g_per_kwh": co2_intensity(generation, factors),
    }


_STATIC_SOURCES = {
    "price_eur_per_mwh": "SMARD day-ahead, DE-LU (DE-AT-LU before 2018-10-01), repeated per 15 min",
    "load_w_per_mwh_a": "BDEW H25, dynamised, Saxony holidays",
    "heat_w_per_mwh_a": "BDEW SigLinDe MFH (class 2, not windy, hot water) on DWD TRY temperature",
    "outdoor_temp_c": "DWD TRY 2010 region 4, interpolated",
    "ghi_w_per_m2": "DWD TRY 2010 region 4, B + D, repeated per 15 min",
    "dhi_w_per_m2": "DWD TRY 2010 region 4, D, repeated per 15 min",
    "it_load_ratio": "synthetic diurnal/weekly shape",
    "waste_heat_temp_c": "constant",
}
_ENTSOE_SOURCES = {
    "pv_w_per_kwp": "ENTSO-E DE solar generation / installed solar capacity",
    "co2_g_per_kwh": "ENTSO-E DE generation mix x Tranberg et al. 2019 factors",
}


def build_and_write(shared: str | Path, year: int, out_dir: str | Path, **site: float) -> Path:
    """Build ``year`` and write ``<out_dir>/inputs_<year>.parquet``; return its path.

    ``site`` passes ``latitude``, ``longitude``, ``waste_heat_temp_c`` to :func:`build_inputs`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_inputs(build_inputs(shared, year, **site), out / f"inputs_{year}.parquet")


#: Windows of the test sample (UTC): the first week of 2018 in local time (New Year holiday,
#: negative night prices, still the DE-AT-LU zone) and 15-21 May 2018 (Whitsun, negative
#: midday prices; June to August 2018 had none).
SAMPLE_WINDOWS = (
    ("2017-12-31T23:00Z", "2018-01-07T23:00Z"),
    ("2018-05-14T22:00Z", "2018-05-21T22:00Z"),
)


def write_sample(year_file: str | Path, out: str | Path) -> Path:
    """Write the :data:`SAMPLE_WINDOWS` of a shipped year as one CSV (gap between them)."""
    parts = [read_inputs(year_file, start, end) for start, end in SAMPLE_WINDOWS]
    out = Path(out)
    pd.concat(parts).to_csv(out, date_format=CSV_TIME_FORMAT)
    return out
