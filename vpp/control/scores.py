"""How well the forecasts did over the last day, for ``vpp run``'s metrics.

At each plan the controller notes its forecast for the quarter hour about to start (P10,
P50, P90 of the learned forecasts, or the rule forecast's one value for all three) per
quantity, in the site's units: base load, PV available, heat demand [W]. Once a quarter
hour's measured value is among the inputs (the next plans' history), the forecast is scored
against it: absolute error of P50, pinball loss averaged over the three quantiles
(:func:`vpp.replay.kpi.pinball`, as the replay report), and whether the value fell inside
P10..P90. :meth:`ForecastScores.summary` gives the means over the scored quarter hours of
the last ``window``; the metrics collector reads it at scrape time. The grid's CO2 intensity
forecast [g/kWh] is scored the same way as a point forecast (:meth:`ForecastScores.co2`:
MAE and bias), where the inputs carry a measured intensity (above zero).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from vpp.core.site import Site
from vpp.learned import BAND_COLUMNS, QUANTILE_NAMES, QUANTILES, site_bands

#: Quantities scored, by the plan column their values are in (the metric label).
QUANTITIES = {"load_w": "load", "pv_available_w": "pv", "heat_demand_th_w": "heat"}
#: The raw input column of the grid's CO2 intensity [g/kWh].
CO2 = "co2_g_per_kwh"


@dataclass(frozen=True, slots=True)
class Score:
    step: pd.Timestamp
    quantity: str
    abs_error_w: float
    pinball_w: float
    #: Inside P10..P90; None for a point forecast.
    covered: bool | None


@dataclass
class ForecastScores:
    """Forecasts for the quarter hour ahead, waiting for their truth, and the scores of the
    last ``window``."""

    site: Site
    window: timedelta = timedelta(days=1)
    #: Quarter hour -> quantity -> (P10, P50, P90), and whether they are a band.
    pending: dict[pd.Timestamp, tuple[dict[str, tuple[float, float, float]], bool]] = field(
        default_factory=dict
    )
    scores: deque[Score] = field(default_factory=deque)
    #: Quarter hour -> the CO2 intensity forecast for it [g/kWh].
    pending_co2: dict[pd.Timestamp, float] = field(default_factory=dict)
    #: (quarter hour, forecast minus measured) [g/kWh] over the window.
    co2_errors: deque[tuple[pd.Timestamp, float]] = field(default_factory=deque)

    def expect(self, raw: pd.DataFrame, bands: pd.DataFrame | None) -> None:
        """Note the forecast for the first quarter hour of ``raw`` (raw input columns, the
        planner's values) and its learned ``bands`` (:func:`vpp.learned.bands_frame`)."""
        if raw.empty:
            return
        step = pd.Timestamp(raw.index[0])
        first = raw.iloc[:1]
        point = site_values(self.site, first)
        values = {}
        banded = bands is not None and not bands.empty
        band_w = site_bands(self.site, bands.iloc[:1]) if bands is not None and banded else None
        for plan_col in QUANTITIES:
            if plan_col not in point:
                continue
            p50 = point[plan_col]
            if band_w is not None and f"{plan_col}_p10" in band_w.columns:
                low = float(band_w[f"{plan_col}_p10"].iloc[0])
                high = float(band_w[f"{plan_col}_p90"].iloc[0])
                values[plan_col] = (min(low, p50), p50, max(high, p50))
            else:
                values[plan_col] = (p50, p50, p50)
        self.pending[step] = (values, band_w is not None)
        if CO2 in raw.columns:
            self.pending_co2[step] = float(raw[CO2].iloc[0])

    def observe(self, known: pd.DataFrame, now: pd.Timestamp) -> None:
        """Score the pending forecasts whose quarter hour is in ``known`` (raw inputs
        measured before ``now``), and forget scores older than the window."""
        if self.pending and not known.empty:
            done = [s for s in self.pending if s in known.index and s < now]
            if done:
                truth = site_values_frame(self.site, known.loc[done])
                for step in done:
                    values, banded = self.pending.pop(step)
                    for plan_col, quantiles in values.items():
                        if plan_col not in truth.columns:
                            continue
                        actual = float(truth[plan_col].to_numpy()[truth.index.get_loc(step)])
                        if math.isnan(actual):
                            continue
                        self.scores.append(score(step, plan_col, actual, quantiles, banded))
        if self.pending_co2 and not known.empty and CO2 in known.columns:
            for step in [s for s in self.pending_co2 if s in known.index and s < now]:
                forecast = self.pending_co2.pop(step)
                actual = float(known[CO2].to_numpy()[known.index.get_loc(step)])
                if actual > 0 and math.isfinite(forecast):  # zero: no measured intensity
                    self.co2_errors.append((step, forecast - actual))
        horizon = now - pd.Timedelta(self.window)
        for step in [s for s in self.pending if s < horizon]:
            del self.pending[step]  # never measured: nothing to score
        for step in [s for s in self.pending_co2 if s < horizon]:
            del self.pending_co2[step]
        while self.scores and self.scores[0].step < horizon:
            self.scores.popleft()
        while self.co2_errors and self.co2_errors[0][0] < horizon:
            self.co2_errors.popleft()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per quantity label: ``mae_w``, ``pinball_w``, ``coverage_ratio`` (NaN without
        learned bands) and ``steps`` over the window."""
        out: dict[str, dict[str, float]] = {}
        for plan_col, label in QUANTITIES.items():
            mine = [s for s in self.scores if s.quantity == plan_col]
            if not mine:
                continue
            bands = [s.covered for s in mine if s.covered is not None]
            out[label] = {
                "mae_w": float(np.mean([s.abs_error_w for s in mine])),
                "pinball_w": float(np.mean([s.pinball_w for s in mine])),
                "coverage_ratio": float(np.mean(bands)) if bands else math.nan,
                "steps": float(len(mine)),
            }
        return out

    def co2(self) -> dict[str, float]:
        """The CO2 intensity forecast over the window: ``mae_gkwh``, ``bias_gkwh`` (forecast
        minus measured) and ``steps``; empty before the first scored quarter hour."""
        if not self.co2_errors:
            return {}
        errors = np.array([e for _, e in self.co2_errors])
        return {
            "mae_gkwh": float(np.abs(errors).mean()),
            "bias_gkwh": float(errors.mean()),
            "steps": float(len(errors)),
        }


def score(
    step: pd.Timestamp,
    quantity: str,
    actual: float,
    quantiles: tuple[float, float, float],
    banded: bool,
) -> Score:
    """One quarter hour's score (pinball loss averaged over P10, P50, P90)."""
    loss = [
        max(q * (actual - f), (q - 1.0) * (actual - f))
        for q, f in zip(QUANTILES, quantiles, strict=True)
    ]
    covered = (quantiles[0] <= actual <= quantiles[-1]) if banded else None
    return Score(step, quantity, abs(actual - quantiles[1]), float(np.mean(loss)), covered)


def site_values_frame(site: Site, raw: pd.DataFrame) -> pd.DataFrame:
    """Raw input rows in the site's units (the planner's scaling, :func:`site_bands`)."""
    as_p50 = pd.DataFrame(
        {
            f"{raw_col}_{QUANTILE_NAMES[1]}": raw[raw_col].to_numpy(dtype=float)
            for raw_col in BAND_COLUMNS.values()
            if raw_col in raw.columns
        },
        index=raw.index,
    )
    scaled = site_bands(site, as_p50)
    return scaled.rename(columns=lambda c: c.removesuffix(f"_{QUANTILE_NAMES[1]}"))


def site_values(site: Site, raw: pd.DataFrame) -> dict[str, float]:
    """The first row of :func:`site_values_frame`."""
    frame = site_values_frame(site, raw)
    return {str(c): float(frame[c].iloc[0]) for c in frame.columns}
