"""A district as one virtual unit: its flexibility up, the coordinator's targets down.

:func:`flexibility` reads what the district's own plan and fleet say it can deliver (the
batteries and inverters summed as the optimizer's aggregated units are, the load it cannot
move). :func:`overlay` puts a target schedule onto the district's plan: the district's
battery power is shared over its batteries and its PV output over its inverters with the
optimizer's own splitting (:mod:`optimizer.split`), so each device gets a setpoint the
controller's safety layer then checks as it checks every other.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd

from optimizer.aggregate import (
    BatteryFleet,
    PvFleet,
    battery_fleet,
    clusters_from_keys,
    pv_available,
    pv_fleet,
)
from optimizer.inputs import State
from optimizer.plan import Plan
from optimizer.split import split_batteries, split_pv
from vpp.city.schema import BatteryUnit, Flexibility, PvUnit, Targets
from vpp.core.site import Site

#: Plan columns the district cannot move on the coordinator's behalf.
FIXED_LOAD = ("load_w", "heat_pump_el_w", "dry_cooler_el_w")


def battery_unit(fleet: BatteryFleet) -> BatteryUnit:
    cap = float(fleet.capacity_wh.sum())
    weight = fleet.capacity_wh if cap > 0 else np.ones(len(fleet))
    pdis = float(fleet.max_discharge_w.sum())
    wear = float((fleet.wear_eur_per_mwh * fleet.max_discharge_w).sum() / pdis) if pdis else 0.0
    return BatteryUnit(
        capacity_wh=cap,
        soc_wh=float(fleet.soc0_wh.sum()),
        soc_min_wh=float(fleet.soc_min_wh.sum()),
        soc_max_wh=float(fleet.soc_max_wh.sum()),
        max_charge_w=float(fleet.max_charge_w.sum()),
        max_discharge_w=pdis,
        eta_charge=float(np.average(fleet.eta_charge, weights=weight)) if len(fleet) else 1.0,
        eta_discharge=float(np.average(fleet.eta_discharge, weights=weight)) if len(fleet) else 1.0,
        wear_eur_per_mwh=wear,
        members=len(fleet),
    )


def pv_unit(fleet: PvFleet) -> PvUnit:
    return PvUnit(
        rated_w=float(fleet.rated_w.sum()),
        peak_wp=float(fleet.peak_wp.sum()),
        min_output_w=float(fleet.min_limit_w.sum()),
        members=len(fleet),
    )


def flexibility(
    site: Site, agent: str, seq: int, sent_at: datetime, plan: Plan, state: State
) -> Flexibility:
    """The district's flexibility over its plan's horizon, from the plan's first step."""
    frame = plan.frame
    fixed = sum(
        (frame[c].to_numpy(float) for c in FIXED_LOAD if c in frame.columns),
        np.zeros(len(frame)),
    )
    bats, _ = battery_fleet(site, state)
    return Flexibility(
        agent=agent,
        seq=seq,
        sent_at=sent_at,
        start=pd.Timestamp(frame.index[0]).to_pydatetime(),
        pv_available_w=_list(frame["pv_available_w"]),
        load_w=[max(0.0, float(v)) for v in fixed],
        price_import_eur_per_mwh=_list(frame["price_import_eur_per_mwh"], clip=False),
        price_export_eur_per_mwh=_list(frame["price_export_eur_per_mwh"], clip=False),
        battery=battery_unit(bats),
        pv=pv_unit(pv_fleet(site, state)),
        import_limit_w=site.grid.import_limit_w,
        export_limit_w=site.grid.export_limit_w,
    ).check()


def _list(series: pd.Series, clip: bool = True) -> list[float]:
    values = np.nan_to_num(series.to_numpy(float))
    return [float(v) for v in (np.maximum(values, 0.0) if clip else values)]


def overlay(site: Site, plan: Plan, targets: Targets, state: State, pv_per_kwp: pd.Series) -> Plan:
    """``plan`` with the quarter hours ``targets`` cover set to the targets, split onto the
    devices; the grid exchange follows. Rows the targets do not cover stay as planned.

    pv_per_kwp : the PV profile the plan was made with [W/kWp], on the plan's index
    """
    frame = plan.frame
    index = pd.DatetimeIndex(frame.index)
    t_index = pd.date_range(targets.start, periods=len(targets.battery_w), freq="15min")
    rows = index.intersection(t_index)
    rows = rows[rows < pd.Timestamp(targets.expires_at)]
    if len(rows) == 0:
        return plan
    at = t_index.get_indexer(rows)
    bat_target = np.asarray(targets.battery_w, dtype=float)[at]
    pv_target = np.asarray(targets.pv_w, dtype=float)[at]
    # Every change is gathered as columns and written in one go: a district's plan has a
    # few columns per device, and column-by-column writes into it cost seconds at 5,000.
    cols: dict[str, np.ndarray] = {}

    bats, _ = battery_fleet(site, state)
    new_bat = np.zeros(len(rows))
    if len(bats):
        one = clusters_from_keys(["district"] * len(bats))
        power, soc, _short = split_batteries(bat_target[None, :], one, bats, 0.25)
        for i, dev in enumerate(bats.ids):
            cols[f"{dev}.battery_w"] = power[i]
            if f"{dev}.soc_wh" in frame.columns:
                cols[f"{dev}.soc_wh"] = soc[i]
        new_bat = power.sum(axis=0)

    pvs = pv_fleet(site, state)
    new_pv = np.zeros(len(rows))
    if len(pvs):
        one = clusters_from_keys(["district"] * len(pvs))
        profile = pv_per_kwp.reindex(rows).ffill().fillna(0.0).to_numpy(float)
        avail = pv_available(pvs, profile, {})
        low = np.minimum(pvs.min_limit_w[:, None], avail)
        unit = np.minimum(pv_target, avail.sum(axis=0))[None, :]
        out, limit = split_pv(unit, one, avail, low, pvs.rated_w, 1.0)
        for i, dev in enumerate(pvs.ids):
            cols[f"{dev}.pv_w"] = out[i]
            cols[f"{dev}.pv_limit_w"] = limit[i]
        new_pv = out.sum(axis=0)

    pos = index.get_indexer(rows)
    old_pv = frame["pv_w"].to_numpy(float)[pos]
    old_bat = frame["battery_w"].to_numpy(float)[pos]
    # Supply went up by delta: the grid exchange goes down by as much.
    net = frame["grid_import_w"].to_numpy(float)[pos] - frame["grid_export_w"].to_numpy(float)[pos]
    net = net - (new_pv - old_pv) - (new_bat - old_bat)
    cols["battery_w"], cols["pv_w"] = new_bat, new_pv
    cols["grid_import_w"], cols["grid_export_w"] = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    frame = _with_rows(frame, pos, cols)
    return replace(plan, frame=frame)


def _with_rows(frame: pd.DataFrame, pos: np.ndarray, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """``frame`` with ``cols[name]`` in rows ``pos`` of each column (new columns are NaN
    elsewhere)."""
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        frame = frame.reindex(columns=[*frame.columns, *missing])
    numeric = all(np.issubdtype(t, np.floating) for t in frame.dtypes)
    if not numeric:  # not expected of a plan, but kept correct
        frame = frame.copy()
        for name, values in cols.items():
            frame.loc[frame.index[pos], name] = values
        return frame
    values = frame.to_numpy(dtype=float, copy=True)
    at = frame.columns.get_indexer(pd.Index(list(cols)))
    values[np.ix_(pos, at)] = np.column_stack(list(cols.values()))
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)
