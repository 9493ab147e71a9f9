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
from functools import lru_cache

import numpy as np
import pandas as pd

from vpp.data.timegrid import LOCAL_TZ

SLOTS = 96
_DAY = np.timedelta64(1, "D")
#: One day and one quarter hour [ns].
DAY_NS = 86_400 * 10**9
QUARTER_NS = 900 * 10**9


_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def utc_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Each instant as nanoseconds since the epoch (UTC), whatever the index's unit."""
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    ticks = np.asarray(index.asi8)
    return ticks * _NS_PER[index.unit] if index.unit != "ns" else ticks


def local_calendar(index: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> tuple[np.ndarray, np.ndarray]:
    """Local calendar date (``datetime64[D]``) and wall-clock slot 0..95 of each instant.

    Forecasts ask for the same few weeks of quarter hours again every quarter hour, so
    instants on the quarter-hour grid are looked up in a table per UTC day that is converted
    once (:func:`_utc_day`); other instants are converted each time. Both give the same."""
    grid = quarter_grid(index)
    if grid is None:
        local = pd.DatetimeIndex(index).tz_convert(tz)
        days = local.tz_localize(None).to_numpy().astype("datetime64[D]")
        return days, np.asarray(local.hour * 4 + local.minute // 15, dtype=int)
    utc_days, row, pos = grid
    blocks = [_utc_day(d, tz) for d in utc_days]
    return np.stack([b[0] for b in blocks])[row, pos], np.stack([b[1] for b in blocks])[row, pos]


def quarter_grid(index: pd.DatetimeIndex) -> tuple[list[int], np.ndarray, np.ndarray] | None:
    """Instants on the UTC quarter-hour grid as (UTC days since 1970, each instant's
    position in that list, its quarter hour 0..95 of the UTC day); None if any instant is
    off the grid, there are none, or they have no time zone."""
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        return None
    t = utc_ns(index)
    if len(t) == 0 or (t % QUARTER_NS).any():
        return None
    utc_day = t // DAY_NS
    pos = (t - utc_day * DAY_NS) // QUARTER_NS
    first = int(utc_day.min())
    span = int(utc_day.max()) - first + 1
    if span <= len(t):
        return list(range(first, first + span)), utc_day - first, pos
    unique, row = np.unique(utc_day, return_inverse=True)  # a few instants far apart
    return [int(d) for d in unique], row, pos


@lru_cache(maxsize=4096)
def _utc_day(day: int, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Local date and slot of the 96 quarter hours of UTC day ``day`` (days since 1970)."""
    start = pd.Timestamp(day * DAY_NS, unit="ns", tz="UTC")
    local = pd.date_range(start, periods=SLOTS, freq="15min").tz_convert(tz)
    days = local.tz_localize(None).to_numpy().astype("datetime64[D]")
    slots = np.asarray(local.hour * 4 + local.minute // 15, dtype=int)
    days.flags.writeable = slots.flags.writeable = False
    return days, slots


def local_days(index: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> np.ndarray:
    """Local calendar date of each instant, as ``datetime64[D]``."""
    return local_calendar(index, tz)[0]


def local_slots(index: pd.DatetimeIndex, tz: str = LOCAL_TZ) -> np.ndarray:
    """Wall-clock quarter-hour slot 0..95 of each instant."""
    return local_calendar(index, tz)[1]


def day_length_quarters(days: np.ndarray, tz: str = LOCAL_TZ) -> np.ndarray:
    """Quarter hours in each local day (92 on the spring DST day, 100 in autumn, else 96)."""
    numbers = np.asarray(days, dtype="datetime64[D]").astype(np.int64)
    return np.array([_day_length(int(d), tz) for d in numbers], dtype=int)


@lru_cache(maxsize=4096)
def _day_length(day: int, tz: str) -> int:
    start = pd.Timestamp(np.datetime64(day, "D")).tz_localize(tz)
    end = pd.Timestamp(np.datetime64(day + 1, "D")).tz_localize(tz)
    return int((end - start) // pd.Timedelta(minutes=15))


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
    values_in = series.to_numpy(dtype=float)
    known = ~np.isnan(values_in)
    if not known.any():
        empty = np.array([], dtype="datetime64[D]")
        return DayTable(empty, np.empty((0, SLOTS)), np.array([], dtype=bool))
    days, slots = local_calendar(pd.DatetimeIndex(series.index)[known], tz)
    first, last = days.min(), days.max()
    all_days = np.arange(first, last + _DAY, _DAY)
    rows = ((days - first) // _DAY).astype(int)
    values = np.full((len(all_days), SLOTS), np.nan)
    # The autumn day's repeated hour: the first pass wins.
    _, first_pass = np.unique(rows * SLOTS + slots, return_index=True)
    values[rows[first_pass], slots[first_pass]] = values_in[known][first_pass]
    counts = np.bincount(rows, minlength=len(all_days))
    lengths = day_length_quarters(all_days, tz)
    complete = counts == lengths
    _fill_skipped_hour(values, complete & (lengths < SLOTS))
    return DayTable(all_days, values, complete)


def _fill_skipped_hour(values: np.ndarray, short_days: np.ndarray) -> None:
    """On complete short (spring DST) days, carry the last value over the skipped slots."""
    for r in np.flatnonzero(short_days):
        row = values[r]
        for s in range(1, SLOTS):
            if np.isnan(row[s]):
                row[s] = row[s - 1]
