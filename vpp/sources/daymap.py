"""Quarter-hourly series as tables of local days x wall-clock slots, and lookups into them.

Prices, standard load profiles and heat profiles follow the local (Europe/Berlin) wall
clock, so moving a day's values to another day means matching wall-clock quarter hours
(slot 0 = 00:00-00:15 ... slot 95 = 23:45-24:00), not UTC offsets. The two DST days need
a rule:

- the autumn day has the slots of 02:00-03:00 twice: the table keeps the first pass (still
  summer time), and a lookup for the second pass gets the same values;
- the spring day has no 02:00-03:00: the table fills those four slots with 01:45's value,
  so a normal day that borrows from it still gets a full day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vpp.data.timegrid import LOCAL_TZ

SLOTS = 96
_DAY = np.timedelta64(1, "D")


def local_days(index: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> np.ndarray:
    """Local calendar date of each instant, as ``datetime64[D]``."""
    local = index.tz_convert(tz)
    return local.tz_localize(None).to_numpy().astype("datetime64[D]")


def local_slots(index: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> np.ndarray:
    """Wall-clock quarter-hour slot 0..95 of each instant."""
    local = index.tz_convert(tz)
    return np.asarray(local.hour * 4 + local.minute // 15, dtype=int)


def day_length_quarters(days: np.ndarray, tz: str = LOCAL_TZ) -> np.ndarray:
    """Quarter hours in each local day (92 on the spring DST day, 100 in autumn, else 96)."""
    starts = pd.DatetimeIndex(days).tz_localize(tz)
    ends = pd.DatetimeIndex(days + _DAY).tz_localize(tz)
    return np.asarray((ends - starts) // pd.Timedelta(minutes=15), dtype=int)


@dataclass(frozen=True)
class DayTable:
    """Values by local day (rows) and wall-clock slot (columns); NaN where unknown.

    ``complete`` marks days that had all their quarter hours in the source series.
    """

    days: np.ndarray  # datetime64[D], ascending, consecutive
    values: np.ndarray  # shape (len(days), 96)
    complete: np.ndarray  # bool, len(days)

    def row(self, day: np.datetime64) -> int:
        """Row of ``day``; -1 if the table does not hold it."""
        if len(self.days) == 0:
            return -1
        pos = int((day - self.days[0]) // _DAY)
        return pos if 0 <= pos < len(self.days) else -1

    def lookup(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Values at (row, slot) pairs; NaN where a row is -1."""
        out = np.full(len(rows), np.nan)
        ok = rows >= 0
        out[ok] = self.values[rows[ok], slots[ok]]
        return out


def day_table(series: pd.Series, tz: str = LOCAL_TZ) -> DayTable:
    """Lay a UTC quarter-hourly series out as a :class:`DayTable` (see the module rules)."""
    clean = series.dropna()
    if clean.empty:
        empty = np.array([], dtype="datetime64[D]")
        return DayTable(empty, np.empty((0, SLOTS)), np.array([], dtype=bool))
    index = pd.DatetimeIndex(clean.index)
    days = local_days(index, tz)
    first, last = days.min(), days.max()
    all_days = np.arange(first, last + _DAY, _DAY)
    rows = ((days - first) // _DAY).astype(int)
    slots = local_slots(index, tz)
    values = np.full((len(all_days), SLOTS), np.nan)
    first_pass = ~pd.Index(rows * SLOTS + slots).duplicated(keep="first")
    values[rows[first_pass], slots[first_pass]] = clean.to_numpy(dtype=float)[first_pass]
    counts = np.bincount(rows, minlength=len(all_days))
    complete = counts == day_length_quarters(all_days, tz)
    _fill_skipped_hour(values, complete & (day_length_quarters(all_days, tz) < SLOTS))
    return DayTable(all_days, values, complete)


def _fill_skipped_hour(values: np.ndarray, short_days: np.ndarray) -> None:
    """On complete short (spring DST) days, carry the last value over the skipped slots."""
    for r in np.flatnonzero(short_days):
        row = values[r]
        for s in range(1, SLOTS):
            if np.isnan(row[s]):
                row[s] = row[s - 1]
