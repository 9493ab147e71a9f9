"""Physical plausibility of the shipped year: energies, seasons, day types, DST, night."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.vpp.data.conftest import local
from vpp.data.profiles import bdew_dynamisation
from vpp.data.timegrid import integral_wh

MWH = 1e6  # Wh


@pytest.mark.parametrize("fixture", ["year_2018", "year_2023"])
def test_load_profile_integrates_to_one_mwh(fixture: str, request: pytest.FixtureRequest) -> None:
    df: pd.DataFrame = request.getfixturevalue(fixture)
    # BDEW H25 dynamised on a real calendar lands within 0.1 % of its nominal 1 MWh.
    assert integral_wh(df["load_w_per_mwh_a"]) / MWH == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("fixture", ["year_2018", "year_2023"])
def test_heat_profile_integrates_to_one_mwh_and_peaks_in_winter(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    heat = request.getfixturevalue(fixture)["heat_w_per_mwh_a"]
    assert integral_wh(heat) / MWH == pytest.approx(1.0, abs=0.01)
    january = heat[heat.index.month == 1].mean()
    july = heat[heat.index.month == 7].mean()
    assert january > 3 * july > 0  # hot water keeps summer above zero


def test_heat_follows_cold_days(year_2018: pd.DataFrame) -> None:
    daily = year_2018[["heat_w_per_mwh_a", "outdoor_temp_c"]].resample("D").mean()
    assert daily.corr().iloc[0, 1] < -0.9


def test_pv_yield_is_plausible_and_zero_at_night(year_2018: pd.DataFrame) -> None:
    pv = year_2018["pv_w_per_kwp"]
    assert 900 <= integral_wh(pv) / 1000 <= 1100  # kWh/kWp
    hours = pv.index.tz_convert("Europe/Berlin").hour
    assert (pv[(hours >= 22) | (hours < 3)] == 0).all()
    assert pv.max() < 1000
    assert pv[pv.index.month == 6].mean() > 4 * pv[pv.index.month == 12].mean()


def test_pv_from_weather_scenario_is_plausible(year_2023: pd.DataFrame) -> None:
    pv = year_2023["pv_w_per_kwp"]
    assert 900 <= integral_wh(pv) / 1000 <= 1100
    assert (year_2023.loc[year_2023["ghi_w_per_m2"] == 0, "pv_w_per_kwp"] == 0).all()


def test_load_is_weekday_correct(year_2018: pd.DataFrame) -> None:
    load = year_2018["load_w_per_mwh_a"]
    # Monday 1 Jan 2018 is a holiday: Sunday profile, as on Sunday 7 Jan (same month),
    # up to the dynamisation factor of each day (day of year 1 and 7).
    new_year = local(load, "2018-01-01").to_numpy() / bdew_dynamisation(1)
    sunday = local(load, "2018-01-07").to_numpy() / bdew_dynamisation(7)
    working = local(load, "2018-01-08").to_numpy() / bdew_dynamisation(8)
    assert new_year == pytest.approx(sunday, rel=1e-4)
    assert working != pytest.approx(sunday, rel=1e-2)


def test_load_follows_local_time_over_dst_changes(year_2018: pd.DataFrame) -> None:
    load = year_2018["load_w_per_mwh_a"]
    assert len(local(load, "2018-03-25")) == 92
    autumn = local(load, "2018-10-28")
    assert len(autumn) == 100
    # 02:00-03:00 local happens twice (00:00Z in summer time, 01:00Z in winter time).
    first = autumn["2018-10-28T00:00Z":"2018-10-28T00:45Z"].to_numpy()
    second = autumn["2018-10-28T01:00Z":"2018-10-28T01:45Z"].to_numpy()
    assert first == pytest.approx(second)
    # The evening peak sits at the same local hour in winter and summer.
    for day in ("2018-01-10", "2018-07-11"):
        one_day = local(load, day)
        peak = one_day.index[one_day.argmax()].tz_convert("Europe/Berlin")
        assert 17 <= peak.hour <= 21


def test_datacentre_and_weather_columns(year_2018: pd.DataFrame) -> None:
    ratio = year_2018["it_load_ratio"]
    assert ratio.min() > 0.69 and ratio.max() < 0.86
    assert (year_2018["waste_heat_temp_c"] == 35.0).all()
    temp = year_2018["outdoor_temp_c"]
    assert temp[temp.index.month == 1].mean() < 3 < 15 < temp[temp.index.month == 7].mean()
    ghi = year_2018["ghi_w_per_m2"]
    assert 950 <= integral_wh(ghi) / 1000 <= 1200  # kWh/m^2 a, central Germany
    assert (year_2018["dhi_w_per_m2"] <= ghi).all()


def test_prices_are_the_real_2018_market(year_2018: pd.DataFrame) -> None:
    price = year_2018["price_eur_per_mwh"]
    assert price.mean() == pytest.approx(44.47, abs=0.01)
    assert price.min() == -76.01 and price.max() == 128.26
    assert (price < 0).sum() == 134 * 4  # 134 negative hours
    co2 = year_2018["co2_g_per_kwh"]
    assert 450 < co2.mean() < 560
