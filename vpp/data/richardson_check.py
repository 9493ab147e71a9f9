"""The check of the Richardson homes against the 74 measured HTW homes and BDEW H25
(``python -m vpp.data.richardson_check --check``; the tables of docs/replay-world.md): homes
from :mod:`vpp.data.richardson` and the noisy world's resampled homes from
:mod:`vpp.data.world`, side by side."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vpp.data import read_inputs, shipped_inputs
from vpp.data.richardson import (
    F64,
    PER_DAY,
    ROWS,
    home_stats,
    hourly,
    local_days,
    mean_day,
    read_htw_homes,
    richardson_homes,
)
from vpp.data.world import htw_homes, read_household, richardson_pool_homes


def _spread(stats: list[dict[str, float]], key: str, fmt: str) -> str:
    q10, q50, q90 = np.quantile([s[key] for s in stats], [0.1, 0.5, 0.9])
    return f"{fmt.format(q50)} ({fmt.format(q10)}-{fmt.format(q90)})"


def _check(seed: int, distinct: int, count: int, workers: int) -> None:
    tz = "Europe/Berlin"
    base = read_inputs(shipped_inputs(2018))
    index = pd.DatetimeIndex(base.index)
    day, quarter = local_days(index, tz)
    real = read_htw_homes()
    real_day = real.mean(axis=0)[: 364 * 24].reshape(364, 24).mean(axis=0)
    started = time.perf_counter()
    pool = richardson_homes(
        base["ghi_w_per_m2"].to_numpy(float), index, distinct, seed, tz, workers
    )
    took = time.perf_counter() - started
    worlds = {
        "htw": htw_homes(np.random.default_rng(seed), read_household(), index, count, tz),
        "richardson": richardson_pool_homes(np.random.default_rng(seed), pool, index, count, tz),
    }
    hourly_stats: dict[str, list[dict[str, float]]] = {}
    quarter_stats: dict[str, list[dict[str, float]]] = {}
    totals: dict[str, F64] = {}
    first74: dict[str, F64] = {}
    for name, homes in worlds.items():
        hourly_stats[name], quarter_stats[name] = [], []
        total = np.zeros(len(index))
        for i, x in enumerate(homes):
            h = hourly(x, day, quarter)
            hourly_stats[name].append(home_stats(h, 24, real_day))
            quarter_stats[name].append(home_stats(x, PER_DAY))
            total += x
            if i == real.shape[0] - 1:
                first74[name] = hourly(total, day, quarter)
        totals[name] = total
    measured = [home_stats(x, 24, real_day) for x in real]

    print(
        f"Richardson pool: {distinct} homes x {pool.shape[1]} days in {took:.0f} s "
        f"({took / distinct:.1f} s per home-year, {workers} worker(s)); seed {seed}, "
        f"{count} homes per world"
    )
    print()
    print(
        f"| one home, hourly means (median, P10-P90) | 74 measured HTW homes (2010) | "
        f"resampled HTW homes ({count}) | Richardson homes ({count} from {distinct}) |"
    )
    print("|---|---|---|---|")
    for label, key, fmt in ROWS:
        cells = [_spread(s, key, fmt) for s in (measured, *hourly_stats.values())]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print("| one home, quarter-hour means | resampled HTW homes | Richardson homes |")
    print("|---|---|---|")
    for label, key, fmt in ROWS[7:]:
        cells = [_spread(s, key, fmt) for s in quarter_stats.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")

    h25 = base["load_w_per_mwh_a"].to_numpy(float)
    h25_hourly = hourly(h25, day, quarter)
    measured_sum = real.sum(axis=0)
    print()
    print(
        "| sum of 74 homes, hourly | BDEW H25 (2018) | 74 measured HTW homes (2010) | "
        "74 resampled HTW homes | 74 Richardson homes |"
    )
    print("|---|---|---|---|---|")
    sums = [h25_hourly, measured_sum, first74["htw"], first74["richardson"]]
    months_2018 = index.tz_convert(tz).month.to_numpy()[::4][: len(h25_hourly)]
    months_2010 = pd.date_range("2010-01-01", periods=8760, freq="h").month.to_numpy()

    def winter_summer(x: F64, months: NDArray[np.int64]) -> float:
        return float(x[np.isin(months, (12, 1))].mean() / x[np.isin(months, (6, 7))].mean())

    agg = [home_stats(x, 24, real_day) for x in sums]
    for label, key, fmt in ROWS[1:]:
        print(f"| {label} | " + " | ".join(fmt.format(a[key]) for a in agg) + " |")
    ratios = [
        winter_summer(h25_hourly, months_2018),
        winter_summer(measured_sum, months_2010),
        winter_summer(first74["htw"], months_2018),
        winter_summer(first74["richardson"], months_2018),
    ]
    print("| mean power Dec+Jan / Jun+Jul | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")

    print()
    print(
        f"| sum of {count} homes, quarter hours, scaled to H25's energy | "
        "resampled HTW homes | Richardson homes |"
    )
    print("|---|---|---|")
    scaled = {k: v * h25.sum() / v.sum() for k, v in totals.items()}
    months = index.tz_convert(tz).month.to_numpy()

    def month_dev(x: F64) -> float:
        m = np.bincount(months, weights=x)[1:] / np.bincount(months, weights=h25)[1:]
        return float(np.abs(m - 1).max())

    lines = (
        ("correlation with H25", lambda x: np.corrcoef(x, h25)[0, 1]),
        (
            "mean absolute deviation from H25 / H25's mean",
            lambda x: np.abs(x - h25).mean() / h25.mean(),
        ),
        (
            "mean day: correlation with H25's",
            lambda x: np.corrcoef(mean_day(x, quarter), mean_day(h25, quarter))[0, 1],
        ),
        ("largest monthly energy off H25's (fraction)", month_dev),
    )
    for label, fn in lines:
        print(f"| {label} | " + " | ".join(f"{float(fn(x)):.3f}" for x in scaled.values()) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        required=True,
        help="compare with the measured household and BDEW H25; print tables",
    )
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--distinct-homes", type=int, default=24)
    parser.add_argument("--households", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    _check(args.seed, args.distinct_homes, args.households, args.workers)


if __name__ == "__main__":
    main()
