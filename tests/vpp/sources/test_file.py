"""The file source: the shipped 2018 year laid onto other years' calendars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpp.data import read_inputs, shipped_inputs
from vpp.sources import FileSource, SourceConfigError, SourceError, build_source
from vpp.sources.file import weekday_aligned_day

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "inputs_sample.csv"
NOW = pd.Timestamp("2026-06-15T08:00Z")


@pytest.fixture(scope="module")
def year_2018() -> FileSource:
    return FileSource(shipped_inputs(2018))


def local_day(day: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(day, tz="Europe/Berlin")
    end = (start + pd.Timedelta(hours=26)).normalize()
    return start.tz_convert("UTC"), end.tz_convert("UTC")


def days(*text: str) -> np.ndarray:
    return np.array(text, dtype="datetime64[D]")


def test_a_monday_in_2026_gets_a_monday_of_2018_with_the_files_values(
    year_2018: FileSource,
) -> None:
    start, end = local_day("2026-06-15")  # Monday
    got = year_2018.fetch(start, end, NOW)
    (source_day,) = year_2018.source_days(days("2026-06-15"))
    assert pd.Timestamp(source_day).day_name() == "Monday"
    assert source_day == np.datetime64("2018-06-18")  # day 166 of 2018 is a Monday too
    expected = read_inputs(shipped_inputs(2018), *local_day("2018-06-18"))
    assert got.index.equals(pd.date_range(start, end, freq="15min", inclusive="left"))
    np.testing.assert_array_equal(got.to_numpy(), expected[list(got.columns)].to_numpy())


def test_every_weekday_of_a_year_keeps_its_weekday_within_three_days(
    year_2018: FileSource,
) -> None:
    targets = np.arange(np.datetime64("2026-01-01"), np.datetime64("2027-01-01"))
    mapped = year_2018.source_days(targets)
    weekday = pd.DatetimeIndex(targets).day_of_week
    assert (pd.DatetimeIndex(mapped).day_of_week == weekday).all()
    assert (pd.DatetimeIndex(mapped).year == 2018).all()
    shift = pd.DatetimeIndex(mapped).day_of_year - pd.DatetimeIndex(targets).day_of_year
    assert np.abs(shift[7:-7]).max() <= 3  # away from the year's ends


def test_year_ends_wrap_by_whole_weeks(year_2018: FileSource) -> None:
    # Saturday 2 Jan 2027 -> Saturday 30 Dec 2017 is outside the file: a week later.
    # Thursday 31 Dec 2026 -> Thursday 3 Jan 2019 is outside: a week earlier.
    assert weekday_aligned_day(np.datetime64("2027-01-02"), 2018) == np.datetime64("2017-12-30")
    mapped = year_2018.source_days(days("2027-01-02", "2026-12-31", "2028-02-29"))
    np.testing.assert_array_equal(mapped, days("2018-01-06", "2018-12-27", "2018-02-27"))


def test_a_window_across_new_year_is_complete_and_continuous(year_2018: FileSource) -> None:
    start = pd.Timestamp("2026-12-31T12:00Z")
    got = year_2018.fetch(start, start + pd.Timedelta(hours=36), NOW)
    assert len(got) == 144 and got.notna().all().all()
    assert got.index[0] == start


def test_dst_days_get_all_their_quarter_hours(year_2018: FileSource) -> None:
    spring = year_2018.fetch(*local_day("2026-03-29"), NOW)
    autumn = year_2018.fetch(*local_day("2026-10-25"), NOW)
    assert len(spring) == 92 and len(autumn) == 100
    assert spring.notna().all().all() and autumn.notna().all().all()
    # Both passes of 02:00-03:00 local take the same wall-clock values.
    first, second = autumn.iloc[8:12], autumn.iloc[12:16]
    np.testing.assert_array_equal(first.to_numpy(), second.to_numpy())


def test_columns_subset_and_no_shift_for_replay() -> None:
    source = FileSource(SAMPLE, columns=["price_eur_per_mwh"], shift="none")
    assert source.columns == ("price_eur_per_mwh",)
    start = pd.Timestamp("2018-05-15T10:00Z")
    got = source.fetch(start, start + pd.Timedelta(hours=2), NOW)
    expected = read_inputs(SAMPLE, start, start + pd.Timedelta(hours=2))
    assert got["price_eur_per_mwh"].equals(expected["price_eur_per_mwh"])


def test_no_shift_ends_where_the_file_ends() -> None:
    source = FileSource(SAMPLE, shift="none")
    start = pd.Timestamp("2018-05-21T20:00Z")  # the sample ends 2018-05-21T21:45Z
    got = source.fetch(start, start + pd.Timedelta(hours=6), NOW)
    assert got.index[-1] == pd.Timestamp("2018-05-21T21:45Z")
    with pytest.raises(SourceError, match="no data for 2018-06"):
        source.fetch(pd.Timestamp("2018-06-01T00:00Z"), pd.Timestamp("2018-06-02T00:00Z"), NOW)


def test_a_file_with_gaps_maps_onto_its_complete_days() -> None:
    source = FileSource(SAMPLE)  # two weeks of 2018 with a gap between them
    mapped = source.source_days(days("2026-05-18", "2026-03-02"))
    # Monday 18 May -> 2018 day 138 is Friday 18 May -> Monday 21 May (in the file);
    # Monday 2 March is far from both weeks: the nearest complete Monday is 1 January.
    np.testing.assert_array_equal(mapped, days("2018-05-21", "2018-01-01"))


def test_bad_configs_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SourceConfigError, match="not found"):
        FileSource(tmp_path / "missing.parquet")
    with pytest.raises(SourceConfigError, match="not input-schema column"):
        FileSource(SAMPLE, columns=["price"])
    with pytest.raises(SourceConfigError, match="shift must be"):
        build_source({"kind": "file", "path": str(SAMPLE), "shift": "yearly"})
    with pytest.raises(SourceConfigError, match="unknown option"):
        build_source({"kind": "file", "path": str(SAMPLE), "colums": ["x"]})
    with pytest.raises(SourceConfigError, match="unknown source kind 'ftp'"):
        build_source({"kind": "ftp"})
