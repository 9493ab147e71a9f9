"""KPI tables: totals and months are sums of the days, ratios and capture from the sums."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vpp.core.site import Site
from vpp.replay.kpi import ADDITIVE, COLUMNS, day_table, monthly
from vpp.replay.parallel import ReplayResult
from vpp.replay.runner import DayResult, ReplayOptions

#: Adjusted cost per day and strategy, EUR: two days in May, one in June.
COSTS = {
    "2018-05-30": {
        "no_control": 100.0,
        "self_consumption": 90.0,
        "controller": 80.0,
        "oracle": 70.0,
    },
    "2018-05-31": {
        "no_control": 50.0,
        "self_consumption": 50.0,
        "controller": 45.0,
        "oracle": 40.0,
    },
    "2018-06-01": {
        "no_control": 30.0,
        "self_consumption": 29.0,
        "controller": 28.0,
        "oracle": 20.0,
    },
}


def _rows() -> list[tuple[str, dict[str, dict[str, float]]]]:
    days = []
    for i, (day, costs) in enumerate(COSTS.items()):
        rows = {}
        for strategy, cost in costs.items():
            row = dict.fromkeys(ADDITIVE, 1.0)
            row.update(
                adjusted_cost_eur=cost,
                regret_eur=cost - min(costs.values()),
                grid_export_mwh=0.5 * (i + 1),
                pv_generation_mwh=2.0,
                peak_import_kw=10.0 * (i + 1),
            )
            rows[strategy] = row
        days.append((day, rows))
    return days


def test_months_and_total_are_sums_with_capture_from_the_sums() -> None:
    table = day_table(_rows())
    assert list(table.columns) == list(COLUMNS)
    months = monthly(table).set_index(["day", "strategy"])
    may, june = months.loc["2018-05"], months.loc["2018-06"]
    # May: no control 150, oracle 110 (40 possible), controller 125 (25 saved).
    assert may.loc["controller", "adjusted_cost_eur"] == 125.0
    assert may.loc["controller", "capture_pct"] == pytest.approx(100 * 25 / 40)
    assert june.loc["controller", "capture_pct"] == pytest.approx(100 * 2 / 10)
    # Shares of the bound's savings from the month's regrets: controller 10 + 5, no control
    # 30 + 10, self-consumption 20 + 10.
    assert may.loc["controller", "share_vs_no_control_pct"] == pytest.approx(100 * (1 - 15 / 40))
    assert may.loc["controller", "share_vs_self_consumption_pct"] == pytest.approx(50.0)
    assert may.loc["no_control", "share_vs_no_control_pct"] == 0.0
    assert may.loc["oracle", "peak_import_kw"] == 20.0  # the highest day, not a sum
    # Ratios from the month's sums: exported 1.5 of 4 MWh generated.
    assert may.loc["controller", "self_consumption_pct"] == pytest.approx(100 * (1 - 1.5 / 4))
    total = table[table["day"] == "total"].set_index("strategy")
    assert total.loc["controller", "capture_pct"] == pytest.approx(100 * 27 / 50)
    assert total.loc["controller", "share_vs_no_control_pct"] == pytest.approx(100 * (1 - 23 / 50))
    for column in ("adjusted_cost_eur", "savings_eur"):
        np.testing.assert_allclose(
            months.groupby(level="strategy")[column].sum().loc[list(total.index)],
            total[column],
        )


def test_a_report_over_two_months_has_the_months(
    sample: dict[date, DayResult], site: Site, tmp_path: Path
) -> None:
    from vpp.replay.report import write_report

    days = sorted(sample.values(), key=lambda r: r.day)
    table = day_table((r.day.isoformat(), r.kpis) for r in days)
    result = ReplayResult(site, ReplayOptions(), days, table, 1.0, 2, "local processes")
    files = write_report(result, tmp_path)
    assert tmp_path / "kpis_monthly.csv" in files
    months = pd.read_csv(tmp_path / "kpis_monthly.csv")
    assert sorted(set(months["day"])) == ["2018-01", "2018-05"] and len(months) == 10
    page = (tmp_path / "index.html").read_text()
    assert "<h2>Months</h2>" in page and "kpis_monthly.csv" in page
    assert "share vs no control %" in page and "The true lower bound" in page


def test_forecast_errors_are_sums_over_planned_steps() -> None:
    """Absolute errors of the plans' forecasts against what happened, only where a plan was
    in force."""
    from vpp.replay import plant as k
    from vpp.replay.kpi import forecast_errors
    from vpp.replay.trace import PLANNED_COLUMNS, Trace

    trace = Trace.empty(pd.date_range("2018-05-16", periods=3, freq="15min", tz="UTC"), 0, 0, True)
    trace.out[:, k.O_LOAD] = [1e6, 2e6, 3e6]
    trace.out[:, k.O_PV_AVAIL] = [0.0, 4e6, 0.0]
    trace.planned[:2, 0] = 0.0  # the third step had no plan
    trace.planned[:2, PLANNED_COLUMNS.index("load_w")] = [1.5e6, 1e6]
    trace.planned[:2, PLANNED_COLUMNS.index("pv_available_w")] = [0.0, 2e6]
    trace.planned[:2, PLANNED_COLUMNS.index("heat_demand_th_w")] = 0.0
    errors = forecast_errors(trace, 0.25)
    assert errors["forecast_steps"] == 2.0
    assert errors["load_forecast_abs_error_mwh"] == pytest.approx((0.5 + 1.0) * 0.25)
    assert errors["pv_forecast_abs_error_mwh"] == pytest.approx(2.0 * 0.25)
    assert errors["heat_forecast_abs_error_mwh"] == 0.0


def test_co2_forecast_errors_over_planned_steps() -> None:
    """The CO2 intensity in the plans in force against the true one, where a plan was in
    force: MAE, bias and mean per step; none reported where the inputs carry no CO2."""
    from vpp.replay.kpi import co2_forecast_errors, forecast_errors, forecast_summary
    from vpp.replay.trace import PLANNED_COLUMNS, Trace

    trace = Trace.empty(pd.date_range("2018-05-16", periods=3, freq="15min", tz="UTC"), 0, 0, True)
    trace.planned[:2] = 0.0  # the third step had no plan
    trace.planned[:2, PLANNED_COLUMNS.index("co2_g_per_kwh")] = [300.0, 500.0]
    truth = np.array([400.0, 450.0, 999.0])
    figures = forecast_errors(trace, 0.25) | co2_forecast_errors(trace, truth)
    assert figures["co2_forecast_abs_error_gkwh"] == pytest.approx(100.0 + 50.0)
    assert figures["co2_forecast_error_gkwh"] == pytest.approx(-100.0 + 50.0)
    co2 = forecast_summary(figures)["co2"]
    assert co2["mae_gkwh"] == pytest.approx(75.0)
    assert co2["bias_gkwh"] == pytest.approx(-25.0)
    assert co2["mean_gkwh"] == pytest.approx(425.0)

    none = forecast_errors(trace, 0.25) | co2_forecast_errors(trace, np.zeros(3))
    assert np.isnan(forecast_summary(none)["co2"]["mae_gkwh"])


def test_pinball_and_coverage_of_the_learned_bands() -> None:
    """Pinball loss averaged over P10, P50, P90 per step, and the steps inside P10..P90;
    without bands the plan's value stands for every quantile and nothing counts as covered."""
    from vpp.replay import plant as k
    from vpp.replay.kpi import forecast_errors, forecast_summary, pinball
    from vpp.replay.trace import BAND_COLUMNS, PLANNED_COLUMNS, Trace

    np.testing.assert_allclose(
        pinball(
            np.array([10.0, 10.0]),
            np.array([[0.0, 10.0, 20.0], [20.0, 20.0, 20.0]]),
            (0.1, 0.5, 0.9),
        ),
        [[1.0, 0.0, 1.0], [9.0, 5.0, 1.0]],
    )
    trace = Trace.empty(pd.date_range("2018-05-16", periods=3, freq="15min", tz="UTC"), 0, 0, True)
    trace.out[:, k.O_LOAD] = [1e6, 2e6, 3e6]
    trace.planned[:, 0] = 0.0
    trace.planned[:, PLANNED_COLUMNS.index("load_w")] = [1e6, 1e6, 3e6]
    trace.planned[:, PLANNED_COLUMNS.index("pv_available_w")] = 0.0
    trace.planned[:, PLANNED_COLUMNS.index("heat_demand_th_w")] = 0.0
    point = forecast_errors(trace, 0.25)
    # A point forecast off by 1 MW: (0.1 + 0.5 + 0.9) / 3 * 1 MW for a quarter hour.
    assert point["load_forecast_pinball_mwh"] == pytest.approx(0.5 * 0.25)
    assert point["forecast_band_steps"] == 0.0
    assert np.isnan(forecast_summary(point)["load"]["coverage_pct"])

    trace.bands = np.full((3, len(BAND_COLUMNS)), np.nan)
    load = [BAND_COLUMNS.index(f"load_w_{q}") for q in ("p10", "p50", "p90")]
    other = [i for i in range(len(BAND_COLUMNS)) if i not in load]
    trace.bands[:2, other] = 0.0  # the third step had no learned quantiles
    trace.bands[:2, load] = [[0.5e6, 1e6, 1.5e6], [0.5e6, 1e6, 1.5e6]]
    banded = forecast_errors(trace, 0.25)
    assert banded["forecast_band_steps"] == 2.0
    assert banded["load_forecast_covered_steps"] == 1.0  # 2 MW is above the second P90
    # Step 1: truth 1 MW against 0.5 / 1 / 1.5 MW: (0.05 + 0 + 0.05) / 3 MW; step 2: truth
    # 2 MW: (0.15 + 0.5 + 0.45) / 3 MW; step 3: the plan's value was right.
    assert banded["load_forecast_pinball_mwh"] == pytest.approx((1.2 / 3) * 0.25)
    summary = forecast_summary(banded)
    assert summary["load"]["coverage_pct"] == pytest.approx(50.0)
    assert summary["load"]["mae_w"] == pytest.approx(1e6 / 3)
