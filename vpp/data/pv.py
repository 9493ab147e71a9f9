"""PV output per kWp from weather, with pvlib's models.

Chain: solar position at the middle of each interval -> DNI from GHI and DHI -> plane of
array by the Perez transposition -> beam loss at the glass (physical IAM) -> cell
temperature (SAPM, close-mount glass/glass: roof-mounted modules run hot) -> PVWatts DC
power with its temperature coefficient -> PVWatts system losses -> PVWatts inverter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pvlib  # type: ignore[import-untyped]

#: PVWatts default loss model (soiling, shading, mismatch, wiring, LID, ...), about 14 %.
DEFAULT_LOSSES_PCT = float(pvlib.pvsystem.pvwatts_losses())
_ONE_HOUR = pd.Timedelta(hours=1)


def pv_from_weather(
    ghi: pd.Series,
    dhi: pd.Series,
    temp_air: pd.Series,
    wind_speed: pd.Series | float = 1.0,
    *,
    latitude: float,
    longitude: float,
    tilt_deg: float = 30.0,
    azimuth_deg: float = 180.0,
    period: pd.Timedelta = _ONE_HOUR,
    albedo: float = 0.2,
    gamma_pdc_per_k: float = -0.0037,
    losses_pct: float = DEFAULT_LOSSES_PCT,
    dc_ac_ratio: float = 1.1,
) -> pd.Series:
    """AC output of a fixed PV system per kWp of DC peak power [W/kWp].

    Parameters
    ----------
    ghi : Series
        Global horizontal irradiance, mean over each interval [W/m^2]. Index: interval
        starts, timezone-aware.
    dhi : Series
        Diffuse horizontal irradiance, same index [W/m^2].
    temp_air : Series
        Air temperature at 2 m, same index [degC].
    wind_speed : Series or float, default 1.0
        Wind speed at 10 m [m/s].
    latitude, longitude : float
        Site position [degrees north, degrees east].
    tilt_deg : float, default 30
        Module tilt from horizontal [degrees].
    azimuth_deg : float, default 180
        Module azimuth, clockwise from north (180 = south) [degrees].
    period : Timedelta, default 1 h
        Interval length; the sun is placed at the middle of each interval.
    albedo : float, default 0.2
        Ground reflectance [1].
    gamma_pdc_per_k : float, default -0.0037
        Temperature coefficient of DC power, crystalline silicon [1/K].
    losses_pct : float
        DC system losses [%]; default the PVWatts loss model (about 14 %).
    dc_ac_ratio : float, default 1.1
        DC peak over inverter AC rating [1]; the inverter clips above its rating.

    Returns
    -------
    Series
        AC power per kWp [W/kWp], zero when the sun is down, on the input index.
    """
    middle = pd.DatetimeIndex(ghi.index) + period / 2
    sun = pvlib.solarposition.get_solarposition(middle, latitude, longitude)
    zenith = sun["apparent_zenith"].to_numpy()
    poa = _plane_of_array(ghi, dhi, zenith, sun["azimuth"].to_numpy(), middle,
                          tilt_deg, azimuth_deg, albedo)  # fmt: skip
    aoi = pvlib.irradiance.aoi(tilt_deg, azimuth_deg, zenith, sun["azimuth"].to_numpy())
    effective = poa["poa_direct"] * pvlib.iam.physical(aoi) + poa["poa_diffuse"]
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"]
    wind = wind_speed.to_numpy(dtype=float) if isinstance(wind_speed, pd.Series) else wind_speed
    temp_cell = pvlib.temperature.sapm_cell(
        poa["poa_global"], temp_air.to_numpy(dtype=float), wind, **params
    )
    pdc_w = pvlib.pvsystem.pvwatts_dc(effective, temp_cell, 1000.0, gamma_pdc_per_k)
    pdc_w = np.asarray(pdc_w, dtype=float) * (1.0 - losses_pct / 100.0)
    ac_rating_w = 1000.0 / dc_ac_ratio
    pac_w = pvlib.inverter.pvwatts(pdc_w, ac_rating_w / 0.96, eta_inv_nom=0.96)
    values = np.nan_to_num(np.clip(np.asarray(pac_w, dtype=float), 0.0, None))
    return pd.Series(values, index=ghi.index, name="pv_w_per_kwp")


def _plane_of_array(
    ghi: pd.Series,
    dhi: pd.Series,
    zenith: np.ndarray,
    azimuth: np.ndarray,
    middle: pd.DatetimeIndex,
    tilt_deg: float,
    azimuth_deg: float,
    albedo: float,
) -> pd.DataFrame:
    """Perez plane-of-array irradiance [W/m^2]: poa_global, poa_direct, poa_diffuse."""
    ghi_v = ghi.to_numpy(dtype=float)
    dhi_v = np.minimum(dhi.to_numpy(dtype=float), ghi_v)
    # pvlib.irradiance.dni drops the beam near the horizon where DNI = BHI / cos(z) blows up.
    dni = np.nan_to_num(np.asarray(pvlib.irradiance.dni(ghi_v, dhi_v, zenith), dtype=float))
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(middle.day_of_year), dtype=float)
    airmass = np.asarray(pvlib.atmosphere.get_relative_airmass(zenith), dtype=float)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt_deg, azimuth_deg, zenith, azimuth, dni, ghi_v, dhi_v,
        dni_extra=dni_extra, airmass=airmass, albedo=albedo, model="perez",
    )  # fmt: skip
    keys = ("poa_global", "poa_direct", "poa_diffuse")
    return pd.DataFrame({k: np.nan_to_num(np.asarray(poa[k], dtype=float)) for k in keys})


def annual_yield_kwh_per_kwp(pv_w_per_kwp: pd.Series, step_h: float) -> float:
    """Energy of a per-kWp power series [kWh/kWp], ``step_h`` hours per value."""
    total: Any = pv_w_per_kwp.sum()
    return float(total) * step_h / 1000.0
