"""The grid-limit margin from the spread of the learned forecasts: bounded, and the plans
keep to the limits less the margin; the adopted plan shows the true limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from optimizer.inputs import State
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast
from tests.vpp.replay.conftest import small_site
from vpp.control.cycle import adopt, plan_limits, plan_margins
from vpp.core.site import GridConnection, Site

STEPS = 24
INDEX = pd.date_range("2018-05-16T00:00Z", periods=STEPS, freq="15min")
BAND_NAMES = [f"{c}_p{q}" for c in ("load_w", "pv_available_w") for q in (10, 50, 90)]


def with_grid(site: Site, **grid: Any) -> Site:
    return site.model_copy(update={"grid": site.grid.model_copy(update=grid)})


def bands(values: np.ndarray) -> pd.DataFrame:
    """Quantiles per step from non-negative draws (sorted per quantity, as the forecasts
    give them), NaN kept."""
    frame = {}
    for i, col in enumerate(("load_w", "pv_available_w")):
        block = np.sort(values[:, 3 * i : 3 * i + 3], axis=1)
        for j, q in enumerate((10, 50, 90)):
            frame[f"{col}_p{q}"] = block[:, j]
    return pd.DataFrame(frame, index=INDEX)


finite = st.floats(min_value=0.0, max_value=5e6, allow_nan=False)

#: A margin in percent: none, or a share a site file would give (a percentage of 1e-300 only
#: tests float underflow).
PCT = st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=50))


@settings(max_examples=60, deadline=None)
@given(
    limit=st.floats(min_value=1e3, max_value=1e7),
    cut=arrays(float, STEPS, elements=st.floats(min_value=0.05, max_value=1.0)),
    values=arrays(float, (STEPS, 6), elements=finite),
    missing=arrays(bool, STEPS),
    pcts=st.tuples(PCT, PCT).map(sorted),
    fixed=PCT,
)
def test_the_margin_is_bounded_and_falls_back_to_the_fixed_share(
    limit: float,
    cut: np.ndarray,
    values: np.ndarray,
    missing: np.ndarray,
    pcts: list[float],
    fixed: float,
) -> None:
    site = with_grid(
        small_site(),
        limit_margin_from="spread",
        limit_margin_pct=fixed,
        limit_margin_min_pct=pcts[0],
        limit_margin_max_pct=pcts[1],
    )
    values = values.copy()
    values[missing] = np.nan
    import_w = pd.Series(limit * cut, index=INDEX)  # caps lower some steps' limits
    export_w = pd.Series(limit * cut[::-1], index=INDEX)
    imp, exp = plan_margins(site, import_w, export_w, bands(values))
    for margin, lim in ((imp, import_w), (exp, export_w)):
        m, li = margin.to_numpy(), lim.to_numpy()
        known, other = ~missing, missing
        assert (m[known] >= li[known] * pcts[0] / 100 * (1 - 1e-12)).all()
        assert (m[known] <= li[known] * pcts[1] / 100 * (1 + 1e-12)).all()
        np.testing.assert_allclose(m[other], li[other] * fixed / 100)
        assert ((li - m) >= 0).all() and ((li - m) <= li).all()
    fixed_site = with_grid(site, limit_margin_from="fixed")
    imp, _ = plan_margins(fixed_site, import_w, export_w, bands(values))
    np.testing.assert_allclose(imp.to_numpy(), import_w.to_numpy() * fixed / 100)


def test_the_spread_is_that_of_the_net_load() -> None:
    site = with_grid(small_site(), limit_margin_from="spread")
    values = np.tile([10e3, 20e3, 26e3, 0.0, 8e3, 9e3], (STEPS, 1))
    imp, exp = plan_margins(
        site,
        pd.Series(300e3, index=INDEX),
        pd.Series(200e3, index=INDEX),
        bands(values),
    )
    # up: load P90 - P50 = 6 kW, PV P50 - P10 = 8 kW: 10 kW; down: 10 and 1 kW: 10.05 kW.
    np.testing.assert_allclose(imp, 10e3)
    np.testing.assert_allclose(exp, np.hypot(10e3, 1e3))


def test_site_refuses_a_minimum_above_the_maximum() -> None:
    grid = small_site().grid.model_dump() | {"limit_margin_min_pct": 5, "limit_margin_max_pct": 2}
    with pytest.raises(ValueError, match="limit_margin_min_pct"):
        GridConnection.model_validate(grid)


def test_plans_keep_the_limit_less_the_margin_and_show_the_true_limit() -> None:
    """A tight import limit that batteries and heat pump would fill at cheap hours: the
    plan stays under limit - margin (the margin binds), and once adopted shows the limit."""
    limit = 70e3
    site = with_grid(
        small_site(horizon_h=6),
        import_limit_w=limit,
        limit_margin_from="spread",
        limit_margin_max_pct=10.0,
    )
    start = pd.Timestamp("2018-05-16T00:00Z")
    forecast = synthetic_forecast(site, start, STEPS, seed=3)
    forecast["price_import_eur_per_mwh"] = np.where(np.arange(STEPS) < 8, -50.0, 400.0)
    forecast["price_export_eur_per_mwh"] = forecast["price_import_eur_per_mwh"] - 10.0
    spread = np.linspace(20e3, 0.0, STEPS)  # the first steps' spread is past 10 % of the limit
    values = np.column_stack(
        [np.full(STEPS, 40e3), np.full(STEPS, 50e3), 50e3 + spread, np.zeros((STEPS, 3))]
    )
    band = bands(values).set_axis(forecast.index)
    limited = plan_limits(site, forecast, [], (), band)
    margin = limited["import_margin_w"].to_numpy()
    np.testing.assert_allclose(margin, np.clip(spread, 0.005 * limit, 0.1 * limit))
    plan = Planner(site).plan(State.from_site(site), limited, start)
    assert plan.info.status == "optimal"
    imported = plan.frame["grid_import_w"].to_numpy()
    allowed = limit - margin[: len(imported)]
    assert (imported <= allowed + 1.0).all()
    assert (imported >= allowed - 1.0).any()  # the margin binds somewhere
    shown = adopt(site, None, plan, datetime(2018, 5, 16, tzinfo=UTC), limited)
    np.testing.assert_allclose(shown.frame["import_cap_w"], limit)
