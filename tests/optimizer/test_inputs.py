"""Forecast schema, repairs, raw conversion and the start state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.inputs import (
    FORECAST_COLUMNS,
    ForecastError,
    State,
    forecast_from_raw,
    plan_index,
    plan_start,
    prepare_forecast,
)
from tests.optimizer.conftest import START, battery, heat_devices, make_forecast, make_site


@pytest.fixture
def site() -> object:
    return make_site([battery("b1"), *heat_devices()], heat={"annual_demand_wh": 2e9}, horizon_h=2)


def test_schema_names_carry_units() -> None:
    for col in FORECAST_COLUMNS:
        assert col.name.endswith(("_w", "_c", "_per_kwp", "_per_mwh", "_per_kwh"))


def test_forecast_from_raw_scales_by_the_site(site: object) -> None:
    index = pd.date_range(START, periods=4, freq="15min", tz="UTC")
    raw = pd.DataFrame(
        {
            "price_eur_per_mwh": [50.0, -20, 0, 10],
            "pv_w_per_kwp": 100.0,
            "load_w_per_mwh_a": 200.0,
            "heat_w_per_mwh_a": 150.0,
            "outdoor_temp_c": 3.0,
            "it_load_ratio": 0.5,
            "waste_heat_temp_c": 30.0,
            "co2_g_per_kwh": 400.0,
        },
        index=index,
    )
    site = site.model_copy(
        update={
            "grid": site.grid.model_copy(
                update={
                    "base_load_annual_wh": 3e9,
                    "import_fee_eur_per_mwh": 120.0,
                    "export_fee_eur_per_mwh": 5.0,
                }
            )
        }
    )
    fc = forecast_from_raw(site, raw)
    assert fc.load_w.iloc[0] == pytest.approx(200 * 3000)
    assert fc.heat_demand_th_w.iloc[0] == pytest.approx(150 * 2000)
    assert fc.it_power_w.iloc[0] == pytest.approx(0.5 * 300_000)
    np.testing.assert_allclose(fc.price_import_eur_per_mwh, [170, 100, 120, 130])
    np.testing.assert_allclose(fc.price_export_eur_per_mwh, [45, -25, -5, 5])
    with pytest.raises(ForecastError, match="pv_w_per_kwp"):
        forecast_from_raw(site, raw.drop(columns="pv_w_per_kwp"))


def test_prepare_repairs_and_warns(site: object) -> None:
    fc = make_forecast(
        6,
        price_export_eur_per_mwh=[50, 50, 500, 50, 50, 50],
        load_w=[1.0, np.nan, 3.0, -5.0, 5.0, 6.0],
    ).drop(columns="co2_g_per_kwh")
    index = plan_index(START, 8, 15)
    out, warnings = prepare_forecast(site, fc, index)
    assert len(out) == 8 and out.index.equals(index)
    assert out.load_w.iloc[1] == pytest.approx(2.0)  # interpolated
    assert out.load_w.iloc[3] == 0.0  # clipped
    assert out.price_export_eur_per_mwh.iloc[2] == 100.0  # not above import
    assert out.load_w.iloc[7] == 6.0  # held past the forecast's end
    assert (out.co2_g_per_kwh == 0).all()
    assert out.it_power_w.iloc[0] == 300_000  # the data centre's nominal power
    text = " | ".join(warnings)
    for word in ("interpolated", "clipped", "export price", "held", "CO2"):
        assert word in text


def test_prepare_rejects_what_cannot_be_repaired(site: object) -> None:
    index = plan_index(START, 4, 15)
    with pytest.raises(ForecastError, match="price_import_eur_per_mwh"):
        prepare_forecast(site, make_forecast(4).drop(columns="price_import_eur_per_mwh"), index)
    with pytest.raises(ForecastError, match="does not cover"):
        prepare_forecast(site, make_forecast(4, start=START + pd.Timedelta(days=2)), index)
    with pytest.raises(ForecastError, match="no values"):
        prepare_forecast(site, make_forecast(4, load_w=np.nan), index)


def test_hourly_forecast_is_resampled(site: object) -> None:
    hourly = make_forecast(3, load_w=[1.0, 2.0, 3.0]).set_axis(
        pd.date_range(START, periods=3, freq="1h", tz="UTC")
    )
    out, _ = prepare_forecast(site, hourly, plan_index(START, 8, 15))
    np.testing.assert_allclose(out.load_w, [1, 1, 1, 1, 2, 2, 2, 2])


def test_plan_start_floors_to_the_step() -> None:
    assert plan_start("2024-03-04T10:44", 15) == pd.Timestamp("2024-03-04T10:30Z")
    assert plan_start(pd.Timestamp("2024-03-04T11:44+01:00"), 15) == pd.Timestamp(
        "2024-03-04T10:30Z"
    )


def test_state_from_site(site: object) -> None:
    state = State.from_site(site)
    assert state.battery_soc_wh == {"b1": pytest.approx(5_000.0)}
    assert state.offline == frozenset()
