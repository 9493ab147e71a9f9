"""Fingerprints of the as-of forecasts over the shipped 2018 year, one row per (time, column).

``tests/vpp/golden/forecasts_2018.csv`` holds the forecasts that the straightforward pandas
implementation made (every value's bits hashed, plus the sum for a readable check); the
forecasts of today's code must hash the same, bit for bit. Regenerate only when a forecast
method changes on purpose: ``python -m tests.vpp.golden_forecasts``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from vpp.data import read_inputs, shipped_inputs
from vpp.forecast import forecast

GOLDEN = Path(__file__).parent / "golden" / "forecasts_2018.csv"
HISTORY = pd.Timedelta(days=8)
HORIZON = timedelta(hours=36)


def read_year() -> pd.DataFrame:
    return read_inputs(shipped_inputs(2018), "2018-01-01T00:00Z", "2019-01-01T00:00Z")


def as_of_times() -> list[pd.Timestamp]:
    """Times spread over the year: quarter hours, the controller's 30 s lead, odd seconds,
    the price publication at 13:00 local and both DST changes; some without 8 days of
    history before them (the start of the file)."""
    rng = np.random.default_rng(2018)
    start = pd.Timestamp("2018-01-01T00:00Z")
    times = [start + pd.Timedelta(seconds=int(s)) for s in rng.integers(0, 362 * 86400, 150)]
    times = [t.floor("15min") if i % 3 == 0 else t for i, t in enumerate(times)]
    berlin = [
        "2018-03-24 13:00", "2018-03-25 01:45", "2018-03-25 03:00", "2018-03-25 12:59:30",
        "2018-10-27 13:00", "2018-10-28 01:30", "2018-10-28 23:45", "2018-05-21 06:00",
        "2018-12-24 12:59:59", "2018-01-02 10:00", "2018-01-05 00:00",
    ]  # fmt: skip
    times += [pd.Timestamp(t, tz="Europe/Berlin").tz_convert("UTC") for t in berlin]
    return sorted(times)


def window(year: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """What a controller's input source hands the forecast: 8 days back, the horizon on."""
    index = pd.DatetimeIndex(year.index)
    lo = index.searchsorted(at - HISTORY)
    hi = index.searchsorted(at + HORIZON + pd.Timedelta(hours=1))
    return year.iloc[lo:hi]


def fingerprint(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


def rows(year: pd.DataFrame) -> pd.DataFrame:
    out = []
    for i, at in enumerate(as_of_times()):
        # Every fourth time with the whole year as history (future included): no peeking.
        history = year if i % 4 == 0 else window(year, at)
        got = forecast(history, at.to_pydatetime(), HORIZON)
        for column in got.columns:
            values = got[column].to_numpy(dtype=float)
            out.append(
                {
                    "as_of": at.isoformat(),
                    "column": column,
                    "whole_year": i % 4 == 0,
                    "nan": int(np.isnan(values).sum()),
                    "sum": repr(float(np.nansum(values))),
                    "sha256": fingerprint(values),
                }
            )
    return pd.DataFrame(out)


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    rows(read_year()).to_csv(GOLDEN, index=False)
    print(f"wrote {GOLDEN}")
