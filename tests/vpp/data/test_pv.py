"""PV from weather (pvlib chain) on the shipped DWD TRY weather."""

from __future__ import annotations

import pandas as pd
import pytest

from vpp.data.pv import annual_yield_kwh_per_kwp, pv_from_weather

LEIPZIG = {"latitude": 51.34, "longitude": 12.37}


@pytest.fixture(scope="module")
def hourly_weather(year_2018: pd.DataFrame) -> pd.DataFrame:
    """The TRY weather of the shipped year back at its native hourly resolution."""
    cols = ["ghi_w_per_m2", "dhi_w_per_m2", "outdoor_temp_c"]
    return year_2018[cols].resample("h").mean()


def run(weather: pd.DataFrame, **kwargs: float) -> pd.Series:
    return pv_from_weather(
        weather["ghi_w_per_m2"], weather["dhi_w_per_m2"], weather["outdoor_temp_c"],
        **LEIPZIG, **kwargs,
    )  # fmt: skip


def test_annual_yield_of_a_south_roof_in_leipzig(hourly_weather: pd.DataFrame) -> None:
    pv = run(hourly_weather)
    assert 900 <= annual_yield_kwh_per_kwp(pv, 1.0) <= 1100
    assert pv.max() <= 1000 / 1.1 + 1e-9  # inverter clips at its AC rating
    assert (pv >= 0).all()


def test_zero_at_night_and_peak_near_solar_noon(hourly_weather: pd.DataFrame) -> None:
    pv = run(hourly_weather)
    assert (pv[hourly_weather["ghi_w_per_m2"] == 0] == 0).all()
    by_hour = pv.groupby(pv.index.hour).mean()  # UTC; solar noon in Leipzig ~11:10 UTC
    assert by_hour.idxmax() in (10, 11)
    assert by_hour[[0, 1, 2, 21, 22, 23]].sum() == 0


def test_orientation_and_temperature_act_as_expected(hourly_weather: pd.DataFrame) -> None:
    south = annual_yield_kwh_per_kwp(run(hourly_weather), 1.0)
    east = annual_yield_kwh_per_kwp(run(hourly_weather, azimuth_deg=90.0), 1.0)
    flat = annual_yield_kwh_per_kwp(run(hourly_weather, tilt_deg=0.0), 1.0)
    assert east < flat < south
    morning = run(hourly_weather, azimuth_deg=90.0).groupby(hourly_weather.index.hour).mean()
    assert morning.idxmax() < 10
    hot = hourly_weather.assign(outdoor_temp_c=hourly_weather["outdoor_temp_c"] + 20.0)
    assert annual_yield_kwh_per_kwp(run(hot), 1.0) < 0.95 * south
