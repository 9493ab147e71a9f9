"""Standard load profiles on the quarter-hour grid: BDEW H25 household load, holidays, and
the synthetic data-centre IT load.

H25 (BDEW, 2025 set, as shipped with demandlib, MIT): a table of 96 quarter-hour values for
each month and day type (``WT`` working day, ``SA`` Saturday, ``FT`` Sunday/holiday) in kWh
per quarter hour for 1,000,000 kWh a year, in local wall-clock time. BDEW prescribes for H25
the dynamisation polynomial of the day of year (the same as for H0):
``F(t) = -3.92e-10 t^4 + 3.2e-7 t^3 - 7.02e-5 t^2 + 2.1e-3 t + 1.24``. Public holidays count
as Sundays; 24 and 31 December as Saturdays (BDEW's rule for the standard load profiles).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from vpp.data.timegrid import LOCAL_TZ, local_calendar

_MONTHS = {"Januar": 1, "Februar": 2, "März": 3, "April": 4, "Mai": 5, "Juni": 6, "Juli": 7,
           "August": 8, "September": 9, "Oktober": 10, "November": 11, "Dezember": 12}  # fmt: skip
#: kWh per quarter hour for 1e6 kWh/a -> mean W per MWh/a: x kWh/15 min / 1000 (MWh/a) * 4/h.
_KWH_PER_QH_TO_W_PER_MWH_A = 4.0


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    lw = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * lw) // 451
    month, day = divmod(h + lw - 7 * m + 114, 31)
    return date(year, month, day + 1)


def saxony_holidays(year: int) -> dict[date, str]:
    """Public holidays in Saxony (Leipzig): the nationwide ones plus Reformation Day and
    Repentance Day (the Wednesday before 23 November)."""
    easter = easter_sunday(year)
    nov22 = date(year, 11, 22)
    repentance = nov22 - timedelta(days=(nov22.weekday() - 2) % 7)
    days = {
        date(year, 1, 1): "Neujahr",
        easter - timedelta(days=2): "Karfreitag",
        easter + timedelta(days=1): "Ostermontag",
        date(year, 5, 1): "Tag der Arbeit",
        easter + timedelta(days=39): "Christi Himmelfahrt",
        easter + timedelta(days=50): "Pfingstmontag",
        date(year, 10, 3): "Tag der Deutschen Einheit",
        date(year, 10, 31): "Reformationstag",
        repentance: "Buß- und Bettag",
        date(year, 12, 25): "1. Weihnachtstag",
        date(year, 12, 26): "2. Weihnachtstag",
    }
    return dict(sorted(days.items()))


def saxony_holidays_in(years: Iterable[int]) -> set[date]:
    """The public holidays in Saxony of each of ``years`` (:func:`saxony_holidays`)."""
    return {d for year in set(years) for d in saxony_holidays(int(year))}


def slp_day_types(dates: pd.Series, holidays: set[date]) -> np.ndarray:
    """BDEW day type per local date: ``FT`` Sunday or holiday, ``SA`` Saturday or 24/31
    December, ``WT`` otherwise."""
    stamps = pd.DatetimeIndex(dates)
    is_holiday = np.isin(stamps.date, np.array(sorted(holidays), dtype=object))
    christmas_eve_or_nye = (stamps.month == 12) & np.isin(stamps.day, [24, 31])
    types = np.full(len(stamps), "WT", dtype=object)
    types[(stamps.day_of_week == 5) | christmas_eve_or_nye] = "SA"
    types[(stamps.day_of_week == 6) | is_holiday] = "FT"
    return types


def read_bdew25(path: str | Path) -> pd.DataFrame:
    """A BDEW 2025 profile table (``h25.csv`` ...) as mean power [W per MWh/a].

    Returns a frame with 96 rows (quarter hour of the local day, 0..95) and columns
    ``(month, day_type)``.
    """
    raw = pd.read_csv(path, header=[0, 1], index_col=0)
    months = [_MONTHS[str(m)] for m in raw.columns.get_level_values(0)]
    columns = pd.MultiIndex.from_arrays(
        [months, raw.columns.get_level_values(1)], names=["month", "day_type"]
    )
    table = pd.DataFrame(raw.to_numpy(dtype=float) * _KWH_PER_QH_TO_W_PER_MWH_A, columns=columns)
    if len(table) != 96:
        raise ValueError(f"{path}: {len(table)} quarter-hour rows, expected 96")
    return table


def bdew_dynamisation(day_of_year: np.ndarray) -> np.ndarray:
    """BDEW dynamisation factor for day of year ``t`` (1 = 1 January) [1]."""
    t = np.asarray(day_of_year, dtype=float)
    return -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24


def household_load(
    index: pd.DatetimeIndex, table: pd.DataFrame, holidays: set[date], tz: str = LOCAL_TZ
) -> pd.Series:
    """Dynamised BDEW household profile on a UTC quarter-hour index [W per MWh/a].

    Each quarter hour takes the value of its local wall-clock quarter hour, month and day
    type, so on the day summer time ends the hour 02:00-03:00 appears twice and on the day
    it starts it is skipped, as the profile is applied in German metering.
    """
    cal = local_calendar(index, tz)
    day_types = slp_day_types(cal["date"], holidays)
    slot = (cal["hour"] * 4 + cal["minute"] // 15).to_numpy()
    keys = pd.MultiIndex.from_arrays([cal["month"].to_numpy(), day_types])
    col = table.columns.get_indexer(keys)
    if (col < 0).any():
        raise KeyError("profile table lacks a (month, day type) column")
    values = table.to_numpy()[slot, col] * bdew_dynamisation(cal["day_of_year"].to_numpy())
    return pd.Series(values, index=index, name="load_w_per_mwh_a")


def datacentre_it_load_ratio(
    index: pd.DatetimeIndex, holidays: set[date], tz: str = LOCAL_TZ
) -> pd.Series:
    """Synthetic IT power of a municipal data centre as a share of nominal [1].

    No measured series is public, so this is a plain assumed shape: a 0.70 base (servers,
    storage, network run around the clock) plus a smooth daily swing of up to 0.10 that
    peaks at 15:00 local time, and 0.05 more on working days in office hours (batch and
    interactive load). Range 0.70..0.85, deterministic.
    """
    cal = local_calendar(index, tz)
    hour = cal["hour"].to_numpy() + cal["minute"].to_numpy() / 60.0
    daily = 0.5 * (1.0 - np.cos(2.0 * np.pi * (hour - 3.0) / 24.0))  # 0 at 03:00, 1 at 15:00
    workday = slp_day_types(cal["date"], holidays) == "WT"
    office = workday & (hour >= 8.0) & (hour < 18.0)
    values = 0.70 + 0.10 * daily + 0.05 * office
    return pd.Series(values, index=index, name="it_load_ratio")
