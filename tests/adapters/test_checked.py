"""The range check every driver applies to a device's values (``devices.base.checked``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.devices import DeviceDataError
from adapters.devices.base import checked, plausible

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
)
bounds = st.floats(-1e9, 1e9) | st.just(math.inf) | st.just(-math.inf)


@given(value=values, lo=bounds, hi=bounds, required=st.booleans())
def test_a_value_passes_only_as_a_finite_number_in_range(
    value: object, lo: float, hi: float, required: bool
) -> None:
    good = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and lo <= value <= hi
    )
    assert (plausible(value, lo, hi) is not None) == good
    if good:
        assert plausible(value, lo, hi) == float(value)  # type: ignore[arg-type]
        out = checked("pv-1", "model 103 point W", value, lo, hi, "W", required=required)
        assert out == float(value) and type(out) is float  # type: ignore[arg-type]
    elif value is None and not required:
        assert checked("pv-1", "model 103 point W", value, lo, hi, "W") is None
    else:
        with pytest.raises(DeviceDataError, match=r"^pv-1: model 103 point W"):
            checked("pv-1", "model 103 point W", value, lo, hi, "W", required=required)
