"""The noisy world (vpp.data.world): seeded, in the input schema, energies kept, a generated
home shaped like the measured household it is drawn from, the district's load no longer the
standard profile the forecasts rebuild."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vpp.data import read_inputs
from vpp.data.world import households, noisy_world, read_household

ROOT_INPUTS = "data/inputs_2018.parquet"


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return read_inputs(ROOT_INPUTS)


@pytest.fixture(scope="module")
def world(base: pd.DataFrame) -> pd.DataFrame:
    return noisy_world(base, read_household(), seed=7)


def _lag1(x: np.ndarray) -> float:
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


def _daily(x: np.ndarray) -> np.ndarray:
    days = x.size // 96
    return x[: days * 96].reshape(days, 96).mean(axis=0)


def test_same_seed_same_world(base: pd.DataFrame, world: pd.DataFrame) -> None:
    again = noisy_world(base, read_household(), seed=7)
    pd.testing.assert_frame_equal(again, world)
    other = noisy_world(base, read_household(), seed=8)
    assert not np.allclose(other["load_w_per_mwh_a"], world["load_w_per_mwh_a"])


def test_energies_kept_and_real_series_untouched(base: pd.DataFrame, world: pd.DataFrame) -> None:
    assert world["load_w_per_mwh_a"].sum() * 0.25 / 1e6 == pytest.approx(1.0)
    for column in ("heat_w_per_mwh_a", "pv_w_per_kwp"):
        assert world[column].sum() == pytest.approx(base[column].sum(), rel=1e-9)
    for column in ("price_eur_per_mwh", "co2_g_per_kwh", "outdoor_temp_c", "ghi_w_per_m2"):
        pd.testing.assert_series_equal(world[column], base[column])
    assert (world["pv_w_per_kwp"][base["pv_w_per_kwp"] == 0] == 0).all()  # no sun at night
    assert world["it_load_ratio"].between(0.3, 1.0).all()


def test_a_generated_home_is_shaped_like_the_measured_household(base: pd.DataFrame) -> None:
    real = read_household()
    one = households(
        np.random.default_rng(3), real, pd.DatetimeIndex(base.index), 1, "Europe/Berlin"
    )
    assert _lag1(one) == pytest.approx(_lag1(real), abs=0.05)
    assert np.corrcoef(_daily(one), _daily(real))[0, 1] > 0.8
    assert one.max() / one.mean() == pytest.approx(real.max() / real.mean(), rel=0.2)


def test_the_district_is_noisier_than_the_standard_profile(
    base: pd.DataFrame, world: pd.DataFrame
) -> None:
    """Season and day shape stay (monthly energy within 10 %, correlation > 0.85), but the
    load departs from the standard profile by more than 5 % on average, and heat, IT load and
    PV carry noise too."""
    h25, load = base["load_w_per_mwh_a"], world["load_w_per_mwh_a"]
    months = (load.resample("MS").sum() / h25.resample("MS").sum()).iloc[1:]
    assert months.between(0.9, 1.1).all(), months
    assert np.corrcoef(load, h25)[0, 1] > 0.85
    for column, least in (
        ("load_w_per_mwh_a", 0.05),
        ("heat_w_per_mwh_a", 0.04),
        ("it_load_ratio", 0.02),
        ("pv_w_per_kwp", 0.10),
    ):
        off = float(np.abs(world[column] - base[column]).mean() / base[column].mean())
        assert off > least, (column, off)
