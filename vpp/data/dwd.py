"""DWD test reference year (TRY 2010, region 4; station Potsdam) as shipped with demandlib.

The ``.dat`` file has a German header ending in a ``***`` line, then one fixed-width row per
hour of a typical (non-leap) year: region, site flag, month, day, hour ``HH`` 1..24 in CET
(MEZ, UTC+1 all year, no summer time), cloud cover, wind direction and speed, temperature,
pressure, humidity, weather code, direct (B) and diffuse (D) horizontal irradiance, ...

Timing, as the DWD documents it for TRY 2010 and as a clear-sky fit of the irradiance
confirms: irradiance is the mean over the hour *ending* at ``HH``; temperature and wind are
readings at ``HH``. The typical year is laid on a calendar year month by month and day by
day; in a leap year 29 February repeats 28 February.
"""

from __future__ import annotations

import calendar
from io import StringIO
from pathlib import Path

import pandas as pd

from vpp.data.schema import INDEX_NAME

_FIELDS = ["region", "site", "month", "day", "hour", "cloud_octa", "wind_dir_deg",
           "wind_speed_m_per_s", "temp_air_c", "pressure_hpa", "mixing_ratio_g_per_kg",
           "rel_humidity_pct", "weather_code", "bhi_w_per_m2", "dhi_w_per_m2"]  # fmt: skip
#: CET is UTC+1 all year.
_CET_OFFSET = pd.Timedelta(hours=1)
_HOUR = pd.Timedelta(hours=1)


def parse_dwd_try(text: str) -> pd.DataFrame:
    """The hourly rows of a TRY 2010 ``.dat`` text, columns as named in ``_FIELDS``."""
    _, sep, body = text.partition("***\n")
    if not sep:
        raise ValueError("not a DWD TRY file: no '***' line before the data")
    df = pd.read_csv(StringIO(body), sep=r"\s+", header=None, usecols=range(len(_FIELDS)))
    df.columns = pd.Index(_FIELDS)
    return df


def read_dwd_try(path: str | Path, year: int) -> pd.DataFrame:
    """TRY hourly weather placed on calendar ``year``.

    Returns
    -------
    DataFrame
        Index ``time``: UTC start of each hour. Columns ``ghi_w_per_m2``, ``dhi_w_per_m2``,
        ``bhi_w_per_m2`` (means over the hour [W/m^2]); ``temp_air_c`` [degC] and
        ``wind_speed_m_per_s`` [m/s] (10 m), readings at the *end* of the hour.
    """
    raw = parse_dwd_try(Path(path).read_text(encoding="utf-8", errors="replace"))
    if len(raw) != 8760:
        raise ValueError(f"{path}: {len(raw)} hourly rows, expected 8760")
    raw = _to_calendar(raw, year)
    day = pd.to_datetime({"year": year, "month": raw["month"], "day": raw["day"]})
    end_cet = day + pd.to_timedelta(raw["hour"], unit="h")
    start_utc = pd.DatetimeIndex(end_cet - _HOUR - _CET_OFFSET).tz_localize("UTC")
    out = pd.DataFrame(
        {
            "ghi_w_per_m2": (raw["bhi_w_per_m2"] + raw["dhi_w_per_m2"]).to_numpy(dtype=float),
            "dhi_w_per_m2": raw["dhi_w_per_m2"].to_numpy(dtype=float),
            "bhi_w_per_m2": raw["bhi_w_per_m2"].to_numpy(dtype=float),
            "temp_air_c": raw["temp_air_c"].to_numpy(dtype=float),
            "wind_speed_m_per_s": raw["wind_speed_m_per_s"].to_numpy(dtype=float),
        },
        index=start_utc.rename(INDEX_NAME),
    )
    return out


def _to_calendar(raw: pd.DataFrame, year: int) -> pd.DataFrame:
    if not calendar.isleap(year):
        return raw
    feb28 = raw[(raw["month"] == 2) & (raw["day"] == 28)].assign(day=29)
    cut = int(feb28.index[-1]) + 1
    return pd.concat([raw.iloc[:cut], feb28, raw.iloc[cut:]], ignore_index=True)
