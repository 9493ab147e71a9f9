"""The COP model and the fitted Carnot efficiency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.carnot import carnot_cop, cop_series, effective_carnot_efficiency
from optimizer.fit_carnot import run
from optimizer.params import FITTED_CARNOT_EFFICIENCY, OptimizerParams
from vpp.core.site import HeatPumpDevice

FIT_CSV = Path(__file__).resolve().parents[2] / "optimizer" / "carnot_fit.csv"
HPLIB = Path("/work/shared/data/heat/hplib_database.csv")


def _hp(**kw: object) -> HeatPumpDevice:
    return HeatPumpDevice.model_validate(
        {"id": "hp", "kind": "heat_pump", "max_el_w": 1e5, "modbus": {"port": 502}, **kw}
    )


def test_carnot_cop_in_kelvin() -> None:
    assert carnot_cop(70.0, 30.0, 0.5) == pytest.approx(0.5 * 343.15 / 40.0)
    assert np.isinf(carnot_cop(30.0, 35.0, 0.5))


def test_default_efficiency_is_the_fitted_median() -> None:
    fit = pd.read_csv(FIT_CSV).set_index("quantity")["value"]
    assert round(float(fit["eta_median"]), 2) == FITTED_CARNOT_EFFICIENCY
    assert fit["eta_p10"] < FITTED_CARNOT_EFFICIENCY < fit["eta_p90"]
    assert effective_carnot_efficiency(_hp()) == FITTED_CARNOT_EFFICIENCY
    assert effective_carnot_efficiency(_hp(carnot_efficiency=0.45)) == 0.45


@pytest.mark.skipif(not HPLIB.is_file(), reason="hplib database not on this machine")
def test_fit_reproduces_the_committed_result() -> None:
    again = run(pd.read_csv(HPLIB)).set_index("quantity")["value"]
    committed = pd.read_csv(FIT_CSV).set_index("quantity")["value"]
    pd.testing.assert_series_equal(again.round(4), committed.round(4), check_names=False)


def test_cop_series_clips_and_marks_unusable_steps() -> None:
    params = OptimizerParams()
    waste = np.array([35.0, 70.0, -100.0, np.nan])
    cop = cop_series(_hp(), 70.0, waste, params)
    assert cop[0] == pytest.approx(FITTED_CARNOT_EFFICIENCY * 343.15 / 40.0)
    assert cop[1] == params.cop_max  # no lift: capped
    assert cop[2] == 0.0 and cop[3] == 0.0  # too cold, or no source
