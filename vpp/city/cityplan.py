"""The city plan: every district as one battery and one PV unit, planned by the same
optimizer that plans a district (:mod:`optimizer.planner`), under the substation's limits.

Each agent's flexibility becomes two devices of a city site (``<agent>-bat``, ``<agent>-pv``,
ratings the sums of its members'), its fixed demand the city's base load, and the
substation's import and export limits the city's grid connection. The plan's per-device
columns are the agents' targets.

Substation caps (:class:`vpp.city.signals.SubstationCap`) become the plan's per-step
``import_limit_w`` / ``export_limit_w`` (under the connection's limits), and a district's
``feed_in_pct`` signal a cap on its PV unit (``<agent>-pv.cap_w``, that share of its
rating), each for every step it overlaps, even in part (as a district plans its own
signals, :mod:`vpp.signals.plan`). A district's own grid caps and consumption limits are
not in the city plan: the city plan has no grid connection per district; the agents hold
them (their safety layer and their own plans).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from optimizer.inputs import DEVICE_CAP_SUFFIX, State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from vpp.city.schema import Flexibility, GridSignal
from vpp.city.signals import SubstationCap
from vpp.core.site import Site


@dataclass(frozen=True)
class CityPlan:
    start: datetime
    #: agent -> (battery W per step, PV output cap W per step)
    targets: dict[str, tuple[list[float], list[float]]]
    import_w: list[float]
    export_w: list[float]
    status: str
    solve_s: float


def city_site(flex: dict[str, Flexibility], import_limit_w: float, export_limit_w: float) -> Site:
    devices: list[dict[str, object]] = []
    for n, (agent, f) in enumerate(sorted(flex.items())):
        b = f.battery
        if b.capacity_wh > 0 and b.max_charge_w > 0 and b.max_discharge_w > 0:
            lo = 100 * b.soc_min_wh / b.capacity_wh
            hi = max(100 * b.soc_max_wh / b.capacity_wh, lo + 0.1)
            devices.append({
                "id": f"{agent}-bat", "kind": "battery", "feeder": agent,
                "capacity_wh": b.capacity_wh, "max_charge_w": b.max_charge_w,
                "max_discharge_w": b.max_discharge_w, "charge_efficiency": b.eta_charge,
                "discharge_efficiency": b.eta_discharge, "soc_min_pct": lo,
                "soc_max_pct": min(hi, 100.0), "wear_cost_eur_per_mwh": b.wear_eur_per_mwh,
                "modbus": {"port": 1 + 2 * n},
            })  # fmt: skip
        if f.pv.rated_w > 0:
            devices.append({
                "id": f"{agent}-pv", "kind": "pv", "feeder": agent, "rated_w": f.pv.rated_w,
                "peak_wp": max(f.pv.peak_wp, 1.0),
                "min_limit_pct": min(max(100 * f.pv.min_output_w / f.pv.rated_w, 1.0), 100.0),
                "modbus": {"port": 2 + 2 * n},
            })  # fmt: skip
    return Site.model_validate({
        "site": {"name": "city"},
        "grid": {"import_limit_w": import_limit_w, "export_limit_w": export_limit_w,
                 "import_fee_eur_per_mwh": 0.0, "export_fee_eur_per_mwh": 0.0},
        "optimizer": {"mode": "device", "horizon_h": 36, "time_limit_s": 8.0},
        "devices": devices,
    })  # fmt: skip


def city_forecast(flex: dict[str, Flexibility], start: datetime) -> pd.DataFrame:
    """The common horizon from ``start``: loads summed, each district's PV on its own."""
    steps = min(len(f.pv_available_w) - _offset(f, start) for f in flex.values())
    index = pd.date_range(start, periods=max(steps, 1), freq="15min")
    first = next(iter(sorted(flex.items())))[1]
    o = _offset(first, start)
    cols: dict[str, np.ndarray] = {
        "pv_w_per_kwp": np.zeros(len(index)),
        "load_w": np.zeros(len(index)),
        "heat_demand_th_w": np.zeros(len(index)),
        # Prices as the districts see them (fees included, the same day-ahead market).
        "price_import_eur_per_mwh": np.array(first.price_import_eur_per_mwh[o : o + steps]),
        "price_export_eur_per_mwh": np.array(first.price_export_eur_per_mwh[o : o + steps]),
    }
    for agent, f in flex.items():
        o = _offset(f, start)
        cols["load_w"] = cols["load_w"] + np.array(f.load_w[o : o + steps])
        if f.pv.rated_w > 0:
            cols[f"{agent}-pv.pv_w"] = np.array(f.pv_available_w[o : o + steps])
    return pd.DataFrame(cols, index=index)


def _overlap(index: pd.DatetimeIndex, start: datetime, end: datetime | None) -> np.ndarray:
    """Steps of ``index`` (quarter-hour starts) a window overlaps, even in part."""
    hit = np.asarray(index + pd.Timedelta(minutes=15) > pd.Timestamp(start))
    if end is not None:
        hit &= np.asarray(index < pd.Timestamp(end))
    return hit


def signal_columns(
    flex: dict[str, Flexibility],
    index: pd.DatetimeIndex,
    caps: list[SubstationCap],
    signals: dict[str, list[GridSignal]],
) -> dict[str, np.ndarray]:
    """Forecast columns of the caps and signals over ``index`` [W]; NaN: no cap."""
    cols: dict[str, np.ndarray] = {}
    for c in caps:
        col = cols.setdefault(f"{c.direction}_limit_w", np.full(len(index), np.nan))
        hit = _overlap(index, c.start, c.end)
        col[hit] = np.fmin(col[hit], c.limit_w)
    for agent, found in signals.items():
        f = flex.get(agent)
        if f is None or f.pv.rated_w <= 0:
            continue
        for g in found:
            if g.kind != "feed_in_pct" or g.feed_in_pct is None:
                continue
            col = cols.setdefault(f"{agent}-pv{DEVICE_CAP_SUFFIX}", np.full(len(index), np.nan))
            hit = _overlap(index, g.start, g.end)
            col[hit] = np.fmin(col[hit], g.feed_in_pct / 100.0 * f.pv.rated_w)
    return cols


def _offset(f: Flexibility, start: datetime) -> int:
    return max(0, int((start - f.start).total_seconds() // 900))


def plan_city(
    flex: dict[str, Flexibility],
    import_limit_w: float,
    export_limit_w: float,
    start: datetime,
    caps: list[SubstationCap] | None = None,
    signals: dict[str, list[GridSignal]] | None = None,
) -> CityPlan:
    """Plan the city from ``start`` with the districts' flexibility (all must reach it),
    under the substation ``caps`` and the districts' ``signals`` in their windows."""
    import time

    tic = time.perf_counter()
    site = city_site(flex, import_limit_w, export_limit_w)
    state = State(
        battery_soc_wh={f"{a}-bat": f.battery.soc_wh for a, f in flex.items()}, store_wh=0.0
    )
    forecast = city_forecast(flex, start)
    for name, values in signal_columns(
        flex, pd.DatetimeIndex(forecast.index), caps or [], signals or {}
    ).items():
        forecast[name] = values
    plan = Planner(site).plan(state, forecast, start, SolveOptions(threads=1))
    frame = plan.frame
    frame = frame[frame.index >= pd.Timestamp(start)]
    targets = {}
    for agent in flex:
        bat = frame.get(f"{agent}-bat.battery_w")
        pv = frame.get(f"{agent}-pv.pv_w")
        zero = np.zeros(len(frame))
        targets[agent] = (
            [float(v) for v in (bat.to_numpy(float) if bat is not None else zero)],
            [max(0.0, float(v)) for v in (pv.to_numpy(float) if pv is not None else zero)],
        )
    return CityPlan(
        start=pd.Timestamp(frame.index[0]).to_pydatetime(),
        targets=targets,
        import_w=[float(v) for v in frame["grid_import_w"]],
        export_w=[float(v) for v in frame["grid_export_w"]],
        status=plan.info.status,
        solve_s=time.perf_counter() - tic,
    )


def expiry_for(start: datetime, quarters: int = 2) -> datetime:
    """Targets expire on a quarter hour: ``quarters`` after ``start``."""
    return start + timedelta(minutes=15 * quarters)
