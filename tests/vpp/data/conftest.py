"""Fixtures: the shipped input years, the golden source slices, the shared source folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vpp.data import read_inputs, shipped_inputs

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLE = ROOT / "tests" / "data" / "inputs_sample.csv"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def year_2018() -> pd.DataFrame:
    return read_inputs(shipped_inputs(2018))


@pytest.fixture(scope="session")
def year_2023() -> pd.DataFrame:
    return read_inputs(shipped_inputs(2023))


def local(df: pd.DataFrame | pd.Series, day: str) -> pd.DataFrame | pd.Series:
    """Rows of one local (Europe/Berlin) calendar day."""
    local_dates = df.index.tz_convert("Europe/Berlin").strftime("%Y-%m-%d")
    return df[local_dates == day]
