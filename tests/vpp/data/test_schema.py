"""The schema: reading, writing and every kind of error, on real shipped data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.vpp.data.conftest import SAMPLE
from vpp.data import (
    REQUIRED,
    SCHEMA,
    InputDataError,
    find_problems,
    read_inputs,
    shipped_inputs,
    write_inputs,
)
from vpp.data.convert import SAMPLE_WINDOWS


def problems_of(df: pd.DataFrame) -> list[str]:
    return [str(p) for p in find_problems(df)]


def test_schema_table_is_consistent() -> None:
    names = [c.name for c in SCHEMA]
    assert len(names) == len(set(names))
    assert all(c.min < c.max for c in SCHEMA)
    assert set(REQUIRED) == {
        "price_eur_per_mwh", "pv_w_per_kwp", "load_w_per_mwh_a", "heat_w_per_mwh_a",
        "outdoor_temp_c",
    }  # fmt: skip


def test_shipped_year_reads_on_a_gapless_utc_quarter_hour_grid(year_2018: pd.DataFrame) -> None:
    df = year_2018
    assert len(df) == 35_040
    assert str(df.index.tz) == "UTC" and df.index.name == "time"
    assert df.index.freq == pd.Timedelta(minutes=15)
    # The local calendar year 2018: midnight CET is 23:00 UTC.
    assert df.index[0] == pd.Timestamp("2017-12-31T23:00Z")
    assert df.index[-1] == pd.Timestamp("2018-12-31T22:45Z")
    assert (np.diff(df.index.as_unit("ns").asi8) == 15 * 60 * 10**9).all()
    assert set(df.index.minute) == {0, 15, 30, 45}
    assert list(df.columns) == [c.name for c in SCHEMA]
    assert not df.isna().any().any()


def test_second_scenario_has_no_co2_column(year_2023: pd.DataFrame) -> None:
    assert len(year_2023) == 35_040
    assert "co2_g_per_kwh" not in year_2023
    assert year_2023["price_eur_per_mwh"].min() == -500.0


def test_window_is_start_inclusive_end_exclusive() -> None:
    df = read_inputs(shipped_inputs(2018), start="2018-06-01T00:00Z", end="2018-06-02T00:00Z")
    assert len(df) == 96
    assert df.index[0] == pd.Timestamp("2018-06-01T00:00Z")
    naive = read_inputs(shipped_inputs(2018), start="2018-06-01", end="2018-06-02")
    pd.testing.assert_frame_equal(df, naive)


def test_sample_windows_read_and_match_the_shipped_year(year_2018: pd.DataFrame) -> None:
    for start, end in SAMPLE_WINDOWS:
        week = read_inputs(SAMPLE, start, end)
        assert len(week) == 7 * 96
        pd.testing.assert_frame_equal(week, year_2018.loc[week.index], check_freq=False)
        assert (week["price_eur_per_mwh"] < 0).any()


def test_whole_sample_names_the_gap_between_its_weeks() -> None:
    with pytest.raises(InputDataError) as err:
        read_inputs(SAMPLE)
    assert [str(p) for p in err.value.problems] == [
        "time: 12188 quarter hour(s) missing, first at 2018-01-07T23:00Z"
    ]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_round_trip(year_2018: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    part = year_2018.iloc[:200]
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    path = write_inputs(part, tmp_path / "a" / f"x{suffix}")
    pd.testing.assert_frame_equal(read_inputs(path), part, check_freq=False)
    again = write_inputs(part, tmp_path / "b" / f"x{suffix}")
    assert path.read_bytes() == again.read_bytes()  # reproducible: no write time inside


def test_missing_required_column_is_named(year_2018: pd.DataFrame) -> None:
    df = year_2018.iloc[:8].drop(columns=["heat_w_per_mwh_a"])
    assert problems_of(df) == ["heat_w_per_mwh_a: required column missing"]


def test_out_of_range_names_column_and_first_bad_timestamp(year_2018: pd.DataFrame) -> None:
    df = year_2018.iloc[:96].copy()
    df.iloc[[5, 9], df.columns.get_loc("price_eur_per_mwh")] = -600.0
    df.iloc[40, df.columns.get_loc("pv_w_per_kwp")] = 5000.0
    assert problems_of(df) == [
        "price_eur_per_mwh: 2 value(s) below -500 EUR/MWh, first at 2018-01-01T00:15Z",
        "pv_w_per_kwp: 1 value(s) above 1200 W/kWp, first at 2018-01-01T09:00Z",
    ]


def test_missing_and_non_numeric_values(year_2018: pd.DataFrame) -> None:
    df = year_2018.iloc[:12].astype(object)
    df.iloc[3, 0] = np.nan
    df.iloc[7, 4] = "warm"
    assert problems_of(df) == [
        "price_eur_per_mwh: 1 value(s) missing, first at 2017-12-31T23:45Z",
        "outdoor_temp_c: 1 value(s) not a number, first at 2018-01-01T00:45Z",
    ]


def test_index_problems_are_named(year_2018: pd.DataFrame) -> None:
    df = year_2018.iloc[:8]
    gap = df.drop(df.index[3:5])
    assert problems_of(gap) == ["time: 2 quarter hour(s) missing, first at 2017-12-31T23:45Z"]
    swapped = df.iloc[[0, 2, 1, 3]]
    assert problems_of(swapped) == ["time: not increasing, first at 2017-12-31T23:15Z"]
    dup = df.iloc[[0, 1, 1, 2]]
    assert problems_of(dup) == ["time: duplicate timestamp, first at 2017-12-31T23:15Z"]
    shifted = df.set_axis(df.index + pd.Timedelta(minutes=5))
    assert problems_of(shifted) == [
        "time: not aligned to :00/:15/:30/:45, first at 2017-12-31T23:05Z"
    ]
    naive = df.set_axis(df.index.tz_localize(None))
    assert problems_of(naive) == ["time: timestamps carry no UTC offset (naive local time?)"]


def test_unknown_column_is_reported(year_2018: pd.DataFrame) -> None:
    df = year_2018.iloc[:4].assign(pv_w_per_kw=0.0)
    assert problems_of(df) == ["pv_w_per_kw: unknown column (not in the input schema)"]


def test_local_times_across_dst_are_converted_to_utc(
    year_2018: pd.DataFrame, tmp_path: Path
) -> None:
    part = year_2018["2018-10-27T20:00Z":"2018-10-28T04:00Z"]  # +02:00 then +01:00
    path = tmp_path / "local.csv"
    part.set_axis(part.index.tz_convert("Europe/Berlin")).to_csv(path)
    assert "2018-10-28 02:00:00+02:00" in path.read_text()
    assert "2018-10-28 02:00:00+01:00" in path.read_text()
    pd.testing.assert_frame_equal(read_inputs(path), part, check_freq=False)
    naive = tmp_path / "naive.csv"
    part.set_axis(part.index.tz_convert("Europe/Berlin").tz_localize(None)).to_csv(naive)
    with pytest.raises(InputDataError, match="time: timestamps carry no UTC offset, first '2018"):
        read_inputs(naive)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"\(file\): not found"):
        read_inputs(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.csv"
    bad.write_text("when,price_eur_per_mwh\n2018-01-01T00:00Z,1\n")
    with pytest.raises(InputDataError, match="time: column missing"):
        read_inputs(bad)
    bad.write_text("time,price_eur_per_mwh\nyesterday 12:00+01:00,1\n")
    with pytest.raises(InputDataError, match="time: unreadable timestamps"):
        read_inputs(bad)
    folder = tmp_path / "year.parquet"
    folder.mkdir()
    with pytest.raises(InputDataError, match=r"\(file\): is a folder, not a file"):
        read_inputs(folder)
    bad.write_bytes(b"time,price_eur_per_mwh\n2018-01-01T00:00Z,Stra\xdfe\n")
    with pytest.raises(InputDataError, match=r"\(file\): not UTF-8 text \(byte 0xdf\)"):
        read_inputs(bad)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 and nothing else")
    with pytest.raises(InputDataError, match=r"\(file\): not a readable Parquet file: "):
        read_inputs(broken)
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress(SAMPLE.read_bytes())[:500])
    with pytest.raises(InputDataError, match=r"\(file\): not a readable CSV file: "):
        read_inputs(truncated)
    with pytest.raises(InputDataError) as err:
        read_inputs(truncated)
    assert err.value.summary() == f"{truncated}: {err.value.problems[0].message}"


def test_window_names_a_gap_across_its_start_or_end(
    year_2018: pd.DataFrame, tmp_path: Path
) -> None:
    """The window's own rows do not show a hole that runs across its start or end; the rows
    of the file beyond the window do."""
    days = year_2018["2018-06-01T00:00Z":"2018-06-02T23:45Z"]
    holed = days.drop(days["2018-06-01T10:00Z":"2018-06-01T15:45Z"].index)  # 6 h missing
    path = tmp_path / "holed.csv"
    holed.to_csv(path, date_format="%Y-%m-%dT%H:%M:%SZ")

    def problems(start: str, end: str) -> list[str]:
        with pytest.raises(InputDataError) as err:
            read_inputs(path, start, end)
        return [str(p) for p in err.value.problems]

    hole = "time: {} quarter hour(s) missing, first at {}"
    assert problems("2018-06-01T12:00Z", "2018-06-02T00:00Z") == [
        hole.format(16, "2018-06-01T12:00Z")
    ]
    assert problems("2018-06-01T00:00Z", "2018-06-01T12:00Z") == [
        hole.format(8, "2018-06-01T10:00Z")
    ]
    # a window inside the hole is a gap, not a window without rows (which replay skips)
    assert problems("2018-06-01T11:00Z", "2018-06-01T12:00Z") == [
        hole.format(4, "2018-06-01T11:00Z")
    ]
    # beside the hole, or past the file's end, the file reads
    assert len(read_inputs(path, "2018-06-01T16:00Z", "2018-06-04T00:00Z")) == 32 + 96
    assert len(read_inputs(path, "2018-05-31T00:00Z", "2018-06-01T10:00Z")) == 40
