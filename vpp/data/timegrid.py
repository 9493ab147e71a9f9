"""The quarter-hour grid and the moves between resolutions.

Every source is placed on one grid: the quarter hours of a *local* (Europe/Berlin) calendar
year, written as UTC interval starts. All the German sources (SMARD, ENTSO-E, BDEW, the DWD
TRY) count their years in local time, so the local year is the one that is complete in all
of them; in UTC it runs from 23:00 on 31 December of the year before to 23:00 on 31 December.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vpp.data.schema import INDEX_NAME, STEP

LOCAL_TZ = "Europe/Berlin"
HOUR = pd.Timedelta(hours=1)


def year_index(year: int, tz: str = LOCAL_TZ) -> pd.DatetimeIndex:
    """Quarter hours of the local calendar ``year`` as UTC interval starts (35,040 or 35,136)."""
    start = pd.Timestamp(year=year, month=1, day=1, tz=tz)
    end = pd.Timestamp(year=year + 1, month=1, day=1, tz=tz)
    index = pd.date_range(start, end, freq=STEP, inclusive="left", name=INDEX_NAME)
    return index.tz_convert("UTC")


def repeat_hourly(hourly: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """Hourly interval values onto quarter hours, each quarter taking its hour's value.

    Right for prices (one price per hour, as the market cleared it) and for hourly mean
    powers: the mean over the four quarters equals the hour's value, so energy is conserved
    exactly. Quarters whose hour is missing in ``hourly`` come back as NaN.

    Parameters
    ----------
    hourly : Series
        Values per hour, UTC index of interval starts on the full hour.
    index : DatetimeIndex
        Target UTC quarter hours.
    """
    hours = index.floor(HOUR)
    values = hourly.reindex(hours).to_numpy(dtype=float)
    return pd.Series(values, index=index, name=hourly.name)


def interpolate_instants(
    samples: pd.Series, index: pd.DatetimeIndex, period: pd.Timedelta | None = None
) -> pd.Series:
    """Linear interpolation of instantaneous readings (e.g. temperature) onto ``index``.

    Parameters
    ----------
    samples : Series
        Readings at the instants of their (UTC) index.
    index : DatetimeIndex
        Instants wanted (UTC).
    period : Timedelta, optional
        Wrap around with this period (a typical year repeats, so the last reading of
        December leads into the first of January). Without it, ends are held constant.
    """
    # Both in ns: asi8 counts in each index's own unit.
    x = index.as_unit("ns").asi8.astype(float)
    xp = pd.DatetimeIndex(samples.index).as_unit("ns").asi8.astype(float)
    fp = samples.to_numpy(dtype=float)
    wrap = None if period is None else float(period.value)
    values = np.interp(x, xp, fp, period=wrap)
    return pd.Series(values, index=index, name=samples.name)


def local_calendar(index: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> pd.DataFrame:
    """Local date, hour, minute, month, weekday (Mon=0) and day of year for each instant."""
    local = index.tz_convert(tz)
    return pd.DataFrame(
        {
            "date": local.normalize().tz_localize(None),
            "month": local.month,
            "weekday": local.day_of_week,
            "hour": local.hour,
            "minute": local.minute,
            "day_of_year": local.day_of_year,
        },
        index=index,
    )


def integral_wh(power_w: pd.Series) -> float:
    """Energy of a quarter-hourly mean-power series [Wh]."""
    return float(power_w.sum()) * STEP / HOUR
