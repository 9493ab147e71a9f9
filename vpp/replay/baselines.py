"""The strategies the controller is measured against, on the same plant and the same day.

- ``no_control``: PV uncurtailed (but for the grid operator's signals), batteries idle, the
  heat pump follows the heat demand (as far as its power, its source and the COP allow), the
  store buffers what it can and the boiler covers the rest;
- ``self_consumption``: the same, and the batteries charge from PV surplus and discharge into
  the site's load (heat pump and dry coolers included), shared by what each can do in the
  quarter hour. The rule reacts to the true net load of the same quarter hour, as a battery's
  own controller does within seconds, which flatters it slightly against the planned
  strategies;

The two rule baselines follow the same grid-operator signals as the controller
(:func:`signal_limits`): the law's rules (the Solarspitzengesetz 60 % cap, zero export while
the day-ahead price is negative) and any recorded signals, resolved per step as the plan
resolves them; PV gives way to an export cap as an inverter's own export limiter does.

- ``oracle``: perfect foresight. The optimiser plans with the true future (``perfect``
  forecast; where the plant's PV is each inverter's own, :mod:`vpp.data.clouds`, each
  inverter's quarter hours as the plant has them rather than the table's regional profile)
  and plans again only when its plan runs out (once a day with a horizon over 24 h);
  the plant follows the plan's device values open-loop, quarter hour by quarter hour: the best
  plan the controller's own model can make for the day.
  It is not a bound: it plans a day at a time and values what it leaves stored by a
  convention; the true bound is :mod:`vpp.replay.bound`.
- ``controller``: ``vpp run`` as it would have run: the live controller itself on the replay
  plant (:func:`vpp.replay.drive.run_controller`), forecasts ``asof`` unless told ``perfect``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from optimizer.inputs import DEVICE_CAP_SUFFIX, PV_OVERRIDE_SUFFIX, State, forecast_from_raw
from optimizer.plan import Plan
from optimizer.planner import Planner
from vpp.control.dispatch import plan_row
from vpp.control.inputs import HISTORY
from vpp.core.site import Site
from vpp.data.schema import STEP
from vpp.forecast import forecast
from vpp.replay import plant as k
from vpp.replay.layout import PlantInputs, PlantParams
from vpp.replay.trace import Trace, planned_values
from vpp.signals.model import Signal
from vpp.signals.plan import plan_caps
from vpp.signals.standing import (
    negative_price_signals,
    solarspitzen_cap,
    spot_from_forecast,
)

NO_CONTROL = "no_control"
SELF_CONSUMPTION = "self_consumption"
CONTROLLER = "controller"
ORACLE = "oracle"
#: The true lower bound (:mod:`vpp.replay.bound`): not a strategy that runs the plant, but the
#: least any operation of it could pay over the chain, ending where the controller ended.
BOUND = "bound"
#: Strategies in the order reports list them.
STRATEGIES = (NO_CONTROL, SELF_CONSUMPTION, CONTROLLER, ORACLE)
_RULES = {NO_CONTROL: k.RULE_NO_CONTROL, SELF_CONSUMPTION: k.RULE_SELF_CONSUMPTION}


Limits = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class SignalCaps:
    """Per step: what the grid-operator signals cap [W] (inf: nothing caps it)."""

    #: Each inverter's output, (steps, inverters).
    pv_w: np.ndarray
    #: Each battery's charging, (steps, batteries).
    charge_w: np.ndarray
    #: The heat pump's electric power, (steps,).
    hp_w: np.ndarray
    #: The site's export and import, (steps,).
    export_w: np.ndarray
    import_w: np.ndarray

    @property
    def limits(self) -> Limits:
        """The caps the rule baselines' plant kernel takes (:func:`signal_limits`)."""
        return self.pv_w, self.charge_w, self.export_w

    def rows(self, rows: slice) -> SignalCaps:
        return SignalCaps(
            self.pv_w[rows], self.charge_w[rows], self.hp_w[rows], self.export_w[rows],
            self.import_w[rows],
        )  # fmt: skip


def replay_signals(
    site: Site, index: pd.DatetimeIndex, spot: pd.Series, signals: Sequence[Signal] = ()
) -> list[Signal]:
    """The signals a replayed stretch from ``index[0]`` runs under: the law's rules (the
    Solarspitzengesetz 60 % cap, zero export while the day-ahead price ``spot`` [EUR/MWh]
    is negative) and the recorded ``signals``."""
    if len(index) == 0:
        return list(signals)
    return [
        *solarspitzen_cap(site, index[0].to_pydatetime()),
        *negative_price_signals(site, spot),
        *signals,
    ]


def whole_steps(signals: Sequence[Signal], step: timedelta = STEP) -> list[Signal]:
    """Each signal over the whole steps it covers only (start rounded up, end down to the
    step); those that cover no whole step are left out. The lenient reading of a signal
    that begins or ends inside a quarter hour: no operation that follows it is excluded."""
    out = []
    for s in signals:
        start = _ceil(s.start, step)
        end = None if s.end is None else _floor(s.end, step)
        if end is None or end > start:
            out.append(dataclasses.replace(s, start=start, end=end))
    return out


def _ceil(when: datetime, step: timedelta) -> datetime:
    floor = _floor(when, step)
    return floor if floor == when else floor + step


def _floor(when: datetime, step: timedelta) -> datetime:
    return pd.Timestamp(when).floor(step).to_pydatetime()


def signal_caps(
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    signals: Sequence[Signal] = (),
    lenient: bool = False,
) -> SignalCaps:
    """Per step of ``inputs``: the caps that the law's rules and the recorded ``signals``
    set (:func:`replay_signals`), resolved as the controller's plan resolves them
    (:func:`vpp.signals.plan.plan_caps`: a signal holds for every step it touches).
    ``lenient``: only for the steps it covers whole (:func:`whole_steps`; the bound)."""
    index = pd.DatetimeIndex(inputs.index)
    n = len(index)
    pv_cap, charge_cap, export_cap = k.no_limits(n, len(params.battery_ids), len(params.pv_ids))
    hp_cap, import_cap = np.full(n, np.inf), np.full(n, np.inf)
    caps = SignalCaps(pv_cap, charge_cap, hp_cap, export_cap, import_cap)
    if n == 0:
        return caps
    spot = pd.Series(inputs.inp[:, k.I_PRICE_EXP] + site.grid.export_fee_eur_per_mwh, index=index)
    found = replay_signals(site, index, spot, signals)
    if lenient:
        found = whole_steps(found)
    if not found:
        return caps
    planned = plan_caps(site, index, found)
    export_cap[:] = planned.export_cap_w.fillna(np.inf).to_numpy(float)
    import_cap[:] = planned.import_cap_w.fillna(np.inf).to_numpy(float)
    columns = [(params.pv_ids, pv_cap), (params.battery_ids, charge_cap)]
    if site.heat_pump is not None:
        columns.append(((site.heat_pump.id,), hp_cap[:, None]))
    for ids, out in columns:
        for j, ident in enumerate(ids):
            col = f"{ident}{DEVICE_CAP_SUFFIX}"
            if col in planned.devices:
                out[:, j] = planned.devices[col].fillna(np.inf).to_numpy(float)
    return caps


def signal_limits(
    site: Site, params: PlantParams, inputs: PlantInputs, signals: Sequence[Signal] = ()
) -> Limits:
    """Per step of ``inputs``: each inverter's output cap, each battery's charging cap and
    the export cap [W] (inf: none) that the law's rules and the recorded ``signals`` set
    (:func:`signal_caps`)."""
    return signal_caps(site, params, inputs, signals).limits


def with_signals(site: Site, fc: pd.DataFrame, signals: Sequence[Signal] = ()) -> pd.DataFrame:
    """A forecast (:func:`optimizer.inputs.forecast_from_raw`) with the signals' caps of its
    steps as a plan takes them: the grid limits tightened, ``<device_id>.cap_w`` columns;
    the negative-price windows from the forecast's own prices."""
    index = pd.DatetimeIndex(fc.index)
    found = replay_signals(site, index, spot_from_forecast(site, fc), signals)
    if not found:
        return fc
    caps = plan_caps(site, index, found)
    out = fc.copy()
    for name, cap, limit in (
        ("import_limit_w", caps.import_cap_w, site.grid.import_limit_w),
        ("export_limit_w", caps.export_cap_w, site.grid.export_limit_w),
    ):
        current = out[name].fillna(limit) if name in out else pd.Series(limit, index=index)
        out[name] = current.where(cap.isna(), np.minimum(current, cap))
    if not caps.devices.empty:
        out = out.join(caps.devices)
    return out


def run_rule_strategy(
    name: str,
    params: PlantParams,
    inputs: PlantInputs,
    steps: int | None = None,
    limits: Limits | None = None,
) -> Trace:
    """A rule-based baseline (``no_control`` or ``self_consumption``) over the day, under
    the signals' ``limits`` (:func:`signal_limits`; None: no signal)."""
    n = len(inputs.index) if steps is None else min(steps, len(inputs.index))
    if limits is None:
        limits = k.no_limits(n, len(params.battery_ids), len(params.pv_ids))
    pv_cap, charge_cap, export_cap = (np.ascontiguousarray(a[:n]) for a in limits)
    tic = time.perf_counter()
    out, bat_w, bat_soc, pv_w = k.run_rule(
        _RULES[name],
        params.bat,
        params.pv_rated_w,
        params.heat,
        np.ascontiguousarray(inputs.pv_avail_w[:n]),
        np.ascontiguousarray(inputs.inp[:n]),
        params.soc0_wh,
        params.store0_wh,
        pv_cap,
        charge_cap,
        export_cap,
    )
    trace = Trace.empty(inputs.index[:n], len(params.battery_ids), len(params.pv_ids), False)
    trace.out, trace.bat_w, trace.bat_soc_wh, trace.pv_w = out, bat_w, bat_soc, pv_w
    trace.bat_ch_w = np.maximum(-bat_w, 0.0)
    trace.stats["plant_s"] = time.perf_counter() - tic
    return trace


def run_oracle(
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    raw: pd.DataFrame,
    planner: Planner,
    steps: int | None = None,
    signals: Sequence[Signal] = (),
    caps: SignalCaps | None = None,
) -> Trace:
    """Perfect foresight: plans from the true future, re-planned only when a plan runs out,
    its device values applied to the plant as they stand.

    It plans under the same grid-operator signals as the controller (the law's rules and the
    recorded ``signals``, :func:`with_signals`), and its PV and charging values are held to
    the signals' ``caps`` of each step (:func:`signal_caps`) as the safety layer holds the
    controller's."""
    n = len(inputs.index) if steps is None else min(steps, len(inputs.index))
    minimum = np.array([p.min_limit_pct / 100 * p.rated_w for p in site.pv], dtype=float)
    trace = Trace.empty(inputs.index[:n], len(params.battery_ids), len(params.pv_ids), True)
    trace.stats.update(plans=0.0, fallback_plans=0.0, failed_plans=0.0, unplanned_steps=0.0)
    soc, store = params.soc0_wh.copy(), np.array([params.store0_wh])
    roofs = _roofs(params, inputs)
    plan: Plan | None = None
    for t in range(n):
        when = pd.Timestamp(trace.index[t])
        if plan is None or when not in plan.frame.index:
            plan = (
                _perfect_plan(site, raw, when, soc, float(store[0]), planner, trace, signals, roofs)
                or plan
            )
        row = plan_row(plan.frame, when.to_pydatetime()) if plan is not None else None
        bat, pv, hp = _device_values(params, inputs.inp[t], row)
        if caps is not None:
            pv = np.minimum(pv, np.maximum(caps.pv_w[t], minimum))
            bat = np.maximum(bat, -caps.charge_w[t])
            hp = min(hp, float(caps.hp_w[t]))
        trace.planned[t] = planned_values(row)
        trace.setpoints[t] = np.concatenate([bat, pv, [hp]])
        k.plant_step(
            params.bat, params.pv_rated_w, params.heat, inputs.pv_avail_w[t], inputs.inp[t],
            bat, pv, hp, soc, store, trace.bat_w[t], trace.pv_w[t], trace.out[t],
        )  # fmt: skip
        trace.bat_ch_w[t] = np.maximum(-trace.bat_w[t], 0.0)
        trace.bat_soc_wh[t] = soc
        trace.stats["unplanned_steps"] += row is None
    return trace


def _roofs(params: PlantParams, inputs: PlantInputs) -> pd.DataFrame | None:
    """Each inverter's PV available in each quarter hour [W] as the plant has it, where it
    is not the table's profile times the inverter's peak (PV per inverter and minute,
    :mod:`vpp.data.clouds`); None where it is."""
    if inputs.pv_minute_w is None or not len(params.pv_ids):
        return None
    columns = [f"{p}{PV_OVERRIDE_SUFFIX}" for p in params.pv_ids]
    return pd.DataFrame(inputs.pv_avail_w, index=inputs.index, columns=columns)


def _with_roofs(site: Site, fc: pd.DataFrame, roofs: pd.DataFrame | None) -> pd.DataFrame:
    """``fc`` with each inverter's own PV (``roofs``, :func:`_roofs`) as its forecast; past
    the replayed days the table's profile times its peak, clipped at its rating."""
    if roofs is None:
        return fc
    out = fc.copy()
    known = roofs.reindex(fc.index)
    profile = fc["pv_w_per_kwp"].to_numpy(float)
    for pv in site.pv:
        column = f"{pv.id}{PV_OVERRIDE_SUFFIX}"
        default = np.clip(profile * pv.dc_peak_w / 1000.0, 0.0, pv.rated_w)
        out[column] = np.where(known[column].notna(), known[column].to_numpy(float), default)
    return out


def _perfect_plan(
    site: Site,
    raw: pd.DataFrame,
    when: pd.Timestamp,
    soc: np.ndarray,
    store_wh: float,
    planner: Planner,
    trace: Trace,
    signals: Sequence[Signal] = (),
    roofs: pd.DataFrame | None = None,
) -> Plan | None:
    index = pd.DatetimeIndex(raw.index)
    horizon = min(
        timedelta(hours=site.optimizer.horizon_h),
        pd.Timedelta(index[-1] + STEP - when).to_pytimedelta(),
    )
    window = raw[(index >= when - HISTORY) & (index < when + horizon + timedelta(hours=1))]
    state = State(
        battery_soc_wh={b.id: float(e) for b, e in zip(site.batteries, soc, strict=True)},
        store_wh=store_wh,
    )
    try:
        fc = forecast_from_raw(site, forecast(window, when.to_pydatetime(), horizon, "perfect"))
        fc = with_signals(site, _with_roofs(site, fc, roofs), signals)
        plan = planner.plan(state, fc, when.to_pydatetime())
    except ValueError as exc:  # the data end, or a column without values
        trace.stats["failed_plans"] += 1
        if str(exc) not in trace.notes:
            trace.notes.append(str(exc))
        return None
    trace.stats["plans"] += 1
    trace.stats["fallback_plans"] += plan.info.status != "optimal"
    return plan


def _device_values(
    params: PlantParams, inp: np.ndarray, row: pd.Series | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Battery W, PV caps W and heat pump W from a plan row (device defaults without one)."""
    if row is None:
        return (
            np.zeros(len(params.battery_ids)),
            params.pv_rated_w.copy(),
            k.heat_led_w(params.heat, inp),
        )
    bat = np.array([float(row.get(f"{b}.battery_w", 0.0)) for b in params.battery_ids])
    pv = np.array([float(row.get(f"{p}.pv_limit_w", np.nan)) for p in params.pv_ids], dtype=float)
    pv = np.where(np.isfinite(pv), pv, params.pv_rated_w)
    hp = float(row.get("heat_pump_el_w", 0.0))
    return np.nan_to_num(bat), pv, hp if np.isfinite(hp) else 0.0
