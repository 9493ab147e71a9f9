"""Deterministic profiles that drive the simulated plant: sun, clouds, household and IT load.

Pure functions of time: the same moment always gives the same value, so a simulated day can be
replayed and tests can predict what a device will show. Angles are in degrees, irradiance in
W/m^2, load profiles are dimensionless ratios of a peak or nominal power.

The solar position follows the NOAA "general solar position calculations" (accuracy about
0.1 degree, ample for a simulator); clear-sky irradiance uses the Haurwitz model with a
simple diffuse share, transposed to the module plane with the isotropic-sky model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

#: Irradiance on a module plane [W/m^2] at a moment, for a plane of (tilt, azimuth) [deg].
IrradianceProfile = Callable[[datetime, float, float], float]
#: A quantity of the simulated world at a moment (UTC), e.g. the site's base load [W];
#: None where the world has no value (the device then uses its own profile).
WorldSeries = Callable[[datetime], float | None]


@dataclass(frozen=True)
class SimWorld:
    """The simulated devices' surroundings, when they come from data rather than from the
    built-in profiles: plane irradiance, the site's base load [W], the data centre's IT
    power [W] and waste-heat temperature [degC], and the heat the district heating network
    takes [W thermal]. Each value is the mean of the sub-step that ends at the moment asked
    for."""

    irradiance: IrradianceProfile
    base_load_w: WorldSeries
    it_power_w: WorldSeries
    waste_heat_temp_c: WorldSeries
    heat_demand_th_w: WorldSeries = lambda _when: None


#: Solar constant scaled as in the Haurwitz clear-sky model [W/m^2].
HAURWITZ_GHI_W_PER_M2 = 1098.0
#: Ground reflectance used for the reflected part of plane-of-array irradiance [-].
ALBEDO = 0.2


def solar_position(
    when: datetime, latitude_deg: float, longitude_deg: float
) -> tuple[float, float]:
    """Sun (zenith, azimuth) in degrees at ``when``; azimuth clockwise from north (180 = south).

    when : timezone-aware datetime.
    latitude_deg, longitude_deg : site position [deg], east positive.
    """
    utc = when.astimezone(UTC)
    hour = utc.hour + utc.minute / 60.0 + (utc.second + utc.microsecond / 1e6) / 3600.0
    gamma = 2.0 * math.pi / 365.0 * (utc.timetuple().tm_yday - 1 + (hour - 12.0) / 24.0)
    eqtime_min = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    true_solar_min = hour * 60.0 + eqtime_min + 4.0 * longitude_deg
    hour_angle = math.radians(true_solar_min / 4.0 - 180.0)
    lat = math.radians(latitude_deg)
    cos_zen = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hour_angle)
    zenith = math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))
    azimuth = math.degrees(
        math.atan2(
            math.sin(hour_angle),
            math.cos(hour_angle) * math.sin(lat) - math.tan(decl) * math.cos(lat),
        )
    )
    return zenith, (azimuth + 180.0) % 360.0


def clear_sky_ghi_w_per_m2(zenith_deg: float) -> float:
    """Clear-sky global horizontal irradiance [W/m^2] (Haurwitz); 0 with the sun down."""
    cos_zen = math.cos(math.radians(zenith_deg))
    if cos_zen <= 0.01:
        return 0.0
    return HAURWITZ_GHI_W_PER_M2 * cos_zen * math.exp(-0.059 / cos_zen)


def diffuse_fraction(zenith_deg: float) -> float:
    """Share of clear-sky GHI that is diffuse [-]: about 0.12 at high sun, more when it is low."""
    cos_zen = max(0.0, math.cos(math.radians(zenith_deg)))
    return min(1.0, 0.12 + 0.25 * (1.0 - cos_zen) ** 2)


def plane_irradiance_w_per_m2(
    ghi_w_per_m2: float,
    zenith_deg: float,
    sun_azimuth_deg: float,
    tilt_deg: float,
    azimuth_deg: float,
) -> float:
    """Irradiance on a tilted plane [W/m^2] from GHI [W/m^2] (isotropic sky).

    POA = DNI * cos(AOI) + DHI * (1 + cos tilt) / 2 + GHI * albedo * (1 - cos tilt) / 2.
    tilt_deg : 0 = horizontal; azimuth_deg : plane orientation, clockwise from north.
    """
    if ghi_w_per_m2 <= 0.0:
        return 0.0
    zen = math.radians(zenith_deg)
    tilt = math.radians(tilt_deg)
    dhi = ghi_w_per_m2 * diffuse_fraction(zenith_deg)
    dni = (ghi_w_per_m2 - dhi) / max(math.cos(zen), 0.05)
    cos_aoi = math.cos(zen) * math.cos(tilt) + math.sin(zen) * math.sin(tilt) * math.cos(
        math.radians(sun_azimuth_deg - azimuth_deg)
    )
    sky = dhi * (1.0 + math.cos(tilt)) / 2.0
    ground = ghi_w_per_m2 * ALBEDO * (1.0 - math.cos(tilt)) / 2.0
    return max(0.0, dni * max(cos_aoi, 0.0) + sky + ground)


def cloud_factor(when: datetime, seed: int = 0) -> float:
    """Deterministic share of clear-sky irradiance that passes the clouds [-], 0.25..1.

    A sum of slow waves with periods of 23 min, 1.7 h and 7.3 h (phases from ``seed``): smooth
    enough for ramps a controller must follow, and the same for every device of the district.
    """
    t_h = when.timestamp() / 3600.0
    phase = seed * 0.7071
    wave = (
        0.5 * math.sin(2 * math.pi * t_h / 7.3 + phase)
        + 0.3 * math.sin(2 * math.pi * t_h / 1.7 + 2.1 * phase + 1.0)
        + 0.2 * math.sin(2 * math.pi * t_h / (23 / 60) + 3.3 * phase + 2.0)
    )
    # wave is in -1..1; clear skies for its upper half, thickening clouds below.
    return 1.0 if wave >= 0.0 else max(0.25, 1.0 + 0.75 * wave)


def clear_sky_profile(latitude_deg: float, longitude_deg: float) -> IrradianceProfile:
    """Plane-of-array clear-sky irradiance [W/m^2] at a site, as an IrradianceProfile."""

    def profile(when: datetime, tilt_deg: float, azimuth_deg: float) -> float:
        zenith, sun_az = solar_position(when, latitude_deg, longitude_deg)
        ghi = clear_sky_ghi_w_per_m2(zenith)
        return plane_irradiance_w_per_m2(ghi, zenith, sun_az, tilt_deg, azimuth_deg)

    return profile


def cloudy_profile(latitude_deg: float, longitude_deg: float, seed: int = 0) -> IrradianceProfile:
    """Clear-sky plane irradiance times the deterministic cloud factor [W/m^2]."""
    clear = clear_sky_profile(latitude_deg, longitude_deg)

    def profile(when: datetime, tilt_deg: float, azimuth_deg: float) -> float:
        return clear(when, tilt_deg, azimuth_deg) * cloud_factor(when, seed)

    return profile


def constant_profile(irradiance_w_per_m2: float) -> IrradianceProfile:
    """The same plane irradiance [W/m^2] at every moment and orientation (tests)."""

    def profile(_when: datetime, _tilt_deg: float, _azimuth_deg: float) -> float:
        return irradiance_w_per_m2

    return profile


def _gauss(x: float, mu: float, sigma: float) -> float:
    return math.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _household_shape(local_hour: float) -> float:
    # Night base, a morning peak around 07:30, a flat midday and the evening peak around 19:00.
    h = local_hour % 24.0
    evening = max(_gauss(h, 19.0, 1.8), _gauss(h - 24.0, 19.0, 1.8))
    return 0.3 + 0.35 * _gauss(h, 7.5, 1.2) + 0.2 * _gauss(h, 12.5, 2.0) + 0.7 * evening


@cache
def _household_peak() -> float:
    return max(_household_shape(m / 60.0) for m in range(24 * 60))


def household_load_ratio(local_hour: float) -> float:
    """Household load as a share of its daily peak [-], 0.3..1, at a local hour of day [h]."""
    return _household_shape(local_hour) / _household_peak()


def it_load_ratio(when: datetime, local_hour: float) -> float:
    """Data-centre IT load as a share of its nominal power [-], about 0.93..1.07.

    Busier in the afternoon (batch and office traffic), with a small fast wiggle so the
    readings move like a real meter's.
    """
    daily = 0.06 * math.cos(2 * math.pi * (local_hour - 15.0) / 24.0)
    wiggle = 0.01 * math.sin(2 * math.pi * when.timestamp() / 1800.0)
    return 1.0 + daily + wiggle
