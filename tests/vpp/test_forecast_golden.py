"""The forecasts are bit for bit those of the golden fingerprints (see golden_forecasts.py):
161 as-of times over 2018, both DST days, windows and the whole year (future included) as
history."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.vpp.golden_forecasts import GOLDEN, read_year, rows


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return read_year()


def test_forecasts_match_the_golden_fingerprints(year: pd.DataFrame) -> None:
    expected = pd.read_csv(GOLDEN, dtype=str)
    got = rows(year).astype(str)
    assert len(got) == len(expected) == 161 * 10
    differ = got[got["sha256"] != expected["sha256"]]
    assert differ.empty, expected.loc[differ.index].head().to_string()
    assert (got["sum"] == expected["sum"]).all()
