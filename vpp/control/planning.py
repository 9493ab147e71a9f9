"""The plan job: forecasts as known now, the limits in force, the planner, adopting the
new plan; and the plan's row for the quarter hour now."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from optimizer.inputs import State, forecast_from_raw, scale_raw
from optimizer.plan import Plan
from optimizer.reserve import reserve_tiers, store_reserves_wh
from vpp.control import cycle
from vpp.control.dispatch import plan_row
from vpp.control.inputs import HISTORY
from vpp.control.invariants import Limits, enforce
from vpp.control.plant import Stages
from vpp.control.recording import Recording
from vpp.control.tracking import few
from vpp.core.clock import floor_quarter
from vpp.core.site import Site
from vpp.forecast import (
    PV_COLUMN,
    ForecastSettings,
    forecast,
    heat_error_history,
    heat_level_error,
    issued_history,
    issued_solar_weight,
    known_series,
)
from vpp.learned import apply_p50, bands_frame, site_bands
from vpp.signals.standing import spot_from_forecast
from vpp.weather import (
    SyntheticSolarForecast,
    SyntheticTemperatureForecast,
    TemperatureQuantile,
)

log = logging.getLogger("vpp.control")

#: Raw input columns :func:`optimizer.inputs.forecast_from_raw` does not read. Each column is
#: forecast on its own, so leaving them out changes nothing a plan sees and saves a third
#: of the forecast's time.
UNUSED_COLUMNS = ("ghi_w_per_m2", "dhi_w_per_m2")
#: Raw columns forecast past the horizon for the store reserve (optimizer/reserve.py).
RESERVE_COLUMNS = ("heat_w_per_mwh_a", "outdoor_temp_c", "it_load_ratio", "waste_heat_temp_c")
#: The quantile of the heat demand past the horizon that is forecast from the issued
#: temperatures' own quantile; the reserve's other quantiles are interpolated along it
#: (:func:`forecast_with_weather`).
RESERVE_ANCHOR = 0.9


class Planning(Recording):
    """The plan job (part of :class:`~vpp.control.controller.Controller`)."""

    async def plan(self) -> None:
        """Plan from the quarter hour that starts within ``plan_lead_s`` (or the current one);
        then stage that quarter hour's setpoints where the plant can (:meth:`stage`)."""
        async with self._plan_lock:
            await self._plan()
        try:
            await self.stage()
        except Exception as exc:  # the plan stands; the dispatch writes in full
            log.exception("staging failed")
            self.event("warning", "plan", "stage_failed", f"staging failed: {exc}")

    async def stage(self) -> None:
        """Stage the next quarter hour's battery setpoints, as known now, on a plant whose
        devices can hold them inactive (:class:`~vpp.control.plant.Stages`: a 124 battery
        in its own mode takes its rates now and only its mode at the quarter hour). Nothing
        when the plan in force does not reach ahead, in dry-run, or on a plant without it.

        Each value is checked as a write is (:func:`cycle.staged_setpoints`, then the
        invariants with the limits in force now and at the quarter hour); the dispatch makes
        and checks its own setpoints again and writes only what a device does not hold
        already, so what acts on a device is always the dispatch's checked value."""
        plant, st = self.plant, self.state
        if st.dry_run or st.plan is None or not isinstance(plant, Stages):
            return
        now = self.clock.now()
        start = floor_quarter(now + timedelta(seconds=self.plan_lead_s))
        if start <= now:
            return
        ready = [b.id for b in self.site.batteries if plant.can_stage(b.id)]
        if not ready:  # every battery under control (as usual) or none that can
            return
        caps, bounds = self._caps_in_force(), self._signal_bounds()
        row = plan_row(st.plan.frame, start)
        setpoints = cycle.staged_setpoints(
            self.site, row, st.snapshot, caps, now, start, bounds, only=ready
        )
        horizon = (start - now).total_seconds() + cycle.QUARTER.total_seconds()
        for when in (now, start):
            limits = Limits.at(self.site, caps, when, bounds)
            setpoints = enforce(self.site, st.snapshot, setpoints, limits, horizon).passed
        if not setpoints:
            return
        results = await plant.stage(setpoints)
        st.setpoints_staged_total += sum(w.ok for w in results)
        failed = [w.device_id for w in results if not w.ok]
        if failed:
            self.event(
                "warning",
                "plan",
                "stage_failed",
                f"staging the next setpoints failed on {len(failed)} device(s) ({few(failed)}): "
                f"{next(w.message for w in results if not w.ok)}; their setpoints are written "
                "in full at the quarter hour",
            )
        if results:
            log.info("staged %d of %d battery setpoints for %s", len(results) - len(failed),
                     len(setpoints), start.strftime("%H:%M"))  # fmt: skip

    async def _plan(self) -> None:
        now = self.clock.now()
        at = now + timedelta(seconds=self.plan_lead_s)
        tic = time.perf_counter()
        forecast = await asyncio.to_thread(self._forecast, at)
        self.state.forecast_seconds_total += time.perf_counter() - tic
        start_state = dataclasses.replace(
            self.plan_state(),
            store_reserve=self.store_reserve,
            heat_level_error=self.heat_level_error,
        )
        tic = time.perf_counter()
        plan: Plan = await asyncio.to_thread(self.planner.plan, start_state, forecast, at)
        self.state.planner_seconds_total += time.perf_counter() - tic
        plan = cycle.adopt(self.site, self.state.plan, plan, now, forecast)
        self.state.plan, self.state.plan_created_at = plan, now
        self.state.forecast = forecast
        self.state.plans_total += 1
        if plan.info.status != "optimal":
            self.state.fallbacks_total += 1
            self.event(
                "warning",
                "plan",
                "fallback_plan",
                f"plan fell back to rules: {plan.info.fallback_reason}",
            )
        log.info("%s", plan_line(plan, now, self.site.optimizer.time_limit_s))
        signals = self.state.grid_signals
        if plan.info.slacks and signals is not None and signals.active:
            used = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(plan.info.slacks.items()))
            self.event(
                "warning",
                "plan",
                "signal_plan_slack",
                f"the plan cannot keep every grid-operator signal with the plant it has: "
                f"slack used ({used})",
            )
        if self.metrics is not None:
            self.metrics.observe_plan(plan.info)
        if start_state.store_wh is not None:
            self.store.on_plan(start_state.store_wh)
        if self.recorder is not None:
            await asyncio.to_thread(self._record, "plan", self.recorder.record_plan, plan, now)

    def _forecast(self, at: datetime) -> pd.DataFrame:
        """The optimiser's forecast for a plan starting at ``at``, with the limits in force."""
        horizon = timedelta(hours=self.site.optimizer.horizon_h)
        ahead = timedelta(0)
        if self.weather_spec is not None and self.forecast_mode == "asof":
            # The synthetic issues err around the temperature the inputs hold, past the
            # horizon over the store reserve's look-ahead (the plans read no other future).
            ahead = timedelta(hours=self.site.forecast.reserve_lookahead_h + 8)
        lookback = HISTORY
        # The day's first plan also scores the issued PV forecasts and the heat forecast's
        # level on the days before.
        score_pv = self._issues_pv() and _utc_day(at) not in self._solar_weights
        score_heat = self._heat_from_weather() and _utc_day(at) not in self._heat_errors
        if score_pv:
            lookback = max(lookback, issued_history(ForecastSettings()).to_pytimedelta())
        if score_heat:
            lookback = max(lookback, heat_error_history(ForecastSettings()).to_pytimedelta())
        history = self.inputs.history(at, horizon + ahead, lookback=lookback)
        if score_pv:
            self._solar_weight(history, at)
        if score_heat:
            self._heat_error(history, at)
        if lookback > HISTORY:
            history = history[history.index >= pd.Timestamp(at) - pd.Timedelta(HISTORY)]
        if self.forecast_mode == "perfect" and len(history):
            # A perfect forecast sees no further than the inputs reach.
            end = pd.Timestamp(history.index[-1]) + pd.Timedelta(minutes=15)
            horizon = min(horizon, (end - pd.Timestamp(at)).to_pytimedelta())
        used = history.drop(columns=[c for c in UNUSED_COLUMNS if c in history.columns])
        raw = self._raw_forecast(used, at, horizon)
        bands = None
        if self.learned is not None and self.forecast_mode == "asof" and len(raw):
            quantiles = self.learned.quantiles(
                used,
                pd.Timestamp(at),
                pd.DatetimeIndex(raw.index),
                self._read_history,
                raw,
                self._centred,
            )
            if quantiles:  # none while the history is too short: the rules stay
                raw = apply_p50(raw, quantiles)
                bands = bands_frame(pd.DatetimeIndex(raw.index), quantiles)
        self.state.forecast_bands = bands
        self.state.forecast_bands_w = None if bands is None else site_bands(self.site, bands)
        if self.metrics is not None and self.forecast_mode == "asof":
            cutoff = pd.Timestamp(at).floor("15min")
            self.scores.observe(used[used.index < cutoff], cutoff)
            self.scores.expect(raw, bands)
            self.state.forecast_scores = self.scores.summary()
            self.state.co2_forecast_score = self.scores.co2()
        if self.recorder is not None:
            # What was known of the past, so a recorded day can be exported and replayed.
            past = history[history.index < pd.Timestamp(self.clock.now())]
            self._record("inputs", self.recorder.record_inputs, past.tail(4 * 24))
        for problem in self.inputs.drain_problems():
            self.event("warning", f"source:{problem.source}", "source_failed", problem.message)
        self.state.sources = self.inputs.status()
        frame = forecast_from_raw(self.site, raw)
        return cycle.plan_limits(
            self.site,
            frame,
            self._caps_in_force(),
            self._plan_signals(frame),
            self.state.forecast_bands_w,
        )

    def _raw_forecast(self, used: pd.DataFrame, at: datetime, horizon: timedelta) -> pd.DataFrame:
        """The raw forecast over ``horizon``; sets :attr:`store_reserve`
        (:func:`forecast_with_weather`)."""
        weather = self.weather if self.forecast_mode == "asof" else None
        if weather is None and self.weather_spec is not None and "outdoor_temp_c" in used:
            weather = SyntheticTemperatureForecast(used["outdoor_temp_c"], self.weather_spec)
        solar, weight = self._solar(used, at)
        # The PV forecast with the issued PV forecasts is the learned PV band's median.
        issued_pv = frozenset() if solar is None else frozenset({PV_COLUMN})
        self.heat_level_error = 0.0
        self.state.heat_level_error = None
        if weather is None or self.forecast_mode != "asof":
            self.store_reserve = ()
            self._centred = issued_pv
            return forecast(
                used, at, horizon, mode=self.forecast_mode, solar=solar, solar_weight=weight
            )
        # The day's level error of the heat forecast (none below the optimizer's floor):
        # the reserve past the horizon is made for the forecast plus it, and the plan keeps
        # one against it inside the horizon (optimizer.data.set_heat_risk).
        error = self._heat_errors.get(_utc_day(at), 0.0)
        self.state.heat_level_error = error
        self.heat_level_error = error if error >= self.planner.params.heat_error_min else 0.0
        raw, self.store_reserve = forecast_with_weather(
            self.site, used, at, horizon, weather, solar, weight, self.heat_level_error
        )
        # The heat forecast from the issued temperatures is the learned heat band's median.
        self._centred = frozenset({"heat_w_per_mwh_a"}) | issued_pv
        return raw

    def _solar(self, used: pd.DataFrame, at: datetime) -> tuple[Any, float | None]:
        """The issued PV forecasts (:attr:`solar`, or made from the PV ``used`` holds
        ahead) and their weight for ``at``'s UTC day (:meth:`_solar_weight`); (None, None)
        without them."""
        self.state.pv_issued_weight = None
        if not self._issues_pv() or PV_COLUMN not in used:
            return None, None
        solar = self.solar
        if solar is None:
            assert self.solar_spec is not None
            if not used[PV_COLUMN][used.index >= pd.Timestamp(at)].notna().any():
                return None, None  # a source that knows only the past: nothing to issue from
            solar = SyntheticSolarForecast(used[PV_COLUMN], self.solar_spec)
        weight = self._solar_weights.get(_utc_day(at), 0.5)
        self.state.pv_issued_weight = weight
        return solar, weight

    def _issues_pv(self) -> bool:
        """Whether the asof forecasts weigh issued PV forecasts (given or synthetic)."""
        has = self.solar is not None or self.solar_spec is not None
        return has and self.forecast_mode == "asof"

    def _solar_weight(self, history: pd.DataFrame, at: datetime) -> None:
        """The issued PV forecasts' weight for ``at``'s UTC day, from the PV ``history``
        holds before the day (:func:`vpp.forecast.issued_solar_weight`): kept for the
        day's plans."""
        day = _utc_day(at)
        weight = 0.5
        if PV_COLUMN in history and len(history):
            known = known_series(history[PV_COLUMN], day)
            issues = self.solar
            if issues is None:
                assert self.solar_spec is not None
                issues = SyntheticSolarForecast(history[PV_COLUMN], self.solar_spec)
            weight = issued_solar_weight(known, issues, day, ForecastSettings())
        self._solar_weights = {d: w for d, w in self._solar_weights.items() if d > day}
        self._solar_weights[day] = weight

    def _heat_from_weather(self) -> bool:
        """Whether the asof forecasts make the heat demand from temperature forecasts
        (given or synthetic)."""
        has = self.weather is not None or self.weather_spec is not None
        return has and self.forecast_mode == "asof"

    def _heat_error(self, history: pd.DataFrame, at: datetime) -> None:
        """The heat forecast's level error for ``at``'s UTC day, from the heat and
        temperature ``history`` holds before the day (:func:`vpp.forecast.
        heat_level_error`): kept for the day's plans."""
        day = _utc_day(at)
        error = 0.0
        if {"heat_w_per_mwh_a", "outdoor_temp_c"} <= set(history.columns) and len(history):
            error = heat_level_error(
                known_series(history["heat_w_per_mwh_a"], day),
                known_series(history["outdoor_temp_c"], day),
                day,
                ForecastSettings(),
            )
        self._heat_errors = {d: e for d, e in self._heat_errors.items() if d > day}
        self._heat_errors[day] = error

    def _read_history(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Raw inputs over ``[start, end)`` (the learned forecasts' daily refit)."""
        rows = self.inputs.history(end.to_pydatetime(), timedelta(0), lookback=end - start)
        return rows[rows.index < end]

    def plan_state(self) -> State:
        """Batteries' energy, the store and the offline devices, as the optimiser needs them."""
        return cycle.plan_state(self.site, self.state.snapshot, self.store.energy_wh)

    def _plan_signals(self, forecast: pd.DataFrame) -> list[Any]:
        """The signals the next plan must keep: those in force (until revoked, as far as
        the plan can tell) and the negative-price windows of this forecast."""
        watch = self.signal_watch
        if watch is None:
            return []
        watch.set_prices(spot_from_forecast(self.site, forecast))
        return list(watch.signals)


def _utc_day(at: datetime) -> pd.Timestamp:
    return pd.Timestamp(at).tz_convert("UTC").floor("D")


def forecast_with_weather(
    site: Site,
    used: pd.DataFrame,
    at: datetime,
    horizon: timedelta,
    weather: Any,
    solar: Any = None,
    solar_weight: float | None = None,
    heat_error: float = 0.0,
) -> tuple[pd.DataFrame, tuple[tuple[float, float], ...]]:
    """The asof raw forecast over ``horizon`` with the issued temperature forecasts
    ``weather`` (temperature and heat demand from them) and PV forecasts ``solar`` (if
    any, weighed ``solar_weight``), and the store reserve's tiers ``(Wh, chance it is
    needed)`` (:func:`optimizer.reserve.reserve_tiers`): the heat side forecast ``[forecast]
    reserve_lookahead_h`` past the horizon, raised by the level error ``heat_error`` (a
    share, :func:`vpp.forecast.heat_level_error`), at each of ``[forecast]
    reserve_quantiles``, through :func:`optimizer.reserve.store_reserves_wh`. The plan's
    own rows keep the issues themselves.

    The heat demand's quantiles past the horizon come from the issued temperatures moved
    by their error spread at each lead time (:class:`vpp.weather.TemperatureQuantile`): the
    heat side is forecast once on the issue and once on its ``1 - RESERVE_ANCHOR``
    quantile, and each quantile's demand is the issue's moved along that difference by its
    normal quantile (the demand is near linear in the temperature below the heating limit;
    never below 0)."""
    ahead = timedelta(hours=site.forecast.reserve_lookahead_h)
    heat_side = [c for c in RESERVE_COLUMNS if c in used.columns]
    rest = forecast(
        used.drop(columns=heat_side), at, horizon, mode="asof", solar=solar,
        solar_weight=solar_weight,
    )  # fmt: skip
    long = forecast(used[heat_side], at, horizon + ahead, mode="asof", weather=weather)
    steps = len(rest)
    raw = pd.concat([rest, long.iloc[:steps]], axis=1)
    if not (ahead > timedelta(0) and "heat_w_per_mwh_a" in long.columns):
        return raw, ()
    quantiles = site.forecast.reserve_quantiles
    after = scale_raw(site, long.iloc[steps:])
    demand = after["heat_demand_th_w"].to_numpy(float)
    per_z = np.zeros_like(demand)
    if any(q != 0.5 for q in quantiles):
        cold = TemperatureQuantile(weather, 1.0 - RESERVE_ANCHOR)
        colder = forecast(used[heat_side], at, horizon + ahead, mode="asof", weather=cold)
        cold_demand = scale_raw(site, colder.iloc[steps:])["heat_demand_th_w"].to_numpy(float)
        per_z = np.maximum(cold_demand - demand, 0.0) / NormalDist().inv_cdf(RESERVE_ANCHOR)
    demands = [
        np.maximum(demand + NormalDist().inv_cdf(q) * per_z, 0.0) * (1.0 + heat_error)
        for q in quantiles
    ]
    return raw, reserve_tiers(store_reserves_wh(site, after, demands), quantiles)


def plan_line(plan: Plan, now: datetime, time_limit_s: float) -> str:
    """One line per plan: its source, cost, solve time and the slack it used."""
    info = plan.info
    frame = plan.frame
    source = "optimizer" if info.status == "optimal" else f"fallback ({info.fallback_reason})"
    cost = (getattr(info, "cost_eur", None) or {}).get("net_cost_eur")
    slack = ", ".join(f"{k} {v / 1e3:.1f} kWh" for k, v in sorted(info.slacks.items()) if v > 0)
    span = "no steps"
    if len(frame):
        end = frame.index[-1] + pd.Timedelta(minutes=15)
        span = f"{len(frame)} steps {frame.index[0]:%H:%M}-{end:%H:%M} UTC"
    return (
        f"plan {info.status} from {source}: {span}, "
        f"cost {'-' if cost is None else f'{cost:.2f}'} EUR, "
        f"solve {info.solve_s:.2f} s of {time_limit_s:.0f} s (total {info.total_s:.2f} s), "
        f"slack {slack or 'none'}"
    )
