"""Source parsers and conversions, against unchanged slices of the real source files."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from tests.vpp.data.conftest import GOLDEN
from vpp.data.dwd import parse_dwd_try
from vpp.data.entsoe import co2_intensity, pv_per_kwp
from vpp.data.heat import geometric_temperature, temperature_interval
from vpp.data.profiles import bdew_dynamisation, easter_sunday, saxony_holidays
from vpp.data.smard import read_smard_hourly
from vpp.data.timegrid import HOUR, interpolate_instants, repeat_hourly, year_index

SMARD = GOLDEN / "smard_dayahead_2018_hourly_sample.csv"
TRY = GOLDEN / "dwd_try2010_region04_sample.dat"


@pytest.fixture(scope="module")
def smard() -> pd.Series:
    return read_smard_hourly(SMARD)


def test_smard_local_times_become_utc_across_both_dst_changes(smard: pd.Series) -> None:
    assert len(smard) == 24 + 23 + 24 + 24 + 25
    # Lines of the source file, local time -> UTC:
    # "Jan 1, 2018;12:00 AM;-;...;-5.27;..." (DE-AT-LU zone) -> 2017-12-31T23:00Z
    assert smard[pd.Timestamp("2017-12-31T23:00Z")] == -5.27
    # "Mar 25, 2018;3:00 AM;...;37.85" (first hour of summer time) -> 01:00Z
    assert smard[pd.Timestamp("2018-03-25T01:00Z")] == 37.85
    # "Oct 28, 2018;2:00 AM;41.62" then again "2:00 AM;41.59": summer, then winter time.
    assert smard[pd.Timestamp("2018-10-28T00:00Z")] == 41.62
    assert smard[pd.Timestamp("2018-10-28T01:00Z")] == 41.59
    # The zone split: "Sep 30, 2018;11:00 PM" DE-AT-LU 60.87, "Oct 1, 2018;12:00 AM" DE-LU 59.53.
    assert smard[pd.Timestamp("2018-09-30T21:00Z")] == 60.87
    assert smard[pd.Timestamp("2018-09-30T22:00Z")] == 59.53


def test_shipped_prices_equal_the_source_per_quarter_hour(
    smard: pd.Series, year_2018: pd.DataFrame
) -> None:
    shipped = year_2018["price_eur_per_mwh"]
    for hour, price in smard.items():
        quarters = shipped[hour : hour + HOUR - pd.Timedelta(minutes=1)]
        assert len(quarters) == 4 and (quarters == price).all(), hour


def test_hourly_to_quarter_hours_conserves_energy(smard: pd.Series) -> None:
    index = pd.date_range(smard.index[0], smard.index[-1] + HOUR, freq="15min", inclusive="left")
    quarters = repeat_hourly(smard, index).dropna()
    back = quarters.groupby(quarters.index.floor("h")).mean()
    pd.testing.assert_series_equal(back, smard, check_names=False, check_freq=False,
                                   check_index_type=False)  # fmt: skip
    assert quarters.sum() * 0.25 == pytest.approx(smard.sum())


def test_shipped_irradiance_conserves_the_try_hourly_energy(year_2018: pd.DataFrame) -> None:
    raw = parse_dwd_try(TRY.read_text(encoding="utf-8"))
    for month, day in ((1, 1), (6, 21)):
        rows = raw[(raw["month"] == month) & (raw["day"] == day)]
        # Hour HH (CET) is the hour ending at HH: HH = 1 starts at 00:00 CET = 23:00Z.
        start = pd.Timestamp(year=2018, month=month, day=day, tz="UTC") - HOUR
        ghi = year_2018["ghi_w_per_m2"][start : start + 24 * HOUR - pd.Timedelta(minutes=1)]
        hourly = ghi.groupby(ghi.index.floor("h")).mean().to_numpy()
        assert hourly == pytest.approx((rows["bhi_w_per_m2"] + rows["dhi_w_per_m2"]).to_numpy())
        assert ghi.sum() * 0.25 == pytest.approx(rows[["bhi_w_per_m2", "dhi_w_per_m2"]].sum().sum())


def test_try_temperature_readings_land_on_their_instants(year_2018: pd.DataFrame) -> None:
    raw = parse_dwd_try(TRY.read_text(encoding="utf-8"))
    june = raw[(raw["month"] == 6) & (raw["day"] == 21)]
    temp = year_2018["outdoor_temp_c"]
    for hh, reading in zip(june["hour"], june["temp_air_c"], strict=True):
        # A reading at HH CET is at HH - 1 UTC.
        assert temp[pd.Timestamp("2018-06-21T00:00Z") + (hh - 1) * HOUR] == reading


def test_co2_of_the_first_quarter_hour_of_2018(year_2018: pd.DataFrame) -> None:
    # First row of 2018_DE_gen_entsoe.parquet [MW] and the German Tranberg factors [g/kWh].
    gen = {"Biomass": 4779, "Fossil Brown coal/Lignite": 6692, "Fossil Coal-derived gas": 390,
           "Fossil Gas": 1783, "Fossil Hard coal": 1262, "Fossil Oil": 188, "Geothermal": 3,
           "Hydro Pumped Storage": 416, "Hydro Run-of-river and poundage": 1768,
           "Hydro Water Reservoir": 44, "Nuclear": 6345, "Other": 329, "Other renewable": 144,
           "Solar": 0, "Waste": 633, "Wind Offshore": 2973, "Wind Onshore": 27982}  # fmt: skip
    factors = pd.Series({"biomass_cogeneration": 50.4, "coal": 1160.0, "gas": 533.0,
                         "oil": 875.0, "geothermal": 0.00664, "hydropower_pumped_storage": 958.0,
                         "hydropower_run-of-river": 0.0253, "nuclear": 9.37, "solar": 0.00448,
                         "wind": 0.165})  # fmt: skip
    frame = pd.DataFrame([gen], index=pd.DatetimeIndex(["2017-12-31T23:00Z"]))
    by_hand = (4779 * 50.4 + (6692 + 390 + 1262 + 329) * 1160 + 1783 * 533 + 188 * 875
               + 416 * 958 + 1768 * 0.0253 + 6345 * 9.37 + (3 + 44 + 144 + 633) * 0.00664
               + (2973 + 27982) * 0.165) / sum(gen.values())  # fmt: skip
    value = co2_intensity(frame, factors).iloc[0]
    assert value == pytest.approx(by_hand)
    assert year_2018["co2_g_per_kwh"].iloc[0] == pytest.approx(value, abs=0.05)
    with pytest.raises(KeyError, match="Fusion"):
        co2_intensity(frame.assign(Fusion=1.0), factors)


def test_pv_per_kwp_interpolates_installed_capacity() -> None:
    index = pd.date_range("2018-01-01", periods=3, freq="182D", tz="UTC")
    solar = pd.Series([42_804.0, 44_051.5, 45_299.0], index=index)
    assert pv_per_kwp(solar, 42_804.0, 45_299.0).to_numpy() == pytest.approx([1000.0] * 3)
    assert pv_per_kwp(solar, 42_804.0).iloc[0] == pytest.approx(1000.0)


def test_calendar() -> None:
    assert easter_sunday(2018) == date(2018, 4, 1)
    assert easter_sunday(2023) == date(2023, 4, 9)
    assert easter_sunday(2024) == date(2024, 3, 31)
    holidays = saxony_holidays(2018)
    assert len(holidays) == 11
    assert holidays[date(2018, 11, 21)] == "Buß- und Bettag"
    assert holidays[date(2018, 5, 10)] == "Christi Himmelfahrt"
    assert len(year_index(2018)) == 35_040 and len(year_index(2024)) == 35_136


def test_bdew_formulas() -> None:
    assert bdew_dynamisation(np.array([1]))[0] == pytest.approx(1.2421, abs=1e-4)
    # demandlib's interval table: ceil(theta) <= -15 -> 1, -14 -> 2, 0 -> 4, 1 -> 5,
    # 25 -> 9, 26 -> 10.
    theta = np.array([-20.0, -15.0, -14.5, -0.2, 0.3, 24.9, 25.5, 40.0])
    assert temperature_interval(theta).tolist() == [1, 1, 2, 4, 5, 9, 10, 10]
    assert geometric_temperature(np.full(5, 7.0)) == pytest.approx(np.full(5, 7.0))


def test_interpolation_wraps_a_typical_year() -> None:
    samples = pd.Series([0.0, 10.0], index=pd.DatetimeIndex(["2018-01-01T00:00Z",
                                                             "2018-01-01T12:00Z"]))  # fmt: skip
    index = pd.DatetimeIndex(["2018-01-01T06:00Z", "2018-01-01T18:00Z", "2017-12-31T18:00Z"])
    values = interpolate_instants(samples, index, period=pd.Timedelta(hours=24)).to_numpy()
    assert values == pytest.approx([5.0, 5.0, 5.0])
