"""PV per inverter inside the quarter hour (vpp.data.clouds): seeded and independent of how
the days are cut, quarter-hour energies kept, flicker where clouds are broken and none at
night, roofs facing east or west where the site file says so, a spread of roofs that keeps
the district's energy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from vpp.core.site import PvDevice
from vpp.data import read_inputs
from vpp.data.clouds import (
    SPREAD,
    CloudParams,
    orientation_and_index,
    orientations,
    pv_minutes,
)

LAT, LON = 51.34, 12.37
#: Two days of May 2018 (UTC midnight to midnight): the national series has broken-cloud
#: hours on both.
START, END = "2018-05-15T00:00Z", "2018-05-17T00:00Z"


def _pv(i: int, **kw: Any) -> PvDevice:
    return PvDevice.model_validate(
        {
            "id": f"pv-{i}",
            "kind": "pv",
            "rated_w": 10_000,
            "peak_wp": 10_000,
            "modbus": {"port": 16100, "unit": i + 1},
            **kw,
        }
    )


@pytest.fixture(scope="module")
def days() -> tuple[pd.DatetimeIndex, np.ndarray]:
    year = read_inputs("data/inputs_2018.parquet")
    part = year[(year.index >= START) & (year.index < END)]
    return pd.DatetimeIndex(part.index), part["pv_w_per_kwp"].to_numpy(float)


def _quarters(minutes: np.ndarray) -> np.ndarray:
    out: np.ndarray = minutes.reshape(-1, 15, minutes.shape[1]).mean(axis=1)
    return out


def test_same_seed_same_minutes_however_the_days_are_cut(
    days: tuple[pd.DatetimeIndex, np.ndarray],
) -> None:
    index, pv = days
    fleet = [_pv(i) for i in range(4)]
    both = pv_minutes(fleet, index, pv, LAT, LON, CloudParams(seed=3))
    again = pv_minutes(fleet, index, pv, LAT, LON, CloudParams(seed=3))
    np.testing.assert_array_equal(both, again)
    # The second day alone, and a stretch of it: the same minutes (but in the stretch's
    # last quarter hour, which the interpolation inside the quarter cannot see past, and its first).
    second = pv_minutes(fleet, index[96:], pv[96:], LAT, LON, CloudParams(seed=3))
    np.testing.assert_allclose(second, both[96 * 15 :], rtol=1e-12, atol=1e-9)
    part = pv_minutes(fleet, index[120:150], pv[120:150], LAT, LON, CloudParams(seed=3))
    np.testing.assert_allclose(part[15:-15], both[121 * 15 : 149 * 15], rtol=1e-12, atol=1e-9)
    other = pv_minutes(fleet, index, pv, LAT, LON, CloudParams(seed=4))
    assert not np.array_equal(other, both)


def test_quarter_hours_keep_their_energy_and_broken_clouds_flicker(
    days: tuple[pd.DatetimeIndex, np.ndarray],
) -> None:
    index, pv = days
    fleet = [_pv(i) for i in range(6)]
    params = CloudParams(seed=1)
    minutes = pv_minutes(fleet, index, pv, LAT, LON, params)
    tilt, azimuth = orientations(fleet, params.seed)
    factor, kc = orientation_and_index(index, pv, LAT, LON, tilt, azimuth)
    expected = pv[:, None] * 10.0 * factor  # 10 kWp each, no clipping at these values
    assert expected.max() < 10_000
    np.testing.assert_allclose(_quarters(minutes), expected, rtol=1e-9, atol=1e-6)
    assert (minutes >= 0).all() and (minutes <= 10_000).all()
    spread = minutes.reshape(-1, 15, len(fleet)).std(axis=1) / np.maximum(expected, 1e-9)
    broken = (kc > 0.3) & (kc < 0.8)
    night = pv == 0
    assert broken.sum() >= 8 and night.sum() >= 40
    assert np.median(spread[broken]) > 0.1  # a few tens of per cent inside the quarter
    assert (minutes.reshape(-1, 15, len(fleet))[night] == 0).all()
    # Each roof has its own clouds, but the district shares part of them.
    flick = minutes / np.repeat(expected, 15, axis=0).clip(1e-9)
    sel = np.repeat(broken, 15)
    corr = np.corrcoef(flick[sel].T)[np.triu_indices(len(fleet), 1)]
    assert 0.2 < corr.mean() < 0.9


def test_east_and_west_roofs_where_the_site_says_so(
    days: tuple[pd.DatetimeIndex, np.ndarray],
) -> None:
    index, pv = days
    fleet = [_pv(0, azimuth_deg=90.0, tilt_deg=40.0), _pv(1, azimuth_deg=270.0, tilt_deg=40.0)]
    tilt, azimuth = orientations(fleet)
    assert tilt.tolist() == [40.0, 40.0] and azimuth.tolist() == [90.0, 270.0]
    quarters = _quarters(pv_minutes(fleet, index, pv, LAT, LON, CloudParams()))
    hour = index.hour
    morning, evening = (hour >= 5) & (hour < 9), (hour >= 14) & (hour < 18)  # UTC
    assert quarters[morning, 0].sum() > 1.3 * quarters[morning, 1].sum()
    assert quarters[evening, 1].sum() > 1.3 * quarters[evening, 0].sum()


def test_a_spread_of_roofs_keeps_the_districts_energy(
    days: tuple[pd.DatetimeIndex, np.ndarray],
) -> None:
    """Roofs the site file gives no orientation are drawn from the spread: different from
    one another, within its limits, and together about the regional series' energy."""
    index, pv = days
    fleet = [_pv(i) for i in range(60)]
    tilt, azimuth = orientations(fleet, seed=0)
    assert np.unique(azimuth).size >= 50  # a few at the limits
    assert SPREAD["tilt_deg"][2] <= tilt.min() and tilt.max() <= SPREAD["tilt_deg"][3]
    assert SPREAD["azimuth_deg"][2] <= azimuth.min() and azimuth.max() <= SPREAD["azimuth_deg"][3]
    minutes = pv_minutes(fleet, index, pv, LAT, LON, CloudParams())
    district = minutes.sum() / 15 / 60  # mean W per inverter per quarter hour, summed
    regional = (pv * 10.0).sum()
    assert district == pytest.approx(regional, rel=0.05)


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"CloudParams\.shared"):
        CloudParams(shared=1.5)
    with pytest.raises(ValueError, match=r"CloudParams\.sigma"):
        CloudParams(sigma=(0.1,))
