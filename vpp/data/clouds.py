"""PV per inverter, minute by minute: roof orientation and a seeded cloud process.

The input schema carries one PV series for the region, ``pv_w_per_kwp``, as quarter-hour
means (the national fleet's output per kWp, or the noisy world's local version of it). A
district's inverters do not all follow it: roofs face different ways, and a passing cloud
shades one street a minute before the next. :func:`pv_minutes` makes each inverter's
available power per minute from the regional series:

1. Orientation. Each inverter has its roof's tilt and azimuth: the site file's
   ``tilt_deg``/``azimuth_deg`` where they are set, else drawn from :data:`SPREAD`
   (tilt ~ N(35, 10) degrees within 10..60, azimuth ~ N(180, 45) within 90..270; seeded
   by the inverter's id, so an inverter keeps its roof from day to day and run to run).
   Under a clear sky an east roof gives more in the morning and less in the afternoon than
   the regional fleet; under an overcast sky the light is diffuse and the roofs differ
   little. So the inverter's quarter hour is the regional value times
   ``1 + kc * (poa_j / poa_fleet - 1)``, with ``poa`` the clear-sky plane-of-array irradiance
   (pvlib: Ineichen clear sky, Hay-Davies transposition) of the inverter's roof and the mean
   over a fleet of roofs spread as :data:`SPREAD`, and ``kc`` (0..1) the quarter hour's
   clear-sky index: the regional value over the fleet's clear-sky output
   (``poa_fleet * PERFORMANCE_RATIO``).
2. Clouds inside the quarter hour. The minute values are the quarter hours interpolated
   (:func:`vpp.data.minutes.within_quarter`) times ``exp(sigma * x - sigma^2 / 2)``, where
   ``x`` is a standard AR(1) process in minutes (correlation time :attr:`CloudParams.tau_min`),
   the sum of a part shared by the whole district (share :attr:`CloudParams.shared` of the
   variance) and a part of each inverter's own, and ``sigma = sigma_max * 4 kc (1 - kc)``:
   no flicker under a clear or an overcast sky, most under broken clouds. Cloud
   enhancement is allowed up to :attr:`CloudParams.kc_max` times the clear sky. Each quarter
   hour of each inverter is scaled back to its mean, so the quarter-hour energies are the
   data's (less what the inverter's AC rating clips).

The minutes of a UTC day are drawn from ``numpy.random.default_rng([seed, day])``: the same
seed gives the same minutes whatever stretch of days is replayed, in one process or many. At
UTC midnight the sun is down in Europe, so cutting the process there changes nothing.

``python -m vpp.data.clouds --check`` compares the process with measured irradiance (see
docs/replay-world.md): the spread of the four quarter hours of an hour around the hour's
mean, by the hour's clear-sky index, in the DWD station's 15-minute data of 2015 and in
the process run on that data's hourly means. ``--site FILE --world SEED [--months 3 6]``
prints how much the site's PV moves inside the quarter hour in the noisy world.
"""

from __future__ import annotations

import argparse
import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vpp.core.site import PvDevice
from vpp.data.minutes import within_quarter

F64 = NDArray[np.float64]

MINUTES_PER_QUARTER = 15
_MINUTES_PER_DAY = 1440
_MINUTE_NS = 60 * 10**9
_DAY_NS = _MINUTES_PER_DAY * _MINUTE_NS
#: Roofs whose orientation the site file does not give: (mean, standard deviation, lowest,
#: highest) of tilt and of azimuth (clockwise from north), degrees. Pitched roofs of
#: German homes; azimuths spread around south, none facing north.
SPREAD = {"tilt_deg": (35.0, 10.0, 10.0, 60.0), "azimuth_deg": (180.0, 45.0, 90.0, 270.0)}
#: Clear-sky AC output per kWp over plane-of-array irradiance [W/kWp per W/m^2 = 1]:
#: PVWatts' losses (14 %) and inverter (96 %), warm modules.
PERFORMANCE_RATIO = 0.80
#: Below this clear-sky fleet irradiance [W/m^2] (sun near the horizon) the clear-sky index
#: is not formed: no orientation effect, no flicker.
LOW_SUN_W_PER_M2 = 20.0


#: Clear-sky indices [1] at which :attr:`CloudParams.sigma` is given.
KC_KNOTS = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class CloudParams:
    """The minute cloud process (see the module docstring); checked against measured data
    with ``python -m vpp.data.clouds --check``."""

    seed: int = 0
    #: Standard deviation of the log clear-sky index [1] at the clear-sky indices
    #: :data:`KC_KNOTS`, linear in between (and 0 at kc = 0 and 1): fitted so that the
    #: process reproduces the spread of measured quarter hours within the hour
    #: (:func:`check`, docs/replay-world.md).
    sigma: tuple[float, ...] = (0.60, 0.50, 0.47, 0.46, 0.57)
    #: Correlation time of the process [min]: a cumulus shadow passes in a few minutes.
    tau_min: float = 4.0
    #: Share of the variance common to the whole district [0..1]; the rest is each roof's.
    shared: float = 0.5
    #: Highest minute value as a multiple of the clear sky (cloud enhancement) [1].
    kc_max: float = 1.4

    def sigma_at(self, kc: F64) -> F64:
        """Standard deviation of the log clear-sky index at clear-sky indices ``kc``."""
        out: F64 = np.interp(kc, np.r_[0.0, KC_KNOTS, 1.0], np.r_[0.0, self.sigma, 0.0])
        return out

    def __post_init__(self) -> None:
        if len(self.sigma) != len(KC_KNOTS) or not all(0 <= v <= 3 for v in self.sigma):
            raise ValueError(
                f"CloudParams.sigma: {len(KC_KNOTS)} values 0..3 expected, got {self.sigma}"
            )
        for name, low, high in (
            ("tau_min", 0.1, 600.0),
            ("shared", 0.0, 1.0),
            ("kc_max", 1.0, 3.0),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"CloudParams.{name}: must be {low}..{high}, got {value}")


def orientations(pv: Sequence[PvDevice], seed: int = 0) -> tuple[F64, F64]:
    """Tilt and azimuth of each inverter [degrees]: the site file's where set, else drawn
    from :data:`SPREAD` with a generator seeded by ``seed`` and the inverter's id."""
    tilt, azimuth = np.empty(len(pv)), np.empty(len(pv))
    for j, device in enumerate(pv):
        rng = np.random.default_rng([seed, zlib.crc32(device.id.encode())])
        drawn = {}
        for name, (mean, sd, low, high) in SPREAD.items():
            drawn[name] = float(np.clip(rng.normal(mean, sd), low, high))
        given = device.model_fields_set
        tilt[j] = device.tilt_deg if "tilt_deg" in given else drawn["tilt_deg"]
        azimuth[j] = device.azimuth_deg if "azimuth_deg" in given else drawn["azimuth_deg"]
    return tilt, azimuth


def _fleet() -> tuple[F64, F64, F64]:
    """A fixed grid of roofs with :data:`SPREAD`'s weights: tilt, azimuth, weight."""
    (tm, ts, tl, th), (am, asd, al, ah) = SPREAD["tilt_deg"], SPREAD["azimuth_deg"]
    tilts = np.linspace(tl, th, 6)
    azimuths = np.linspace(al, ah, 9)
    t, a = np.meshgrid(tilts, azimuths, indexing="ij")
    w = np.exp(-0.5 * ((t - tm) / ts) ** 2 - 0.5 * ((a - am) / asd) ** 2)
    return t.ravel(), a.ravel(), (w / w.sum()).ravel()


def clear_sky_poa(
    index: pd.DatetimeIndex, latitude: float, longitude: float, tilt: F64, azimuth: F64
) -> F64:
    """Clear-sky plane-of-array irradiance [W/m^2] at the middle of each quarter hour of
    ``index`` (UTC starts), shape (steps, roofs)."""
    import pvlib  # type: ignore[import-untyped]  # on demand: a slow import

    middle = index + pd.Timedelta(minutes=7.5)
    place = pvlib.location.Location(latitude, longitude)
    sun = place.get_solarposition(middle)
    sky = place.get_clearsky(middle, model="ineichen", solar_position=sun)
    zen = sun["apparent_zenith"].to_numpy()[:, None]
    az = sun["azimuth"].to_numpy()[:, None]
    extra = np.asarray(pvlib.irradiance.get_extra_radiation(middle), dtype=float)[:, None]
    poa = pvlib.irradiance.get_total_irradiance(
        tilt[None, :], azimuth[None, :], zen, az,
        sky["dni"].to_numpy()[:, None], sky["ghi"].to_numpy()[:, None],
        sky["dhi"].to_numpy()[:, None], dni_extra=extra, model="haydavies",
    )  # fmt: skip
    out: F64 = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float))
    return np.maximum(np.broadcast_to(out, (len(index), len(tilt))), 0.0)


def orientation_and_index(
    index: pd.DatetimeIndex,
    pv_w_per_kwp: F64,
    latitude: float,
    longitude: float,
    tilt: F64,
    azimuth: F64,
) -> tuple[F64, F64]:
    """Each roof's factor on the regional series (steps, roofs) and the clear-sky index of
    each quarter hour (steps,), see the module docstring."""
    ft, fa, fw = _fleet()
    both = clear_sky_poa(index, latitude, longitude, np.r_[tilt, ft], np.r_[azimuth, fa])
    roofs, fleet = both[:, : len(tilt)], both[:, len(tilt) :] @ fw
    up = fleet > LOW_SUN_W_PER_M2
    kc = np.zeros(len(index))
    kc[up] = np.clip(pv_w_per_kwp[up] / (fleet[up] * PERFORMANCE_RATIO), 0.0, 1.0)
    ratio = np.ones_like(roofs)
    ratio[up] = roofs[up] / fleet[up, None]
    return 1.0 + kc[:, None] * (ratio - 1.0), kc


def flicker(
    kc: F64, starts: pd.DatetimeIndex, n: int, params: CloudParams, per: int = MINUTES_PER_QUARTER
) -> F64:
    """Minute multipliers (len(kc) * per, n), mean 1 per block of ``per`` minutes before
    the caps; ``kc`` per block, ``starts`` each block's first minute (UTC; blocks do not
    cross midnight). A UTC day's minutes are drawn whole from a generator seeded by
    :attr:`CloudParams.seed` and the day, so they do not depend on which blocks are asked for.
    """
    from scipy.signal import lfilter  # type: ignore[import-untyped]  # on demand: slow import

    phi = float(np.exp(-1.0 / params.tau_min))
    ns = np.asarray(pd.DatetimeIndex(starts).as_unit("ns").asi8, dtype=np.int64)
    days, minute_of_day = ns // _DAY_NS, (ns % _DAY_NS) // _MINUTE_NS
    out = np.empty((len(kc) * per, n))
    for day in np.unique(days):
        rows = np.flatnonzero(days == day)
        rng = np.random.default_rng([params.seed, int(day)])
        white = rng.standard_normal((_MINUTES_PER_DAY + 1, n + 1))
        first = white[0]
        ar = lfilter(
            [np.sqrt(1 - phi**2)], [1.0, -phi], white[1:], axis=0, zi=phi * first[None, :]
        )[0]
        at = (minute_of_day[rows, None] + np.arange(per)[None, :]).ravel()
        x = np.sqrt(params.shared) * ar[at, :1] + np.sqrt(1 - params.shared) * ar[at, 1:]
        sigma = params.sigma_at(np.repeat(kc[rows], per)[:, None])
        minutes = (rows[:, None] * per + np.arange(per)[None, :]).ravel()
        out[minutes] = np.exp(sigma * x - sigma**2 / 2)
    return out


def _hold_means(values: F64, means: F64, cap: F64, per: int) -> F64:
    """Each block of ``per`` rows moved back to its mean, within ``cap``: too much is scaled
    down, too little is filled in proportion to each minute's room below the cap (so a block
    keeps its mean unless the cap leaves too little room, e.g. an inverter's AC rating)."""
    shaped = np.minimum(
        values.reshape(means.shape[0], per, -1), cap.reshape(means.shape[0], per, -1)
    )
    capped = cap.reshape(shaped.shape)
    for _ in range(3):
        mean = shaped.mean(axis=1)
        down = np.divide(means, mean, out=np.ones_like(means), where=mean > means)
        shaped *= down[:, None, :]
        room = np.where(np.isfinite(capped), capped - shaped, 0.0)
        total = room.sum(axis=1)
        lack = np.maximum(means - shaped.mean(axis=1), 0.0) * per
        fill = np.divide(lack, total, out=np.zeros_like(lack), where=total > 0)
        shaped += room * np.minimum(fill, 1.0)[:, None, :]
    out: F64 = shaped.reshape(values.shape)
    return out


def pv_minutes(
    pv: Sequence[PvDevice],
    index: pd.DatetimeIndex,
    pv_w_per_kwp: F64,
    latitude: float,
    longitude: float,
    params: CloudParams,
) -> F64:
    """Available AC power of each inverter in each minute [W], shape (len(index) * 15,
    inverters); ``index``: UTC quarter-hour starts of ``pv_w_per_kwp`` [W/kWp]."""
    tilt, azimuth = orientations(pv, params.seed)
    factor, kc = orientation_and_index(index, pv_w_per_kwp, latitude, longitude, tilt, azimuth)
    peak = np.array([p.dc_peak_w for p in pv], dtype=float)
    rated = np.array([p.rated_w for p in pv], dtype=float)
    quarter = pv_w_per_kwp[:, None] * peak[None, :] / 1000.0 * factor
    smooth = within_quarter(quarter, MINUTES_PER_QUARTER)
    m = flicker(kc, index, len(pv), params)
    # At most kc_max times the clear sky: a minute's multiplier at most kc_max / kc.
    most = np.repeat(params.kc_max / np.maximum(kc, 1e-3), 15)[:, None]
    cap = np.minimum(np.where(most < 1e3, smooth * most, np.inf), rated[None, :])
    return _hold_means(smooth * m, quarter, cap, MINUTES_PER_QUARTER)


# -- the check against measured data ----------------------------------------------------------

#: DWD station data 2015 (Cologne), 15-minute GHI; see /work/shared/data/README.md.
CHECK_FILE = Path("../shared/data/weather/dwd_pv_data_2015.csv")
CHECK_PLACE = (50.94, 6.96)
BINS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.01)


def hourly_spread(kc15: F64) -> tuple[F64, F64]:
    """Hourly clear-sky index and the standard deviation of its four quarter hours."""
    hours = kc15[: kc15.size // 4 * 4].reshape(-1, 4)
    return hours.mean(axis=1), hours.std(axis=1)


def _by_bin(kc_h: F64, spread: F64) -> list[float]:
    out = []
    for low, high in itertools.pairwise(BINS):
        sel = (kc_h >= low) & (kc_h < high)
        out.append(float(spread[sel].mean()) if sel.any() else float("nan"))
    return out


def check(path: Path, params: CloudParams) -> pd.DataFrame:
    """Measured against modelled spread of quarter hours within the hour, by the hour's
    clear-sky index (hours with the sun above 15 degrees all hour)."""
    import pvlib

    raw = pd.read_csv(path, index_col=0, parse_dates=True)
    index = pd.DatetimeIndex(raw.index).tz_localize("UTC")
    ghi = raw["ghi"].to_numpy(float)
    place = pvlib.location.Location(*CHECK_PLACE)
    middle = index + pd.Timedelta(minutes=7.5)
    sun = place.get_solarposition(middle)
    sky = place.get_clearsky(middle, model="ineichen", solar_position=sun)["ghi"].to_numpy()
    n = ghi.size // 4 * 4
    high = (sun["apparent_elevation"].to_numpy()[:n].reshape(-1, 4) > 15).all(axis=1)
    kc15 = np.clip(np.divide(ghi, sky, out=np.zeros_like(ghi), where=sky > 0), 0.0, 1.5)[:n]
    kc_h, measured = hourly_spread(kc15)
    # The process run on the measured hourly means, 60 minutes a block, then to quarters.
    m = flicker(np.clip(kc_h, 0.0, 1.0), index[:n:4], 1, params, per=60)[:, 0]
    model_min = np.repeat(kc_h, 60) * m
    cap = np.full((model_min.size, 1), params.kc_max)
    model_min = _hold_means(model_min[:, None], kc_h[:, None], cap, 60)[:, 0]
    _, modelled = hourly_spread(model_min.reshape(-1, 15).mean(axis=1))
    rows = {
        "measured": _by_bin(kc_h[high], measured[high]),
        "model": _by_bin(kc_h[high], modelled[high]),
        "hours": [
            float(((kc_h[high] >= lo) & (kc_h[high] < hi)).sum())
            for lo, hi in itertools.pairwise(BINS)
        ],
    }
    labels = [f"{lo:.1f}-{min(hi, 1.0):.1f}" for lo, hi in itertools.pairwise(BINS)]
    return pd.DataFrame(rows, index=pd.Index(labels, name="hourly kc")).T


def site_stats(
    pv: Sequence[PvDevice], frame: pd.DataFrame, latitude: float, longitude: float, seed: int
) -> dict[str, float]:
    """How much a site's PV moves inside the quarter hour over ``frame`` (input schema):
    standard deviation over mean of the site's and of one inverter's minutes in daylight
    quarter hours (site PV above 20 % of its highest), the largest one-minute change [kW],
    and the energy against the regional profile times peak power."""
    index = pd.DatetimeIndex(frame.index)
    profile = frame["pv_w_per_kwp"].to_numpy(float)
    minutes = pv_minutes(pv, index, profile, latitude, longitude, CloudParams(seed=seed))
    peak = np.array([p.dc_peak_w for p in pv], dtype=float)
    rated = np.array([p.rated_w for p in pv], dtype=float)
    plain = np.clip(np.outer(profile, peak / 1000.0), 0.0, rated[None, :])
    q = minutes.reshape(-1, MINUTES_PER_QUARTER, len(pv))
    site = q.sum(axis=2)
    mean = site.mean(axis=1)
    day = mean > 0.2 * mean.max()
    rel = site.std(axis=1)[day] / mean[day]
    one = q.std(axis=1)[day] / np.maximum(q.mean(axis=1)[day], 1.0)
    return {
        "site_spread_median": float(np.median(rel)),
        "site_spread_p90": float(np.percentile(rel, 90)),
        "inverter_spread_median": float(np.median(one)),
        "largest_minute_change_kw": float(np.abs(np.diff(site.ravel())).max() / 1e3),
        "energy_ratio": float(q.mean(axis=1).sum() / plain.sum()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path, nargs="?", const=CHECK_FILE, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--site", type=Path, help="with --world: a site's PV in the noisy world")
    parser.add_argument("--world", type=int, metavar="SEED", help="the noisy world's seed")
    parser.add_argument("--months", type=int, nargs="*", default=[3, 6])
    args = parser.parse_args(argv)
    if args.check is not None:
        table = check(args.check, CloudParams(seed=args.seed))
        print("standard deviation of the 4 quarter-hour clear-sky indices within an hour")
        print(table.round(3).to_string())
    if args.site is not None and args.world is not None:
        from vpp.core.site import read_site
        from vpp.data import read_inputs, shipped_inputs
        from vpp.data.world import noisy_world, read_household

        site = read_site(args.site)
        world = noisy_world(read_inputs(shipped_inputs(2018)), read_household(), args.world)
        loc = site.site
        for month in args.months:
            index = pd.DatetimeIndex(world.index)
            part = world[(index.month == month) & (index.year == 2018)]
            stats = site_stats(site.pv, part, loc.latitude_deg, loc.longitude_deg, args.world)
            print(f"2018-{month:02d}: " + ", ".join(f"{k} {v:.3f}" for k, v in stats.items()))


if __name__ == "__main__":
    main()
