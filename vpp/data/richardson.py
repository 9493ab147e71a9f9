"""Stochastic households from the Richardson model (``richardsonpy``), for the noisy world.

The Richardson model (Richardson, Thomson, Infield, Clifford: "Domestic electricity use: a
high-resolution energy demand model", Energy and Buildings 42 (2010) 1878-1887; Python port
``richardsonpy`` of RWTH-EBC, GPL-3.0, installed with the ``world`` extra) simulates one
dwelling minute by minute: a Markov chain of active occupants in ten-minute steps (weekday and
weekend transition matrices per household size, 1-5 persons), lighting switched on by active
occupants when the outdoor global irradiance is below the home's threshold (60 +- 10 W/m^2),
and 33 appliances started with time-of-day activity probabilities, their ownership drawn per
home and their use calibrated to an annual energy.

Per home (:func:`simulate_home`):

- occupants: the German shares of household sizes, Destatis Mikrozensus 2018 (press release
  of 11 July 2019, "Jede fünfte Person lebte 2018 in einem Einpersonenhaushalt"): 1 person
  42 %, 2 persons 34 %, 3 persons 12 %, 4 persons 9 %, 5 or more 3 % (simulated as 5, the
  model's largest size). The homes of a pool get their sizes from these shares by the
  largest remainder (24 homes: 10 / 8 / 3 / 2 / 1), in a seeded order;
- appliances: drawn per home from the model's ownership rates, no electric space or water
  heating (``prev_heat_dev``: the district is heated by its heat network), calibrated to the
  model's single-family-house energy for the household size (2,700 / 3,200 / 4,000 / 4,400 /
  5,500 kWh a year, 91 % appliances, the rest lighting);
- lighting: one of the model's 100 bulb sets, drawn per home; the irradiance is the input
  table's real global horizontal irradiance (``ghi_w_per_m2``), held over each quarter hour;
- days: local (Europe/Berlin) days; Saturdays, Sundays, Saxony's public holidays and 24/31
  December use the weekend statistics; the occupancy chain runs on across midnight (the
  appliances restart each day, as in the model);
- output: quarter-hour means of the minute power [W].

Seeds: ``richardsonpy`` draws from Python's global ``random`` module. Each home seeds it with
``numpy.random.SeedSequence([seed, home])`` before it is simulated and the caller's state is
restored afterwards, so a home depends only on ``(seed, home)``: the same seed gives the same
homes in any order and with any number of worker processes. Not thread-safe (the global
state): run homes in processes, not threads.

Speed: the model is pure Python, about 12 s of CPU per household-year on the development
machine, so 400 homes would take well over an hour. The world simulates a pool of
``distinct`` homes (default 24: about 5 min of CPU) and builds its 400 homes from them as it
does from the one measured household file: each home takes each day from the same weekday
of one of the five nearest weeks of its pool home, shifted by up to an hour
(:mod:`vpp.data.world`).

The check against the 74 measured HTW homes and the BDEW H25 profile:
``python -m vpp.data.richardson_check --check [--seed 2018] [--distinct-homes 24]``
(table in docs/replay-world.md).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vpp.data.profiles import saxony_holidays_in

F64 = NDArray[np.float64]

PER_DAY = 96
MINUTES = 1440

#: Shares of private households by size, Germany, Mikrozensus 2018 (Destatis).
OCCUPANT_SHARES: dict[int, float] = {1: 0.42, 2: 0.34, 3: 0.12, 4: 0.09, 5: 0.03}
#: Annual energy the model's appliances are calibrated to, by household size [kWh]
#: (richardsonpy's single-family-house values).
ANNUAL_KWH: dict[int, float] = {1: 2700.0, 2: 3200.0, 3: 4000.0, 4: 4400.0, 5: 5500.0}
#: Share of the annual energy for appliances (the model's default; the rest is lighting).
APPLIANCE_SHARE = 0.91
LIGHT_CONFIGURATIONS = 100


def occupant_counts(count: int, rng: np.random.Generator) -> list[int]:
    """Household sizes of ``count`` homes: :data:`OCCUPANT_SHARES` by the largest remainder,
    in an order drawn from ``rng``."""
    if count < 1:
        raise ValueError(f"distinct homes: at least 1, got {count}")
    quota = {n: share * count for n, share in OCCUPANT_SHARES.items()}
    sizes = {n: int(q) for n, q in quota.items()}
    rest = count - sum(sizes.values())
    for n in sorted(quota, key=lambda n: quota[n] - sizes[n], reverse=True)[:rest]:
        sizes[n] += 1
    flat = [n for n, k in sizes.items() for _ in range(k)]
    return [flat[i] for i in rng.permutation(count)]


def home_seed(seed: int, home: int) -> int:
    """The seed of Python's ``random`` for home ``home`` of world ``seed``."""
    return int(np.random.SeedSequence([seed, home]).generate_state(1)[0])


def simulate_home(
    occupants: int,
    irradiance_w_per_m2: F64,
    weekend: Iterable[bool],
    day_of_year: Iterable[int],
    seed: int,
    step_min: int = 15,
) -> F64:
    """One home over ``len(weekend)`` local days: mean power [W] over steps of ``step_min``
    minutes (a divisor of 1440), shape ``(days, 1440 // step_min)``.

    ``irradiance_w_per_m2``: outdoor global horizontal irradiance per minute of each day
    [W/m^2], shape ``(days, 1440)``; ``weekend``: the day uses the weekend statistics;
    ``day_of_year``: 1..366 (the model's month); ``seed``: Python ``random``'s seed for this
    home (:func:`home_seed`).
    """
    import richardsonpy
    from richardsonpy.classes.appliance import Appliances
    from richardsonpy.classes.lighting import load_lighting_profile
    from richardsonpy.classes.occupancy import Occupancy
    from richardsonpy.classes.stochastic_el_load_wrapper import ElectricityProfile

    if step_min < 1 or MINUTES % step_min:
        raise ValueError(f"step_min: a divisor of 1440, got {step_min}")
    if occupants not in ANNUAL_KWH:
        raise ValueError(f"occupants: 1..5, got {occupants}")
    weekends = [bool(w) for w in weekend]
    days = list(day_of_year)
    irr = np.asarray(irradiance_w_per_m2, dtype=np.float64)
    if irr.shape != (len(weekends), MINUTES) or len(days) != len(weekends):
        raise ValueError(
            f"irradiance_w_per_m2: shape (days, 1440) with days = {len(weekends)}, got "
            f"{irr.shape} ({len(days)} days of year)"
        )
    inputs = Path(richardsonpy.__file__).parent / "inputs"
    saved = random.getstate()
    random.seed(seed)
    try:
        # A burn-in day before the first one sets the occupancy chain's state.
        occupancy = Occupancy(occupants, initial_day=6 if weekends[0] else 1, nb_days=1)
        appliances = Appliances(
            str(inputs / "Appliances.csv"),
            annual_consumption=APPLIANCE_SHARE * ANNUAL_KWH[occupants],
            randomize_appliances=True,
            prev_heat_dev=True,
        )
        bulbs = load_lighting_profile(
            str(inputs / "LightBulbs.csv"), index=random.randrange(LIGHT_CONFIGURATIONS)
        )
        profile = ElectricityProfile(appliances, bulbs)
        per_day = MINUTES // step_min
        out = np.empty((len(weekends), per_day))
        for d, (is_weekend, doy) in enumerate(zip(weekends, days, strict=True)):
            # The chain's next day (Occupancy keeps its last state); pinned version, see
            # pyproject.toml.
            active = occupancy._get_occupancy(is_weekend)
            total, _, _ = profile.power_sim(
                irradiation=irr[d], weekend=is_weekend, day=int(doy), occupancy=active
            )
            out[d] = np.asarray(total, dtype=np.float64).reshape(per_day, step_min).mean(axis=1)
    finally:
        random.setstate(saved)
    return out


def _simulate(args: tuple[int, F64, list[bool], list[int], int]) -> F64:
    return simulate_home(*args)


def local_days(index: pd.DatetimeIndex, tz: str) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Day number (0 = the first local day) and local quarter of the day (0..95) of each UTC
    quarter hour of ``index``."""
    local = index.tz_convert(tz)
    day = (local.normalize().tz_localize(None) - local[0].normalize().tz_localize(None)).days
    quarter = local.hour * 4 + local.minute // 15
    return day.to_numpy(np.int64), quarter.to_numpy(np.int64)


def day_calendar(index: pd.DatetimeIndex, tz: str) -> tuple[list[bool], list[int]]:
    """Per local day of ``index``: weekend statistics (Saturday, Sunday, a Saxony holiday,
    24/31 December) and day of year."""
    local = index.tz_convert(tz)
    first = local[0].normalize().tz_localize(None)
    n_days = int(local_days(index, tz)[0].max()) + 1
    dates = pd.date_range(first, periods=n_days, freq="D")
    holidays = saxony_holidays_in(dates.year)
    weekend = [
        d.weekday() >= 5 or d.date() in holidays or (d.month == 12 and d.day in (24, 31))
        for d in dates
    ]
    return weekend, [int(d.day_of_year) for d in dates]


def minute_irradiance(ghi_w_per_m2: F64, index: pd.DatetimeIndex, tz: str) -> F64:
    """The quarter-hour irradiance on ``index`` as ``(days, 1440)`` local minutes, each quarter
    hour held for its 15 minutes (the hour missing at the spring clock change takes the hour
    before it)."""
    day, quarter = local_days(index, tz)
    grid = np.full((int(day.max()) + 1) * PER_DAY, np.nan)
    grid[day * PER_DAY + quarter] = ghi_w_per_m2
    filled = pd.Series(grid).ffill().bfill().to_numpy(np.float64)
    return np.repeat(filled, 15).reshape(-1, MINUTES)


def richardson_homes(
    ghi_w_per_m2: F64,
    index: pd.DatetimeIndex,
    distinct: int,
    seed: int,
    tz: str = "Europe/Berlin",
    workers: int = 1,
) -> NDArray[np.float64]:
    """``distinct`` simulated homes on the local days of ``index`` (UTC quarter hours), with
    the irradiance ``ghi_w_per_m2`` [W/m^2] on that index: quarter-hour means [W], shape
    ``(distinct, days, 96)`` (local day, local quarter)."""
    if workers < 1:
        raise ValueError(f"workers: at least 1, got {workers}")
    irr = minute_irradiance(np.asarray(ghi_w_per_m2, dtype=np.float64), index, tz)
    weekend, doy = day_calendar(index, tz)
    sizes = occupant_counts(distinct, np.random.default_rng([seed, 0x5EED]))
    jobs = [(n, irr, weekend, doy, home_seed(seed, h)) for h, n in enumerate(sizes)]
    if workers == 1:
        homes = [_simulate(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            homes = list(pool.map(_simulate, jobs))
    return np.stack(homes)


#: The 74 measured homes of the HTW Berlin set, hourly means [W], 2010 local time.
HTW_HOMES_FILE = Path(__file__).resolve().parents[2] / "data" / "households_htw_2010_hourly.parquet"


def read_htw_homes(path: Path = HTW_HOMES_FILE) -> F64:
    """The 74 measured homes, hourly means [W], shape ``(74, 8760)``, 2010 from a Friday."""
    return pd.read_parquet(path).to_numpy(np.float64).T


def hourly(x: F64, day: NDArray[np.int64], quarter: NDArray[np.int64]) -> F64:
    """Hourly means of quarter-hour power ``x`` by local day and hour."""
    slot = day * 24 + quarter // 4
    counts = np.bincount(slot)
    return (np.bincount(slot, weights=x) / np.maximum(counts, 1))[counts > 0]


def home_stats(x: F64, per_day: int, reference: F64 | None = None) -> dict[str, float]:
    """Figures of one home's power ``x`` [W], ``per_day`` values a day from midnight: annual
    energy [kWh], the spread of its daily energies (CV; P10, P90 over the mean), its mean day
    (hour of its highest value, the evening peak 17-22 h over the day's mean, correlation with
    ``reference``, a mean day of the same length), its variability (CV, mean absolute step over
    the mean) and its autocorrelation at 1 h and at 24 h."""
    days = x.size // per_day
    table = x[: days * per_day].reshape(days, per_day)
    daily = table.mean(axis=1)
    profile = table.mean(axis=0)
    per_hour = per_day // 24
    out = {
        "kwh_a": float(x.mean() * 8760 / 1000),
        "daily_cv": float(daily.std() / daily.mean()),
        "daily_p10": float(np.quantile(daily, 0.1) / daily.mean()),
        "daily_p90": float(np.quantile(daily, 0.9) / daily.mean()),
        "peak_hour": float(np.argmax(profile) / per_hour),
        "evening_peak": float(profile[17 * per_hour : 22 * per_hour].max() / profile.mean()),
        "cv": float(x.std() / x.mean()),
        "step": float(np.abs(np.diff(x)).mean() / x.mean()),
        "acf_1h": float(np.corrcoef(x[:-per_hour], x[per_hour:])[0, 1]),
        "acf_24h": float(np.corrcoef(x[: -24 * per_hour], x[24 * per_hour :])[0, 1]),
    }
    if reference is not None:
        out["profile_corr"] = float(np.corrcoef(profile, reference)[0, 1])
    return out


ROWS = (
    ("annual energy [kWh]", "kwh_a", "{:.0f}"),
    ("daily energy: CV over the days", "daily_cv", "{:.2f}"),
    ("daily energy: P10 / mean", "daily_p10", "{:.2f}"),
    ("daily energy: P90 / mean", "daily_p90", "{:.2f}"),
    ("mean day: correlation with the 74 homes' mean day", "profile_corr", "{:.2f}"),
    ("mean day: hour of the highest value", "peak_hour", "{:.1f}"),
    ("mean day: evening peak (17-22 h) / mean", "evening_peak", "{:.2f}"),
    ("CV of the values", "cv", "{:.2f}"),
    ("mean absolute step / mean", "step", "{:.2f}"),
    ("autocorrelation at 1 h", "acf_1h", "{:.2f}"),
    ("autocorrelation at 24 h", "acf_24h", "{:.2f}"),
)


def mean_day(x: F64, quarter: NDArray[np.int64]) -> F64:
    """Mean over the days of ``x`` per local quarter of the day (96 values)."""
    counts = np.bincount(quarter, minlength=PER_DAY)
    return np.bincount(quarter, weights=x, minlength=PER_DAY) / np.maximum(counts, 1)
