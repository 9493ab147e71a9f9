"""A noisier world for replay: the shipped year with its standard profiles replaced by
stochastic ones, seeded, in the same input schema.

The shipped inputs (``data/inputs_<year>.parquet``) take electric load, heat demand and the
data centre's IT load from standard profiles that the forecasts rebuild almost exactly; only
PV and prices carry forecast error. Replayed against them, a controller is never paid for
handling the noise of real households, heat networks and data centres. This module makes a
year file in which (see docs/replay-world.md for the figures it is checked against):

- ``load_w_per_mwh_a``: the sum of ``households`` homes, each a day-by-day resample of the
  measured household in ``data/household_htw_2010_quarter.parquet`` (quarter-hour means of a
  year of a real household from the HTW Berlin profiles, 4,675 kWh): every home takes each
  of its days from the same weekday of one of the five nearest weeks (so the season and the
  weekday stay; a holiday in Saxony lived as a Sunday, 24 and 31 December as a Saturday, the
  BDEW day types), moved by a home-specific offset of up to an hour either way, and scaled by a
  home-specific factor (lognormal, sigma 0.3); the sum is scaled to 1 MWh a year (its mean
  power to 1 MWh over 8,760 h, so a slice of the year keeps the year's level). (That
  file's quarter hours are hourly means of 18-19 of the 74 HTW homes, not one home's: see
  data/README.md; its homes are much smoother than a real home.) With ``model="richardson"``
  (``--households-model richardson``) the homes are resampled the same way, without the
  extra scale, from a pool of homes of the Richardson model simulated on the table's own
  days and irradiance (:mod:`vpp.data.richardson`);
- ``heat_w_per_mwh_a``: the shipped weather-driven profile times ``exp(AR(1))`` (sigma 0.10,
  correlation time 12 h: the heat network's own inertia and the days that are colder or
  warmer than the temperature profile says), less solar gains in proportion to the real
  irradiance (``ghi_w_per_m2``, 8 % of the mean demand at 1,000 W/m^2), at least zero,
  scaled back to the year's energy;
- ``it_load_ratio``: the shipped daily pattern plus AR(1) noise (sigma 0.03, 2 h) and batch
  jobs (on average two a week, 2-8 h long, +0.05..0.15 of the rated IT power), within
  0.3..1;
- ``pv_w_per_kwp``: the real national series times a local clear-sky index: ``exp(AR(1))``
  (sigma 0.25, 1 h) where the sun is up, capped so that no quarter hour exceeds 1.15 times
  the year's highest national value, scaled back to the year's energy. Per inverter and
  inside the quarter hour (roof orientation, a minute cloud process): :mod:`vpp.data.clouds`,
  which replay applies on top of this series (``ReplayOptions.clouds``,
  ``vpp replay --pv-clouds SEED``, ``bench/replay_year.py --world SEED``).

Prices, CO2, temperatures and irradiance stay the real ones. Everything draws from one
``numpy.random.Generator`` seeded by ``seed``: the same seed gives the same file.

Command: ``python -m vpp.data.world --out world_2018.parquet [--base
data/inputs_2018.parquet] [--seed 2018] [--households 400] [--households-model htw|richardson]
[--distinct-homes 24] [--workers N]`` (htw: about 5 s; richardson: the pool takes about 12 s of
CPU per simulated home-year; the file is 1.7 MB, so it is made rather than shipped),
then ``vpp replay --data world_2018.parquet ...`` or ``python bench/replay_year.py --world
2018`` (which builds the htw world).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vpp.data.profiles import saxony_holidays_in, slp_day_types
from vpp.data.richardson import local_days, richardson_homes
from vpp.data.schema import read_inputs, validate_inputs

F64 = NDArray[np.float64]

ROOT = Path(__file__).resolve().parents[2]
#: Quarter-hour means of one real household over 2010 (local time), W.
HOUSEHOLD_FILE = ROOT / "data" / "household_htw_2010_quarter.parquet"
PER_DAY = 96
STEP_H = 0.25
#: Hours of the year a profile per MWh/a is scaled over.
HOURS_PER_YEAR = 8760.0


def read_household(path: Path = HOUSEHOLD_FILE) -> F64:
    """The measured household, quarter-hour means [W], 365 days from a Friday (1 Jan 2010)."""
    values: F64 = pd.read_parquet(path)["household_w"].to_numpy(np.float64)
    return values


def ar1(rng: np.random.Generator, n: int, sigma: float, tau_h: float) -> F64:
    """A stationary AR(1) series of ``n`` quarter hours: standard deviation ``sigma``,
    correlation time ``tau_h`` [h]."""
    phi = float(np.exp(-STEP_H / tau_h))
    shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - phi**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for t in range(1, n):  # n is a year of quarter hours: fast enough in plain Python
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def _resampled(
    rng: np.random.Generator,
    pool: list[F64],
    offset: int,
    target_day: NDArray[np.int64],
    quarter: NDArray[np.int64],
    count: int,
    scale_sigma: float,
    day_shift: NDArray[np.int64],
) -> Iterator[F64]:
    """``count`` homes, home ``i`` resampled day by day from ``pool[i % len(pool)]`` (each
    ``(days, 96)``, local days, ``offset`` the pool day with target day 0's weekday): each
    target day from the weekday its homes live (its own moved by ``day_shift``, see
    :func:`lived_weekday_shift`) of one of the five nearest weeks, the whole home shifted
    by up to an hour and scaled by ``lognormal(0, scale_sigma)``."""
    n_days = int(target_day.max()) + 1
    for i in range(count):
        base = pool[i % len(pool)]
        days = base.shape[0]
        weeks = rng.integers(-2, 3, n_days)
        src = offset + np.arange(n_days) + day_shift[:n_days] + 7 * weeks
        src = np.where(src < 0, src + 7 * 5, src)
        src = np.where(src >= days, src - 7 * 5, src)
        # Pools shorter than seven weeks: fold by whole weeks (no-op for a year's pool).
        src = np.where(src < 0, src % 7, src)
        src = np.where(src >= days, src - 7 * ((src - days) // 7 + 1), src)
        shift = int(rng.integers(-4, 5))
        scale = float(rng.lognormal(0.0, scale_sigma))
        flat = base[np.clip(src, 0, days - 1)].ravel()
        pos = np.clip(target_day * PER_DAY + quarter + shift, 0, flat.size - 1)
        yield scale * flat[pos]


def lived_weekday_shift(index: pd.DatetimeIndex, tz: str) -> NDArray[np.int64]:
    """Per local day of ``index``: days (-3..3) from its weekday to the weekday its homes live
    by the BDEW day types: a holiday in Saxony as a Sunday, 24 and 31 December as a Saturday,
    any other day as itself (0)."""
    local = index.tz_convert(tz)
    first = local[0].normalize().tz_localize(None)
    n_days = int(local_days(index, tz)[0].max()) + 1
    dates = pd.Series(pd.date_range(first, periods=n_days, freq="D"))
    types = slp_day_types(dates, saxony_holidays_in(dates.dt.year))
    own = dates.dt.day_of_week.to_numpy(np.int64)
    lived = np.where(types == "FT", 6, np.where(types == "SA", 5, own))
    shift: NDArray[np.int64] = ((lived - own + 3) % 7 - 3).astype(np.int64)
    return shift


def htw_homes(
    rng: np.random.Generator, household_w: F64, index: pd.DatetimeIndex, count: int, tz: str
) -> Iterator[F64]:
    """``count`` homes resampled from the measured household ``household_w`` (see the module
    docstring) on ``index`` (UTC quarter hours), W, one array per home."""
    days = household_w.size // PER_DAY
    base = household_w[: days * PER_DAY].reshape(days, PER_DAY)
    # The source year starts on a Friday; find each target day's source day with its weekday.
    # Days are counted on the local calendar, so a summer-time day keeps its own weekday.
    target_day, quarter = local_days(index, tz)
    first_weekday = index.tz_convert(tz)[0].weekday()  # Monday = 0
    offset = (first_weekday - 4) % 7  # source day with the same weekday as target day 0
    shift = lived_weekday_shift(index, tz)
    yield from _resampled(rng, [base], offset, target_day, quarter, count, 0.3, shift)


def households(
    rng: np.random.Generator, household_w: F64, index: pd.DatetimeIndex, count: int, tz: str
) -> F64:
    """Sum of ``count`` homes resampled from ``household_w`` (see the module docstring) on
    ``index`` (UTC quarter hours), W."""
    total = np.zeros(len(index))
    for home in htw_homes(rng, household_w, index, count, tz):
        total += home
    return total


def richardson_pool_homes(
    rng: np.random.Generator, pool: F64, index: pd.DatetimeIndex, count: int, tz: str
) -> Iterator[F64]:
    """``count`` homes resampled from the simulated ``pool`` (``(homes, days, 96)`` on the local
    days of ``index``, :func:`vpp.data.richardson.richardson_homes`), W, one array per home;
    no extra scale (the model draws each home's size and appliances)."""
    target_day, quarter = local_days(index, tz)
    shift = lived_weekday_shift(index, tz)
    yield from _resampled(rng, list(pool), 0, target_day, quarter, count, 0.0, shift)


HOUSEHOLD_MODELS = ("htw", "richardson")


def noisy_world(
    base: pd.DataFrame,
    household_w: F64,
    seed: int,
    count: int = 400,
    tz: str = "Europe/Berlin",
    model: str = "htw",
    distinct: int = 24,
    workers: int = 1,
) -> pd.DataFrame:
    """The year ``base`` (input schema) with stochastic load, heat, IT load and local PV.

    ``model``: the homes, ``htw`` (resampled from the measured ``household_w``) or
    ``richardson`` (resampled from ``distinct`` homes of the Richardson model, simulated on
    ``base``'s days and irradiance with ``workers`` processes; ``household_w`` unused). Over
    a whole year (or any table ending in winter time) both draw the same numbers for heat, IT
    load and PV: for a seed only the load differs.
    """
    if model not in HOUSEHOLD_MODELS:
        raise ValueError(f"households model: one of {', '.join(HOUSEHOLD_MODELS)}, got {model!r}")
    rng = np.random.default_rng(seed)
    out = base.copy()
    index = pd.DatetimeIndex(base.index)
    n = len(index)
    hours = n * STEP_H

    if model == "htw":
        load = households(rng, household_w, index, count, tz)
    else:
        if "ghi_w_per_m2" not in base:
            raise ValueError("ghi_w_per_m2: the richardson homes need the irradiance column")
        pool = richardson_homes(
            base["ghi_w_per_m2"].to_numpy(float), index, distinct, seed, tz, workers
        )
        load = np.zeros(n)
        for home in richardson_pool_homes(rng, pool, index, count, tz):
            load += home
    # 1 MWh a year: the mean power of 1 MWh over 8,760 h, over a slice as over a year.
    out["load_w_per_mwh_a"] = load * (1e6 / HOURS_PER_YEAR) / load.mean()

    heat = base["heat_w_per_mwh_a"].to_numpy(float)
    ghi = base["ghi_w_per_m2"].to_numpy(float) if "ghi_w_per_m2" in base else np.zeros(n)
    noisy = heat * np.exp(ar1(rng, n, 0.10, 12.0)) - 0.08 * heat.mean() * ghi / 1000.0
    noisy = np.maximum(noisy, 0.0)
    out["heat_w_per_mwh_a"] = noisy * heat.sum() / noisy.sum()

    if "it_load_ratio" in base:
        it = base["it_load_ratio"].to_numpy(float) + ar1(rng, n, 0.03, 2.0)
        jobs = rng.poisson(2.0 * hours / (7 * 24))
        for _ in range(int(jobs)):
            start = int(rng.integers(0, n))
            length = int(rng.integers(8, 33))
            it[start : start + length] += rng.uniform(0.05, 0.15)
        out["it_load_ratio"] = np.clip(it, 0.3, 1.0)

    pv = base["pv_w_per_kwp"].to_numpy(float)
    index_ = np.exp(ar1(rng, n, 0.25, 1.0))
    local = np.minimum(pv * index_, 1.15 * pv.max())
    out["pv_w_per_kwp"] = local * pv.sum() / local.sum() if local.sum() > 0 else pv
    return validate_inputs(out, "noisy world")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=ROOT / "data" / "inputs_2018.parquet")
    parser.add_argument("--household", type=Path, default=HOUSEHOLD_FILE)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--households", type=int, default=400)
    parser.add_argument(
        "--households-model",
        choices=HOUSEHOLD_MODELS,
        default="htw",
        help="htw: resampled from the measured household; richardson: the Richardson model",
    )
    parser.add_argument(
        "--distinct-homes",
        type=int,
        default=24,
        help="richardson: homes simulated (the rest resampled from them)",
    )
    parser.add_argument("--workers", type=int, default=1, help="richardson: processes")
    parser.add_argument("--out", type=Path, required=True, help="the year file to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    world = noisy_world(
        read_inputs(args.base),
        read_household(args.household),
        args.seed,
        args.households,
        model=args.households_model,
        distinct=args.distinct_homes,
        workers=args.workers,
    )
    world.to_parquet(args.out, compression="zstd")
    print(
        f"{args.out}: {len(world)} quarter hours, seed {args.seed}, {args.households} homes "
        f"({args.households_model}), {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
