"""The replay plant makes each sub-step's PV row when it needs it instead of holding the
(sub-steps, inverters) table: every row is the table's, bit for bit, for any profile, any
roofs and ratings, and the minute cloud process's rows are passed through as they are."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vpp.replay.layout import PlantInputs
from vpp.replay.sim import PER_QUARTER

_watts = st.floats(0.0, 2e4, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.integers(1, 6),
    n_pv=st.integers(1, 5),
    data=st.data(),
)
def test_each_made_row_is_the_tables_row(steps: int, n_pv: int, data: st.DataObject) -> None:
    profile = data.draw(hnp.arrays(np.float64, steps, elements=st.floats(-5.0, 1200.0)))
    peak = data.draw(hnp.arrays(np.float64, n_pv, elements=_watts))
    rated = data.draw(hnp.arrays(np.float64, n_pv, elements=st.floats(1.0, 2e4)))
    index = pd.date_range("2018-05-16 10:00", periods=steps, freq="15min", tz="UTC")
    inputs = PlantInputs(index, np.zeros((steps, 1)), np.zeros((steps, n_pv)), profile, peak)
    table = inputs.minute_pv_w(rated, PER_QUARTER)
    rows = inputs.minute_pv_rows(rated, PER_QUARTER)
    assert rows.table is None  # nothing of the table's size is kept
    assert len(rows) == len(table) == steps * PER_QUARTER
    for m in range(len(table)):
        np.testing.assert_array_equal(rows.row(m), table[m])
        assert (rows.row(m) <= rated).all() and (rows.row(m) >= 0.0).all()


def test_the_minute_cloud_process_is_read_as_it_is() -> None:
    steps, n_pv = 2, 3
    index = pd.date_range("2018-05-16 10:00", periods=steps, freq="15min", tz="UTC")
    minute = np.random.default_rng(1).uniform(0.0, 5e3, (steps * PER_QUARTER, n_pv))
    inputs = PlantInputs(index, np.zeros((steps, 1)), np.zeros((steps, n_pv)),
                         pv_minute_w=minute)  # fmt: skip
    rows = inputs.minute_pv_rows(np.full(n_pv, 5e3), PER_QUARTER)
    assert rows.table is minute
    for m in range(len(minute)):
        np.testing.assert_array_equal(rows.row(m), minute[m])
