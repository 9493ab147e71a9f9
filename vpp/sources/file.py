"""A CSV/Parquet file in the input schema as a source, optionally mapped onto today's calendar.

With ``shift="calendar"`` (the demo) the file holds a historic year, say 2018, and every
requested local day D (any year) takes the values of one day S of the file's year:

1. anchor: the day of the file's year with D's day of year (day 366 of a leap year D maps
   to 31 December of a common year);
2. S = the anchor moved by -3..+3 days onto D's weekday, so Mondays stay Mondays and the
   weekly rhythm of load and prices is kept;
3. if S is not a complete day of the file (the year's ends: e.g. D = Saturday 2 January 2027
   gives S = Saturday 30 December 2017, before a 2018 file starts), S moves by whole weeks,
   -7, +7, -14, +14 ... days, to the nearest complete day with the same weekday.

Within the day, quarter hours are matched by local wall-clock time (see
:mod:`vpp.sources.daymap` for the DST days). Public holidays are not aligned: a weekday
holiday in D's year takes a working day's values and vice versa.

With ``shift="none"`` (replay) the file's values are returned for the requested instants
as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from vpp.data.schema import (
    INDEX_NAME,
    SCHEMA,
    InputDataError,
    column_problems,
    index_problems,
    read_raw_inputs,
)
from vpp.sources.base import (
    SourceConfigError,
    SourceError,
    check_columns,
    quarter_index,
    register_source,
)
from vpp.sources.daymap import DayTable, day_table, local_days, local_slots

Shift = Literal["calendar", "none"]
_MAX_WEEKS = 53
_DAY = np.timedelta64(1, "D")


def weekday_aligned_day(target: np.datetime64, year: int) -> np.datetime64:
    """Day of ``year`` with ``target``'s day of year, moved -3..+3 days onto its weekday."""
    day = pd.Timestamp(target)
    jan1 = np.datetime64(f"{year}-01-01", "D")
    year_days = int((np.datetime64(f"{year + 1}-01-01", "D") - jan1) // _DAY)
    anchor = jan1 + (min(day.day_of_year, year_days) - 1) * _DAY
    shift = (day.weekday() - pd.Timestamp(anchor).weekday() + 3) % 7 - 3
    return anchor + shift * _DAY


def nearest_complete(day: np.datetime64, table: DayTable) -> int:
    """Row of ``day`` in ``table`` if complete, else of the nearest complete day a whole
    number of weeks away (earlier first on ties); -1 if there is none."""
    for weeks in range(_MAX_WEEKS + 1):
        for sign in (-1, 1) if weeks else (1,):
            row = table.row(day + sign * 7 * weeks * _DAY)
            if row >= 0 and table.complete[row]:
                return row
    return -1


@register_source("file")
class FileSource:
    """Schema columns from a CSV (.csv, .csv.gz) or Parquet file.

    Parameters
    ----------
    path : str or Path
        File in the input schema (:mod:`vpp.data.schema`); gaps between days are allowed.
    columns : sequence of str, optional
        Columns to provide; default all schema columns in the file.
    shift : {"calendar", "none"}
        ``"calendar"`` maps the file's main year onto the requested dates (module doc);
        ``"none"`` returns the file's own values for the requested instants.
    name : str
        Name in messages and metrics.
    """

    def __init__(
        self,
        path: str | Path,
        columns: Sequence[str] | None = None,
        shift: Shift = "calendar",
        name: str = "file",
    ) -> None:
        if shift not in ("calendar", "none"):
            raise SourceConfigError(f"file source {path}: shift must be 'calendar' or 'none'")
        self.path = Path(path)
        self.name = name
        self.shift: Shift = shift
        self._frame = _read_checked(self.path, columns)
        self.columns: tuple[str, ...] = tuple(self._frame.columns)
        self._tables = {c: day_table(self._frame[c]) for c in self.columns}
        self._days = _common_days(self._tables.values())
        self.year = _main_year(self._days)

    def source_days(self, days: np.ndarray) -> np.ndarray:
        """File day (``datetime64[D]``) used for each requested local day, calendar mode."""
        rows = [nearest_complete(weekday_aligned_day(d, self.year), self._days) for d in days]
        if min(rows, default=0) < 0:
            raise SourceError(f"{self.name}: {self.path} has no complete day to map onto")
        return np.asarray(self._days.days[rows])

    def fetch(self, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
        """Values for ``[start, end)``; ``now`` is not used (a file knows everything)."""
        index = quarter_index(start, end)
        if self.shift == "none":
            return self._as_recorded(index)
        days = local_days(index)
        wanted, inverse = np.unique(days, return_inverse=True)
        mapped = self.source_days(wanted)[inverse]
        rows = ((mapped - self._days.days[0]) // _DAY).astype(int)
        slots = local_slots(index)
        data = {c: self._tables[c].lookup(rows, slots) for c in self.columns}
        return pd.DataFrame(data, index=index)

    def _as_recorded(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """The file's rows for ``index``, up to the first quarter hour the file lacks."""
        frame = self._frame.reindex(index)
        gaps = frame.isna().any(axis=1).to_numpy()
        if gaps.any():
            frame = frame.iloc[: int(np.argmax(gaps))]
        if frame.empty and len(index):
            raise SourceError(f"{self.name}: {self.path} has no data for {index[0].isoformat()}")
        return frame


def _read_checked(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    try:
        raw = read_raw_inputs(path)
    except InputDataError as exc:
        raise SourceConfigError(exc.summary()) from None
    if columns is None:
        names = [c.name for c in SCHEMA if c.name in raw.columns]
    else:
        names = list(check_columns(list(columns), f"file source {path}"))
        missing = [c for c in names if c not in raw.columns]
        if missing:
            raise SourceConfigError(f"{path}: no column(s) {', '.join(missing)}")
    problems = index_problems(raw.index)
    problems += [p for p in column_problems(raw[names]) if p.message != "required column missing"]
    if problems:
        raise SourceConfigError(f"{path}: " + "; ".join(str(p) for p in problems))
    frame = raw[names].astype("float64")
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC").rename(INDEX_NAME)
    return frame


def _common_days(tables: Iterable[DayTable]) -> DayTable:
    """One table whose ``complete`` marks days complete in every column."""
    all_tables = list(tables)
    complete = np.logical_and.reduce([t.complete for t in all_tables])
    return DayTable(all_tables[0].days, all_tables[0].values, complete)


def _main_year(days: DayTable) -> int:
    """The calendar year with the most complete days in the file."""
    years = days.days[days.complete].astype("datetime64[Y]").astype(int) + 1970
    if len(years) == 0:
        raise SourceConfigError("file holds no complete local day")
    values, counts = np.unique(years, return_counts=True)
    return int(values[np.argmax(counts)])
