"""Learned quantile forecasts (P10/P50/P90) of heat demand, electric base load and PV.

One LightGBM quantile model per quantity and quantile, refitted once per local day on a
rolling window of the history known at that day's local midnight, and used for every plan of
the day. The planner takes P50 in place of the rule forecast of :mod:`vpp.forecast`; P10 and
P90 give the spread (grid-limit margin, forecast metrics). Where less than
``min_train_days`` of history are known the rule forecasts stay (and no spread is given).

Known at an as-of moment (the cutoff ``c = floor(now)``, as in :func:`vpp.forecast.cutoffs`):
the quarter hours before ``c``. Features of a target quarter hour ``t = c + lead`` use only
those (:func:`features`):

- ``lead``: quarter hours from the cutoff to ``t`` (0 = the quarter hour starting at ``c``);
- calendar of ``t``: local wall-clock slot (0..95), SLP day type (working day, Saturday,
  Sunday/holiday in Saxony), clear-sky GHI [W/m^2] at the site;
- lags of the quantity: the last measured quarter hour ``y[c-1]``, its change against the
  same time a day earlier, the latest known value at ``t``'s time of day (``t - n days``,
  smallest ``n`` before ``c``), the value a week before ``t``, the mean of the last 24 h;
- weather as measured (the rule forecasts use no weather forecast either): outdoor
  temperature of the last quarter hour, the mean of the last 24 h and of the 24 h before;
- for PV: the clear-sky index of the last hour and of the last day.

Training rows are the same features at cutoffs drawn (seeded) from the window, every lead of
the horizon for each, targets before the day's midnight only. Everything is deterministic:
fixed seeds, one thread, LightGBM's deterministic mode.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from vpp.core.site import Site
from vpp.data.schema import COLUMNS, STEP
from vpp.data.timegrid import LOCAL_TZ
from vpp.forecast import ForecastSettings, clear_sky_ghi
from vpp.forecast.demand import day_type
from vpp.sources.daymap import local_calendar

#: The quantiles each model gives, in this order.
QUANTILES = (0.1, 0.5, 0.9)
#: Raw columns with learned forecasts.
LEARNED_COLUMNS = ("heat_w_per_mwh_a", "load_w_per_mwh_a", "pv_w_per_kwp")
#: Quarter hours per day and per week.
DAY_Q = 96
WEEK_Q = 7 * DAY_Q
_DAY_TYPES = {"WT": 0, "SA": 1, "FT": 2}
_TEMP = "outdoor_temp_c"

#: Reads the raw history over ``[start, end)`` (the controller's input source).
HistoryReader = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass(frozen=True)
class LearnedSettings:
    """Window, sampling and model size of the learned forecasts."""

    #: Days of history each day's models are fitted on (rolling window).
    train_days: int = 28
    #: Fewer known days than this: the rule forecasts are used.
    min_train_days: int = 14
    #: As-of cutoffs drawn per training day, and leads drawn per cutoff.
    cutoffs_per_day: int = 16
    leads_per_cutoff: int = 24
    #: Leads the models are trained for [quarter hours]; longer ones use the last.
    horizon_steps: int = 144
    #: Days at the end of the window held out to widen the band (conformal); 0: none.
    calibration_days: int = 4
    #: Share of the held-out days' truth the band is widened to hold.
    coverage: float = 0.8
    trees: int = 60
    leaves: int = 15
    learning_rate: float = 0.1
    min_rows_per_leaf: int = 40
    seed: int = 7

    def __post_init__(self) -> None:
        if self.min_train_days < 2 or self.min_train_days > self.train_days:
            raise ValueError(
                f"min_train_days must be between 2 and train_days ({self.train_days}), "
                f"not {self.min_train_days}"
            )
        if not 0 <= self.calibration_days < self.min_train_days - 1:
            raise ValueError(
                f"calibration_days must be between 0 and min_train_days - 2 "
                f"({self.min_train_days - 2}), not {self.calibration_days}"
            )
        if self.cutoffs_per_day < 1:
            raise ValueError(f"cutoffs_per_day must be at least 1, not {self.cutoffs_per_day}")

    @property
    def lookback(self) -> pd.Timedelta:
        """History a refit reads: the window plus the week its lags reach back."""
        return pd.Timedelta(days=self.train_days + 8)


@dataclass(frozen=True)
class Grid:
    """Known values on a regular quarter-hour grid from ``start`` (UTC); NaN = not known."""

    start: pd.Timestamp
    values: dict[str, np.ndarray]
    #: Local slot, day type and clear-sky GHI of every grid position.
    slot: np.ndarray
    day_type: np.ndarray
    sky: np.ndarray

    def position(self, when: pd.Timestamp) -> int:
        return int((when - self.start) // STEP)


def make_grid(
    history: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    cutoff: pd.Timestamp,
    settings: ForecastSettings,
) -> Grid:
    """The columns of ``history`` known before ``cutoff`` on the grid ``[start, end)``."""
    index = pd.date_range(start, end, freq=STEP, inclusive="left", tz="UTC")
    known = history[(history.index >= start) & (history.index < cutoff)]
    values = {}
    for name in (*LEARNED_COLUMNS, _TEMP):
        if name in known.columns:
            values[name] = known[name].reindex(index).to_numpy(dtype=float)
        else:
            values[name] = np.full(len(index), np.nan)
    days, slot = local_calendar(index, LOCAL_TZ)
    types = {d: _DAY_TYPES.get(day_type(d), 0) for d in np.unique(days)}
    codes = np.array([types[d] for d in days], dtype=float)
    return Grid(start, values, slot.astype(float), codes, clear_sky_ghi(index, settings))


def _at(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``a[pos]``, NaN where ``pos`` falls off the grid."""
    ok = (pos >= 0) & (pos < len(a))
    out = np.full(len(pos), np.nan)
    out[ok] = a[pos[ok]]
    return out


def _window_mean(a: np.ndarray, end: np.ndarray, length: int) -> np.ndarray:
    """Mean of ``a[end - length : end]`` per entry, ignoring NaN (NaN if all are)."""
    finite = np.isfinite(a)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, a, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    hi = np.clip(end, 0, len(a))
    lo = np.clip(end - length, 0, len(a))
    n = ccount[hi] - ccount[lo]
    mean: np.ndarray = np.where(n > 0, (csum[hi] - csum[lo]) / np.maximum(n, 1), np.nan)
    return mean


def _window_sum(a: np.ndarray, end: np.ndarray, length: int) -> np.ndarray:
    csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(a))])
    hi = np.clip(end, 0, len(a))
    lo = np.clip(end - length, 0, len(a))
    total: np.ndarray = csum[hi] - csum[lo]
    return total


def _sky_index(grid: Grid, cutoff: np.ndarray, length: int) -> np.ndarray:
    """Clear-sky index (PV over clear-sky GHI) of the ``length`` quarter hours before each
    cutoff; NaN where the sky was dark."""
    sky = _window_sum(grid.sky, cutoff, length)
    pv = _window_sum(grid.values["pv_w_per_kwp"], cutoff, length)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sky > 1.0, pv / sky, np.nan)


def _pv_rule(grid: Grid, pos: np.ndarray, cutoff: np.ndarray) -> np.ndarray:
    """The rule forecast of :func:`vpp.forecast.forecast_solar` (default settings) on the
    grid: half the mean of the last three known days at the same time of day, half the
    clear-sky GHI times those days' clear-sky index, nudged towards the last half hour's
    clear-sky index with weight ``exp(-lead / 4 h)``."""
    y = grid.values["pv_w_per_kwp"]
    sky = _at(grid.sky, pos)
    first = np.maximum((pos - cutoff) // DAY_Q + 1, 1)
    days = np.stack([_at(y, pos - (first + k) * DAY_Q) for k in range(3)])
    found = np.isfinite(days).sum(axis=0)
    persistence = np.where(found > 0, np.nansum(days, axis=0) / np.maximum(found, 1), np.nan)
    clear = sky * np.nan_to_num(_sky_index(grid, cutoff, 3 * DAY_Q))
    blend = np.where(np.isnan(persistence), clear, 0.5 * persistence + 0.5 * clear)
    now = _sky_index(grid, cutoff, 2)
    weight = np.exp(-np.maximum(pos - cutoff, 0) * 0.25 / 4.0)
    nudged = weight * sky * now + (1.0 - weight) * blend
    dark = np.isnan(now) | (_window_sum(grid.sky, cutoff, 2) < 60.0)
    rule: np.ndarray = np.where(dark, blend, nudged)
    return rule


def base_at(column: str, grid: Grid, pos: np.ndarray, cutoff: np.ndarray) -> np.ndarray:
    """The reference each model predicts the deviation from, at grid positions ``pos`` as
    known before ``cutoff``: heat demand the latest known value at the same time of day;
    base load the value a week earlier; PV the rule forecast (:func:`_pv_rule`)."""
    y = grid.values[column]
    if column == "pv_w_per_kwp":
        return _pv_rule(grid, pos, cutoff)
    if column == "load_w_per_mwh_a":
        return _at(y, pos - WEEK_Q)
    back = np.maximum((pos - cutoff) // DAY_Q + 1, 1)
    return _at(y, pos - back * DAY_Q)


def features(column: str, grid: Grid, cutoff: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Feature rows (see the module's docstring) for targets ``cutoff + lead`` (grid
    positions); only grid values before each row's ``cutoff`` are read. Column 4 is the
    reference :func:`base_at` of the target."""
    y = grid.values[column]
    target = cutoff + lead
    base = base_at(column, grid, target, cutoff)
    last = cutoff - 1
    back_days = lead // DAY_Q + 1  # smallest n with target - n days < cutoff
    recent = np.zeros(len(cutoff))
    for k in range(1, 5):  # the last hour's mean deviation from the reference
        recent += _at(y, cutoff - k) - base_at(column, grid, cutoff - k, cutoff)
    temp = grid.values[_TEMP]
    temp_day = _window_mean(temp, cutoff, DAY_Q)
    cols = [
        lead.astype(float),
        _at(grid.slot, target),
        _at(grid.day_type, target),
        _at(grid.sky, target),
        base,
        _at(y, last) - base_at(column, grid, last, cutoff),
        recent / 4.0,
        _at(y, target - back_days * DAY_Q) - base,
        _at(y, target - WEEK_Q) - base,
        _window_mean(y, cutoff, DAY_Q),
        _at(temp, last),
        temp_day,
        temp_day - _window_mean(temp, cutoff - DAY_Q, DAY_Q),
    ]
    if column == "pv_w_per_kwp":
        kday = _sky_index(grid, cutoff, DAY_Q)
        khour = _sky_index(grid, cutoff, 4)
        cols += [kday, khour, (khour - kday) * _at(grid.sky, target)]
    return np.column_stack(cols)


def _params(settings: LearnedSettings, alpha: float) -> dict[str, object]:
    return {
        "objective": "quantile",
        "alpha": alpha,
        "num_leaves": settings.leaves,
        "learning_rate": settings.learning_rate,
        "min_data_in_leaf": settings.min_rows_per_leaf,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "seed": settings.seed,
        "max_bin": 63,
        "verbosity": -1,
    }


def training_rows(
    column: str,
    grid: Grid,
    midnight: int,
    settings: LearnedSettings,
    rng: np.random.Generator,
    first: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets (deviations from the reference, column 4) at seeded cutoffs in
    ``[first, midnight)`` (default: the training window before grid position ``midnight``);
    only targets before ``midnight`` (known then) are kept."""
    if first is None:
        first = max(midnight - settings.train_days * DAY_Q, WEEK_Q + DAY_Q)
    y = grid.values[column]
    n_cut = settings.cutoffs_per_day * max((midnight - first) // DAY_Q, 1)
    cut = np.repeat(np.sort(rng.integers(first, midnight, size=n_cut)), settings.leads_per_cutoff)
    # Leads drawn log-uniformly: the first hours, where the nowcast matters, get more rows.
    span = np.log(settings.horizon_steps)
    lead = np.floor(np.exp(rng.uniform(0.0, span, size=len(cut)))).astype(int) - 1
    keep = cut + lead < midnight
    cut, lead = cut[keep], lead[keep]
    x = features(column, grid, cut, lead)
    target = y[cut + lead] - x[:, 4]
    known = np.isfinite(target)
    return x[known], target[known]


#: Upper ends [quarter hours] of the lead buckets the band is widened per (conformal).
LEAD_BUCKETS = (4, 16, 48, 10**6)


@dataclass(frozen=True)
class Models:
    """A day's boosters per quantile, and how far to move P10 down and P90 up per lead
    bucket (:data:`LEAD_BUCKETS`; negative narrows) so that the held-out calibration days
    had 80 % inside the band."""

    boosters: list[lgb.Booster]
    widen: np.ndarray


def conformal_widening(
    low: np.ndarray, high: np.ndarray, actual: np.ndarray, lead: np.ndarray, coverage: float
) -> np.ndarray:
    """Per lead bucket, the ``coverage`` quantile of ``max(low - y, y - high)`` over the
    calibration rows (conformalized quantile regression, Romano et al. 2019): moving both
    ends out by it covers that share of those rows. Buckets with fewer than 30 rows take
    the value over all rows (0 if there are none)."""
    score = np.maximum(low - actual, actual - high)

    def level(values: np.ndarray) -> float:
        n = len(values)
        q = min(1.0, np.ceil((n + 1) * coverage) / n)
        return float(np.quantile(values, q, method="higher"))

    overall = level(score) if len(score) else 0.0
    out = np.full(len(LEAD_BUCKETS), overall)
    lo = 0
    for i, hi in enumerate(LEAD_BUCKETS):
        mine = score[(lead >= lo) & (lead < hi)]
        if len(mine) >= 30:
            out[i] = level(mine)
        lo = hi
    return out


class LearnedForecaster:
    """Quantile models per quantity, fitted once per local day and cached for the day."""

    def __init__(
        self,
        settings: LearnedSettings | None = None,
        forecast_settings: ForecastSettings | None = None,
        keep_days: int = 2,
    ) -> None:
        self.settings = settings or LearnedSettings()
        self.forecast_settings = forecast_settings or ForecastSettings()
        self.keep_days = keep_days
        #: (column, local midnight as UTC) -> the day's models, or None (too little
        #: history: the rule forecast stays).
        self._models: OrderedDict[tuple[str, pd.Timestamp], Models | None] = OrderedDict()
        self.fits = 0

    def models(self, column: str, midnight: pd.Timestamp, read: HistoryReader) -> Models | None:
        """The day's models of ``column``, fitted on what ``read`` gives before ``midnight``."""
        key = (column, midnight)
        if key not in self._models:
            self._models[key] = self._fit(column, midnight, read)
            while len(self._models) > self.keep_days * len(LEARNED_COLUMNS):
                self._models.popitem(last=False)
        return self._models[key]

    def _fit(self, column: str, midnight: pd.Timestamp, read: HistoryReader) -> Models | None:
        s = self.settings
        start = midnight - s.lookback
        history = read(start, midnight)
        if column not in history.columns:
            return None
        known = history[column][(history.index >= start) & (history.index < midnight)]
        known_days = int(known.notna().sum()) / DAY_Q
        if known_days < s.min_train_days:
            return None
        grid = make_grid(history, start, midnight, midnight, self.forecast_settings)
        seed = s.seed + int(midnight.value // 10**9 // 86400) * 31 + LEARNED_COLUMNS.index(column)
        rng = np.random.default_rng(seed)
        end = grid.position(midnight)
        fit_end = end - s.calibration_days * DAY_Q
        x, y = training_rows(column, grid, fit_end, s, rng)
        if len(y) < s.min_rows_per_leaf * 4:
            return None
        self.fits += 1
        data = lgb.Dataset(x, y, params={"verbosity": -1}, free_raw_data=False)
        boosters = [lgb.train(_params(s, q), data, num_boost_round=s.trees) for q in QUANTILES]
        widen = np.zeros(len(LEAD_BUCKETS))
        if s.calibration_days:
            xc, yc = training_rows(column, grid, end, s, rng, first=fit_end)
            if len(yc):
                band = np.sort(np.stack([b.predict(xc, num_threads=1) for b in boosters]), axis=0)
                lead = xc[:, 0].astype(int)
                widen = conformal_widening(band[0], band[2], yc, lead, s.coverage)
        return Models(boosters, widen)

    def quantiles(
        self,
        history: pd.DataFrame,
        now: pd.Timestamp,
        index: pd.DatetimeIndex,
        read: HistoryReader,
        fallback: pd.DataFrame | None = None,
        centred: frozenset[str] = frozenset(),
    ) -> dict[str, np.ndarray]:
        """P10/P50/P90 per learned column on ``index`` (shape (3, len(index)), ordered), as
        known at ``now``; columns without a fitted model are left out, and quarter hours
        without a reference value take ``fallback``'s (the rule forecast).

        ``centred``: columns whose median is ``fallback``'s, from a forecast that knows
        more than the learned model's features (the heat demand from issued temperature
        forecasts, :func:`vpp.forecast.forecast_heat_from_temperature`; PV weighed with
        issued PV forecasts): their P50 is that forecast and P10/P90 keep the learned
        band's distances from the learned P50."""
        cutoff = pd.Timestamp(now).tz_convert("UTC").floor(STEP)
        midnight = cutoff.tz_convert(LOCAL_TZ).normalize().tz_convert("UTC")
        out: dict[str, np.ndarray] = {}
        grid: Grid | None = None
        for column in LEARNED_COLUMNS:
            models = self.models(column, midnight, read)
            if models is None:
                continue
            if grid is None:
                start = cutoff - pd.Timedelta(days=8)
                grid = make_grid(history, start, index[-1] + STEP, cutoff, self.forecast_settings)
            lead = np.asarray((index - cutoff) // STEP, dtype=int)
            rows = np.full(len(index), grid.position(cutoff))
            x = features(column, grid, rows, lead)
            x[:, 0] = np.minimum(lead, self.settings.horizon_steps - 1)  # as trained
            # The three models may cross: rearrange, then widen the band as calibrated.
            deviation = np.sort(
                np.stack([b.predict(x, num_threads=1) for b in models.boosters]), axis=0
            )
            bucket = np.searchsorted(
                np.asarray(LEAD_BUCKETS), np.minimum(lead, 10**6 - 1), side="right"
            )
            widen = models.widen[bucket]
            deviation[0] = np.minimum(deviation[0] - widen, deviation[1])
            deviation[2] = np.maximum(deviation[2] + widen, deviation[1])
            values = x[:, 4] + deviation
            if fallback is not None and column in fallback:
                rule = np.asarray(fallback[column], dtype=float)
                if column in centred:
                    known = ~np.isnan(rule)
                    values[:, known] += (rule - values[1])[known]
                values = np.where(np.isnan(values), rule[None, :], values)
            spec = COLUMNS[column]
            values = np.clip(values, spec.min, spec.max)
            if column == "pv_w_per_kwp":
                values[:, _at(grid.sky, rows + lead) <= 0.0] = 0.0
            out[column] = values
        return out


def apply_p50(raw: pd.DataFrame, bands: dict[str, np.ndarray]) -> pd.DataFrame:
    """``raw`` with the learned columns replaced by their P50."""
    out = raw.copy()
    for column, values in bands.items():
        if column in out.columns:
            out[column] = values[1]
    return out


def bands_frame(index: pd.DatetimeIndex, bands: dict[str, np.ndarray]) -> pd.DataFrame:
    """The quantiles as columns ``<column>_p10``, ``_p50``, ``_p90`` on ``index``."""
    data = {
        f"{column}_p{round(q * 100)}": values[i]
        for column, values in bands.items()
        for i, q in enumerate(QUANTILES)
    }
    return pd.DataFrame(data, index=index)


#: Plan columns the bands are given for, from the raw columns they scale.
BAND_COLUMNS = {
    "load_w": "load_w_per_mwh_a",
    "pv_available_w": "pv_w_per_kwp",
    "heat_demand_th_w": "heat_w_per_mwh_a",
}
QUANTILE_NAMES = tuple(f"p{round(q * 100)}" for q in QUANTILES)


def site_bands(site: Site, bands: pd.DataFrame) -> pd.DataFrame:
    """The raw quantiles of :func:`bands_frame` in the site's units, as the planner scales
    the P50 (:func:`optimizer.inputs.forecast_from_raw`, and PV per inverter: kWp times
    the profile, at most the AC rating): columns ``<plan column>_p10`` ... [W]."""
    out = {}
    peak_kw = np.array([d.dc_peak_w / 1000.0 for d in site.pv])
    rated = np.array([d.rated_w for d in site.pv])
    for plan_col, raw_col in BAND_COLUMNS.items():
        for name in QUANTILE_NAMES:
            key = f"{raw_col}_{name}"
            if key not in bands.columns:
                continue
            values = bands[key].to_numpy(dtype=float)
            if plan_col == "load_w":
                scaled = values * site.grid.base_load_annual_wh / 1e6
            elif plan_col == "heat_demand_th_w":
                scaled = values * site.heat.annual_demand_wh / 1e6
            else:
                scaled = np.clip(np.outer(peak_kw, values), 0.0, rated[:, None]).sum(axis=0)
            out[f"{plan_col}_{name}"] = scaled
    return pd.DataFrame(out, index=bands.index)


__all__ = [
    "BAND_COLUMNS",
    "LEARNED_COLUMNS",
    "QUANTILES",
    "QUANTILE_NAMES",
    "LearnedForecaster",
    "LearnedSettings",
    "apply_p50",
    "bands_frame",
    "features",
    "site_bands",
    "training_rows",
]
