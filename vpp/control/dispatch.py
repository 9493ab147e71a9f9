"""From the current step of a Plan to one setpoint per device, and the intra-quarter correction.

Pure functions. The plan's per-device columns are ``<id>.battery_w`` (W, > 0 discharge) and
``<id>.pv_limit_w`` (W cap); the heat pump follows the site column ``heat_pump_el_w``.

Correction: between quarter hours the batteries move the measured grid exchange to a target.
With ``e`` the measured minus the target grid power (> 0: importing more than wanted), each
battery's active setpoint moves by ``e * h_i / sum(h)``, where ``h_i`` is its headroom in the
needed direction. The target is the planned exchange (``run.correction = "schedule"``: the
fleet absorbs the forecast error of PV and load), the plan's exchange where taking the
departure pays at the plan's own value of stored energy and the nearest limit otherwise
(``"value"``, :func:`follow_value`: an unforeseen surplus is stored rather than exported, a
surplus that falls short is not bought to be stored), or only the nearest connection limit
when the exchange is past it (``"limits"``: no correction inside the limits). Errors inside a
deadband are left alone so that meter noise does not make the batteries chatter.

Heat correction (:func:`correct_heat_pump`, ``run.heat_correction``): the plan sets the heat
pump per quarter hour from the heat-demand and waste-heat forecasts; the backup boiler (or
the store, below the plan's level) takes whatever the real demand asks beyond that. Between
quarter hours the heat pump is moved to the measured demand: with ``d`` the heat the network
takes now (the plant's heat meter) and ``s`` the plan's net store discharge, the heat pump is
asked for ``(d - s) / COP`` (electric), i.e. the store does what the plan says and the heat
pump makes the rest in place of the boiler, as far as the waste heat on offer (the data
centre's meter) allows, when that is more than planned and its heat is cheaper than the
boiler's at the price and COP now; it is lowered when the store would overflow before the
next correction. Without a heat meter reading nothing is corrected.

Waste heat beyond the plan's (``run.heat_store_waste``, :func:`stored_waste_el_w`): where the
data centre's meter shows more waste heat than the plan's heat pump takes, the heat pump
takes it into the store, as far as the store has room until the next correction, where the
plan's value of stored heat exceeds what the heat pump's heat costs now.

Which share of the difference the store may take (``run.heat_correction_rule``): ``"plan"``
holds the store to the plan's discharge ``s`` (above). ``"spare"`` (the default) lets the
store give more, but only what it holds above what the plan needs of it before its next
recharge (:func:`store_spare_wh`): the heat pump is raised only for the rest, and the store
keeps what the plan's discharges until that recharge need.

Without a usable grid reading (:func:`vpp.control.safety.measured_grid_w`: no meter, offline,
quarantined by :func:`vpp.control.plausible.screen`, not finite or physically implausible)
there is no correction at all: the devices hold the plan's setpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd

from adapters.snapshot import BatteryReading, DatacentreReading, HeatPumpReading, Snapshot
from vpp.control.envelope import effective_horizon_s, soc_room_wh
from vpp.control.safety import Setpoint, battery_window_w, measured_grid_w
from vpp.core.clock import floor_quarter
from vpp.core.kinds import KINDS
from vpp.core.site import BatteryDevice, DeviceKind, Site


def plan_row(frame: pd.DataFrame, when: datetime) -> pd.Series | None:
    """The plan's row for the quarter hour containing ``when`` (None if outside the plan)."""
    step = pd.Timestamp(floor_quarter(when))
    if step not in frame.index:
        return None
    row = frame.loc[step]
    return row if isinstance(row, pd.Series) else row.iloc[0]


def pv_cap_w(limit_w: float, rated_w: float) -> float:
    """A planned PV cap [W]; no cap (NaN, or at least the rating) is the rating."""
    if not math.isfinite(limit_w) or limit_w >= rated_w * 0.999:
        return float(rated_w)
    return max(0.0, float(limit_w))


def setpoints_from_row(site: Site, row: pd.Series, online: set[str]) -> list[Setpoint]:
    """One setpoint per online controllable device for this plan step (none where the plan
    has no value for it, e.g. a device that was offline when the step was planned)."""
    out: list[Setpoint] = []
    # One conversion, then a dict lookup per device (not pandas); built from two lists, not
    # Series.to_dict, which boxes each item on its own (1.5 against 0.17 us per column).
    values = dict(zip(row.index.tolist(), row.to_numpy().tolist(), strict=True))
    for device in site.devices:
        spec = KINDS[device.kind]
        col = spec.column(device.id)
        if col is None or device.id not in online or not device.enabled or col not in values:
            continue
        value = float(values[col])
        if spec.caps_output:  # no cap planned (NaN) is no cap at all
            value = pv_cap_w(value, float(getattr(device, "rated_w", math.inf)))
        elif not math.isfinite(value):
            continue
        out.append(Setpoint(device.id, device.kind, value, value))
    return out


def planned_grid_w(row: pd.Series) -> float:
    """Planned grid power of a step [W, > 0 import]."""
    return float(row["grid_import_w"]) - float(row["grid_export_w"])


def correct_batteries(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    horizon_s: float,
    deadband_w: float,
) -> list[Setpoint]:
    """New battery setpoints that cancel the grid's departure from the plan.

    active : the battery setpoints in force now [W], by device id
    horizon_s : seconds until the next correction (for the SoC headroom)
    deadband_w : departures smaller than this are ignored [W]
    """
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    error = grid - planned_grid_w(row)
    if abs(error) < deadband_w:
        return []
    return shift_batteries(
        site, snapshot, row, active, error, horizon_s, f"correction: grid {error:+.0f} W off plan"
    )


def past_limits_w(grid_w: float, import_limit_w: float, export_limit_w: float) -> float:
    """How far an exchange [W, > 0 import] lies past the grid limits: > 0 above the import
    limit, < 0 beyond the export limit, 0 inside them."""
    return max(0.0, grid_w - import_limit_w) - max(0.0, -grid_w - export_limit_w)


def hold_limits(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    import_limit_w: float,
    export_limit_w: float,
    horizon_s: float,
    deadband_w: float,
) -> list[Setpoint]:
    """New battery setpoints that bring a measured exchange past a grid limit back to it;
    none while the exchange is inside the limits (or past them by less than the deadband)."""
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    error = past_limits_w(grid, import_limit_w, export_limit_w)
    if abs(error) < max(deadband_w, 1e-9):
        return []
    why = f"correction: grid {grid:+.0f} W past its limit"
    return shift_batteries(site, snapshot, row, active, error, horizon_s, why)


def follow_value(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    import_limit_w: float,
    export_limit_w: float,
    horizon_s: float,
    deadband_w: float,
    ahead: ExportAhead | None = None,
) -> list[Setpoint]:
    """New battery setpoints that take the grid's departure from the plan where the plan's
    own value of stored energy says it pays (``run.correction = "value"``), and bring an
    exchange past a grid limit back to it in any case (as :func:`hold_limits`).

    The departure is the one the plan's battery setpoints alone would leave: with ``b`` the
    batteries' measured power (the same last minute the grid reading covers; the setpoint in
    force where a battery reports none) and ``B`` the plan's, ``alone = grid + b - B`` and
    ``e = alone - planned grid`` (W, > 0 importing more than planned). With ``v`` the plan's
    value of stored energy (``value_stored_eur_per_mwh``, the dual of the batteries' energy
    balance), the fleet's mean efficiencies and wear cost ``w`` per MWh discharged, a MWh
    taken from the grid side is worth ``keep = v * eta_c`` stored, and a MWh given to it
    costs ``give = v / eta_d + w`` from the store. Then, at the prices of the plan's row now
    (import with its CO2 price, as the plan counts it):

    - a deficit (``e > 0``) cuts the import, never beyond it (no stored energy is exported):
      first by charging less than planned, where the import costs more than ``keep``, then
      by discharging more, where it costs more than ``give``;
    - a surplus (``e < 0``) cuts the export, never beyond it (nothing is charged from the
      grid): first by discharging less than planned, where the export earns less than
      ``give``, then by charging more, where it earns less than ``keep``.

    This is self-consumption around the plan, priced by the plan: an unforeseen surplus goes
    into the batteries rather than out at the export price, a surplus that falls short is
    not bought from the grid to be stored, and the next plan places the difference. Each
    correction starts again from the plan's setpoints, so a passing cloud's correction ends
    with the cloud. Departures under ``deadband_w`` and a plan without duals (a fallback
    plan) only hold the limits.

    Storing the planned export too (``run.store_surplus_first``; ``ahead``: what the plan
    does after this quarter hour, over the next :data:`EXPORT_AHEAD_H` hours,
    :func:`export_ahead`): an export still left after the above is stored where the energy
    displaces import (export price < (import price + CO2) * eta_c * eta_d) and the plan's
    export ahead is below ``run.store_surplus_ahead_ratio`` times the batteries' room (the
    energy that fills them to their SoC maximum, over ``eta_c``). A plan made with perfect
    foresight may export in the morning, when export pays a little more, and fill the
    batteries from the noon surplus; where its forecast of that surplus is too high the
    batteries stay part empty and their energy is bought back at the import price. Where
    the plan exports several times their room later on they fill whatever the forecast's
    error, and the plan's timing stands. The room the plan keeps for energy it values at
    nothing or below its export price (``ahead.kept_wh``: a surplus above the export limit
    or at a negative price, an import at a negative price) is left to it: a morning export
    stored there would push that energy into curtailment. At most the rest of the room is
    filled, spread over the correction's horizon."""
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    bats = [b for b in site.batteries if b.id in active]
    planned = sum(_value(row, f"{b.id}.battery_w", active[b.id]) for b in bats)
    measured = 0.0
    for bat in bats:
        state = snapshot.devices.get(bat.id)
        reading = state.reading if state is not None and state.health.online else None
        power = reading.power_w if isinstance(reading, BatteryReading) else None
        measured += power if power is not None and math.isfinite(power) else active[bat.id]
    alone = grid + measured - planned
    error = alone - planned_grid_w(row)
    value = _value(row, "value_stored_eur_per_mwh", math.nan)
    priced = bool(bats) and math.isfinite(value)
    if priced:  # the fleet's mean efficiencies and wear, the row's prices as the plan counts
        n = len(bats)
        charge_eff = sum(b.charge_efficiency for b in bats)
        eta_c, eta_d = charge_eff / n, sum(b.discharge_efficiency for b in bats) / n
        keep = value * charge_eff / n
        give = value / eta_d + sum(b.wear_cost_eur_per_mwh for b in bats) / n
        co2 = site.economics.co2_price_eur_per_t * _value(row, "co2_g_per_kwh") / 1e3
        import_price = _value(row, "price_import_eur_per_mwh", math.nan) + co2
        export_price = _value(row, "price_export_eur_per_mwh", math.nan)
    take = 0.0
    if priced and abs(error) >= max(deadband_w, 1e-9):
        if error > 0:
            need = min(error, max(alone, 0.0))
            less_charge = min(need, max(-planned, 0.0))
            take += less_charge if import_price > keep else 0.0
            take += need - less_charge if import_price > give else 0.0
        else:
            need = min(-error, max(-alone, 0.0))
            less_discharge = min(need, max(planned, 0.0))
            take -= less_discharge if export_price < give else 0.0
            take -= need - less_discharge if export_price < keep else 0.0
    after = alone - take
    run = site.run
    if priced and run.store_surplus_first and ahead is not None and after <= -max(deadband_w, 1e-9):
        room = batteries_room_wh(bats, snapshot)
        free = room - ahead.kept_wh
        if (
            export_price < import_price * eta_c * eta_d  # the energy would displace import
            and ahead.export_wh < run.store_surplus_ahead_ratio * room
            and free > 0.0
        ):
            # Charge the export that is left, at most the free room over the horizon (and as
            # far as the batteries can).
            stored = max(after, -free * 3600.0 / effective_horizon_s(horizon_s))
            take += stored
            after -= stored
    past = past_limits_w(after, import_limit_w, export_limit_w)
    if abs(past) >= max(deadband_w, 1e-9):  # past a limit: back to it, as hold_limits
        take += past
    move = planned + take - sum(active[b.id] for b in bats)  # from the setpoints in force
    if abs(move) < 1e-6:
        return []
    why = f"correction: grid {error:+.0f} W off plan, {take:+.0f} W taken at the plan's value"
    return shift_batteries(site, snapshot, row, active, move, horizon_s, why)


#: Hours of the plan ahead whose export tells whether the batteries fill anyway
#: (:func:`follow_value`): the rest of a day's sunshine from the morning on.
EXPORT_AHEAD_H = 8.0


class ExportAhead(NamedTuple):
    """What a plan does with its surplus after a quarter hour, over the next
    :data:`EXPORT_AHEAD_H` hours (:func:`export_ahead`)."""

    #: Exported [Wh].
    export_wh: float
    #: Charged into the batteries in quarter hours whose energy the plan values below its
    #: export price (the export at its limit) or at or below nothing (a surplus curtailed or
    #: at a negative price, an import at a negative price) [Wh]: the room it keeps for them.
    kept_wh: float = 0.0


def export_ahead(frame: pd.DataFrame, step: datetime) -> ExportAhead:
    """What the plan ``frame`` exports after the quarter hour ``step``, over the next
    :data:`EXPORT_AHEAD_H` hours, and the room it keeps for energy it values below its export
    price or at nothing (:class:`ExportAhead`; none without the columns, or without duals)."""
    start = pd.Timestamp(step)
    after = (frame.index > start) & (frame.index <= start + pd.Timedelta(hours=EXPORT_AHEAD_H))
    cols = frame.columns
    export = (
        float(frame["grid_export_w"].to_numpy()[after].sum() * 0.25)
        if "grid_export_w" in cols
        else 0.0
    )
    kept = 0.0
    if {"battery_w", "value_el_eur_per_mwh", "price_export_eur_per_mwh"} <= set(cols):
        charge = np.maximum(-frame["battery_w"].to_numpy(dtype=float)[after], 0.0)
        value = frame["value_el_eur_per_mwh"].to_numpy(dtype=float)[after]
        price = frame["price_export_eur_per_mwh"].to_numpy(dtype=float)[after]
        # 1 EUR/MWh below the export price: the export is at its limit (a NaN dual: never).
        low = value < np.maximum(price - 1.0, 1e-6)
        kept = float(charge[low].sum() * 0.25)
    return ExportAhead(export, kept)


def batteries_room_wh(bats: list[BatteryDevice], snapshot: Snapshot) -> float:
    """The surplus [Wh] that would fill ``bats`` to their SoC maximum from the readings of
    ``snapshot`` (each battery's room over its charge efficiency; none without a reading)."""
    room = 0.0
    for bat in bats:
        state = snapshot.devices.get(bat.id)
        reading = state.reading if state is not None and state.health.online else None
        if isinstance(reading, BatteryReading) and reading.soc_pct is not None:
            room += max(0.0, soc_room_wh(bat, reading.soc_pct)[1]) / bat.charge_efficiency
    return room


def shift_batteries(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    error_w: float,
    horizon_s: float,
    reason: str,
) -> list[Setpoint]:
    """Move the active battery setpoints by ``error_w`` in all [W, > 0 more discharge],
    shared by each battery's headroom in that direction over ``horizon_s`` [s]."""
    if not active or error_w == 0.0:
        return []
    rooms: dict[str, float] = {}
    for bat in site.batteries:
        if bat.id not in active:
            continue
        state = snapshot.devices.get(bat.id)
        reading = state.reading if state is not None and state.health.online else None
        if not isinstance(reading, BatteryReading):
            continue
        lo, hi = battery_window_w(bat, reading, horizon_s)
        rooms[bat.id] = max(0.0, hi - active[bat.id] if error_w > 0 else active[bat.id] - lo)
    total = sum(rooms.values())
    if total <= 0:
        return []
    share = min(1.0, abs(error_w) / total)
    sign = 1.0 if error_w > 0 else -1.0
    out = []
    for device_id, room in rooms.items():
        value = active[device_id] + sign * room * share
        planned = float(row.get(f"{device_id}.battery_w", active[device_id]))
        out.append(Setpoint(device_id, DeviceKind.BATTERY, value, planned, reason=reason))
    return out


def corrections(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    active: Mapping[str, float],
    import_limit_w: float,
    export_limit_w: float,
    horizon_s: float,
    store_wh: float | None = None,
    spare_wh: float | None = None,
    settled: bool = True,
    ahead: ExportAhead | None = None,
) -> list[Setpoint]:
    """One intra-quarter correction: the batteries move the exchange to the plan
    (:func:`correct_batteries`, ``run.correction = "schedule"``), take the departure from it
    where the plan's value of stored energy says it pays (:func:`follow_value`, ``"value"``)
    or only bring it back inside the grid limits (:func:`hold_limits`, ``"limits"``), with
    the site's deadband; then PV is
    curtailed where the export still exceeds ``export_limit_w`` (:func:`curtail_export`);
    and the heat pump follows the measured heat demand (:func:`correct_heat_pump`, with the
    store's estimated energy ``store_wh`` [Wh] and, with ``run.heat_correction_rule =
    "spare"``, what it holds above the plan's need ``spare_wh`` [Wh], :func:`store_spare_wh`).

    ``settled``: the readings cover a minute of the plan's current quarter hour. Until they
    do (the first minute after the quarter's dispatch) the load, PV and grid they show are
    the previous quarter's, which the plan's new row does not describe: only the limits are
    held, whatever the mode.

    ``ahead``: what the plan does with its surplus over the next hours (:func:`export_ahead`;
    None: a planned export is left to the plan), for ``run.store_surplus_first``.

    ``vpp run`` and replay call this every ``run.correction_interval_s``.
    """
    run = site.run
    if settled and run.correction == "schedule":
        setpoints = correct_batteries(
            site, snapshot, row, active, horizon_s, run.correction_deadband_w
        )
    else:
        rule = (
            partial(follow_value, ahead=ahead)
            if settled and run.correction == "value"
            else hold_limits
        )
        setpoints = rule(
            site,
            snapshot,
            row,
            active,
            import_limit_w,
            export_limit_w,
            horizon_s,
            run.correction_deadband_w,
        )
    absorbed = sum(sp.power_w - active[sp.device_id] for sp in setpoints)
    setpoints += curtail_export(site, snapshot, export_limit_w, charge_added_w=-absorbed)
    if run.heat_correction:
        setpoints += correct_heat_pump(site, snapshot, row, store_wh, horizon_s, spare_wh)
    return setpoints


def _value(row: pd.Series, col: str, default: float = 0.0) -> float:
    value = float(row.get(col, default))
    return value if math.isfinite(value) else default


def boiler_eur_per_mwh_th(site: Site) -> float:
    """What one MWh of boiler heat costs: gas and its CO2, over the boiler's efficiency."""
    gas = site.heat.gas_price_eur_per_mwh
    co2 = site.economics.co2_price_eur_per_t * site.economics.gas_co2_kg_per_mwh / 1e3
    return (gas + co2) / site.heat.boiler_efficiency


def heat_pump_eur_per_mwh_th(
    site: Site, row: pd.Series, cop: float, exporting: bool = False
) -> float:
    """What one MWh of heat-pump heat costs now: the electricity (the import price with its
    CO2, or the export revenue forgone while the site exports) over the COP, less the dry
    coolers' electricity for the waste heat the heat pump takes instead of them."""
    if exporting:
        el = _value(row, "price_export_eur_per_mwh")
    else:
        co2 = site.economics.co2_price_eur_per_t * _value(row, "co2_g_per_kwh") / 1e3
        el = _value(row, "price_import_eur_per_mwh") + co2
    dc = site.datacentre
    dry = dc.dry_cooler_el_per_th if dc is not None else 0.0
    return el * (1.0 - dry * (cop - 1.0)) / cop


#: Net store flows smaller than this [W] are solver noise, not a planned charge or discharge.
STORE_FLOW_TOL_W = 1.0


def store_spare_wh(
    store_wh: float,
    planned_wh: np.ndarray,
    planned_th_w: np.ndarray,
    elapsed: float,
    step_h: float = 0.25,
) -> float:
    """What the store holds above what the plan needs of it before its next recharge [Wh].

    store_wh : the store's energy now (the controller's estimate) [Wh]
    planned_wh : the plan's store energy at the end of each step, from the current step on
        to the plan's end [Wh]
    planned_th_w : the plan's net store discharge in the same steps [W, > 0 discharge]
    elapsed : the share of the current step that has passed (0..1)
    step_h : the plan's step length [h]

    The rule: the plan's level now is ``e_now = planned_wh[0] + planned_th_w[0] * (1 -
    elapsed) * step_h`` (as :class:`~vpp.control.store.StoreEstimate` carries it). The plan
    needs of the store what it takes out of it until the store is next recharged: the window
    runs from now to the first step that charges the store after the first step that
    discharges it (to the plan's end if there is none), and ``trough`` is the plan's lowest
    level in it (``e_now`` at most). The plan needs ``e_now - trough``; the spare is
    ``store_wh - (e_now - trough)``. A store that gives its spare now still gives every
    discharge the plan asks of it until that recharge (the plan's trajectory moved down by
    the estimate's departure and the spare stays >= 0 there); what is taken beyond the plan
    is the next plans' to refill. The window's length comes from the plan alone. Negative
    when the store holds less than the plan needs (nothing to spare).
    """
    if len(planned_wh) == 0:
        return 0.0
    e_now = float(planned_wh[0]) + float(planned_th_w[0]) * (1.0 - elapsed) * step_h
    discharging = np.flatnonzero(planned_th_w > STORE_FLOW_TOL_W)
    end = len(planned_wh)
    if discharging.size:
        first = int(discharging[0])
        recharging = np.flatnonzero(planned_th_w[first + 1 :] < -STORE_FLOW_TOL_W)
        if recharging.size:
            end = first + 1 + int(recharging[0])
    trough = min(e_now, float(np.min(planned_wh[:end])))
    return float(store_wh) - (e_now - trough)


def plan_store_ahead(frame: pd.DataFrame, when: datetime) -> tuple[np.ndarray, np.ndarray]:
    """The plan's store energy [Wh] and net discharge [W] from the step containing ``when``
    to the plan's end (empty outside the plan or without a store in it)."""
    if "store_wh" not in frame.columns or "store_th_w" not in frame.columns:
        return np.zeros(0), np.zeros(0)
    ahead = frame.loc[frame.index >= pd.Timestamp(floor_quarter(when))]
    energy = ahead["store_wh"].to_numpy(dtype=float)
    flow = ahead["store_th_w"].to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(energy) & np.isfinite(flow)))
    stop = int(bad[0]) if bad.size else len(energy)
    return energy[:stop], flow[:stop]


def heat_pump_target_w(
    site: Site,
    row: pd.Series,
    demand_th_w: float,
    cop: float,
    store_wh: float | None,
    horizon_s: float,
    exporting: bool = False,
    spare_wh: float | None = None,
) -> float:
    """The heat pump's electric power [W] for the measured heat demand ``demand_th_w`` [W]
    at ``cop``: the plan's, raised so that the store does no more than the plan says and
    the boiler nothing when the heat pump's heat is cheaper than the boiler's
    (``exporting``: the site exports now, electricity costs the export price; the plan's
    boiler heat is then there because it expected too little waste heat or demand), lowered
    so that the store
    (``store_wh`` [Wh]) does not overflow within ``horizon_s`` [s]. Within 0..``max_el_w``,
    and at least the minimum part load when running (as the unit itself runs).

    ``spare_wh`` [Wh] (``run.heat_correction_rule = "spare"``, :func:`store_spare_wh`): the
    store may give, on top of the plan's discharge, its spare spread over ``horizon_s``
    (within its discharge rating) before the heat pump is raised for the rest. None: the
    store does what the plan says (``"plan"``)."""
    hp = site.heat_pump
    assert hp is not None
    planned = min(max(_value(row, "heat_pump_el_w"), 0.0), hp.max_el_w)
    store_th = _value(row, "store_th_w")
    extra_th = 0.0
    if spare_wh is not None and spare_wh > 0.0:
        rating_room = max(0.0, site.heat.store_max_discharge_th_w - store_th)
        extra_th = min(spare_wh * 3600.0 / horizon_s, rating_room)
    need_th = demand_th_w - store_th - extra_th
    target = planned
    supply_max = heat_supply_max_w(site, row, demand_th_w, store_wh, horizon_s)
    if need_th > cop * planned:
        if heat_pump_eur_per_mwh_th(site, row, cop, exporting) < boiler_eur_per_mwh_th(site):
            target = need_th / cop
    elif cop * planned > supply_max:
        target = max(0.0, supply_max) / cop
    target = min(max(target, 0.0), hp.max_el_w)
    floor_w = hp.min_part_load_pct / 100.0 * hp.max_el_w
    if 0.0 < target < floor_w:
        # Raised to the minimum part load only where the store can take the extra heat.
        raise_ok = target >= planned and cop * floor_w <= max(supply_max, cop * planned)
        target = floor_w if raise_ok else 0.0
    return target


def heat_supply_max_w(
    site: Site, row: pd.Series, demand_th_w: float, store_wh: float | None, horizon_s: float
) -> float:
    """The most heat [W] the heat pump can give until the next correction (``horizon_s``):
    the network's demand and what the store (``store_wh`` [Wh]) has room for, within its
    charge rating, less the plan's boiler heat; unbounded without a store or its content."""
    if store_wh is None or site.heat.store_capacity_wh <= 0:
        return math.inf
    room_wh = max(0.0, site.heat.store_capacity_wh - store_wh)
    charge_max_w = min(room_wh * 3600.0 / horizon_s, site.heat.store_max_charge_th_w)
    return demand_th_w + charge_max_w - _value(row, "boiler_th_w")


def _waste_heat_w(site: Site, snapshot: Snapshot) -> float | None:
    """The waste heat on offer now [W], from the data centre's meter (None if not read)."""
    dc = site.datacentre
    state = snapshot.devices.get(dc.id) if dc is not None else None
    reading = state.reading if state is not None and state.health.online else None
    if not isinstance(reading, DatacentreReading) or reading.waste_heat_w is None:
        return None
    waste = float(reading.waste_heat_w)
    return max(0.0, waste) if math.isfinite(waste) else None


def heat_pump_setpoint(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    store_wh: float | None,
    horizon_s: float,
    spare_wh: float | None = None,
) -> tuple[float, float, float] | None:
    """The heat pump's electric setpoint [W] for the heat demand measured now
    (:func:`heat_pump_target_w`), with the COP and the demand [W] it used; None without an
    online heat pump that reports the network's heat (``network_th_w``).

    The COP is the measured one (heat out over electricity in) while the unit runs, else
    the plan's; the setpoint is capped at what the waste heat on offer can feed
    (``waste / (COP - 1)``, from the data centre's meter where it is read).
    """
    hp = site.heat_pump
    if hp is None or not hp.enabled:
        return None
    state = snapshot.devices.get(hp.id)
    reading = state.reading if state is not None and state.health.online else None
    if not isinstance(reading, HeatPumpReading) or reading.network_th_w is None:
        return None
    demand = float(reading.network_th_w)
    el, th = reading.el_power_w, reading.th_power_w
    running = el is not None and th is not None and el > 0.01 * hp.max_el_w
    cop = float(th) / float(el) if running else _value(row, "heat_pump_cop")  # type: ignore[arg-type]
    if not (math.isfinite(demand) and math.isfinite(cop)) or cop <= 1.0 or demand < 0:
        return None
    grid = measured_grid_w(site, snapshot)
    exporting = grid is not None and grid < 0
    target = heat_pump_target_w(site, row, demand, cop, store_wh, horizon_s, exporting, spare_wh)
    waste = _waste_heat_w(site, snapshot)
    if waste is not None:
        reach_w = min(waste / (cop - 1.0), hp.max_el_w)
        target = min(target, reach_w)
        if site.run.heat_store_waste:
            stored = stored_waste_el_w(
                site, row, demand, cop, store_wh, horizon_s, exporting, reach_w
            )
            target = max(target, stored)
    return target, cop, demand


def stored_waste_el_w(
    site: Site,
    row: pd.Series,
    demand_th_w: float,
    cop: float,
    store_wh: float | None,
    horizon_s: float,
    exporting: bool,
    reach_el_w: float,
) -> float:
    """The heat pump's electric power [W] that takes the waste heat on offer into the store
    where the plan's own value of stored heat (``value_store_eur_per_mwh``, the dual of the
    store's energy balance) exceeds what the heat pump's heat costs now
    (:func:`heat_pump_eur_per_mwh_th`): at most ``reach_el_w`` (what the waste heat on offer
    feeds, within the rating), and only what the network (``demand_th_w``) and the store's
    room until the next correction (``horizon_s``) can take. 0 where that does not pay, where
    the plan itself cools waste heat away in the quarter hour (then it takes no more of it
    at any price: its heat pump runs below its reach, and the store's value equals the
    heat's cost there), where the store's content or the plan's value is unknown (a
    fallback plan has none), or below the minimum part load.

    The plan sets the heat pump for the waste heat it expects; where the data centre gives
    more (a batch job, the IT load's own noise), the plan would have taken it at the same
    value, and the extra heat is otherwise cooled away. Where the plan values stored heat
    below its cost (a store that will overflow, heat that is cheaper later) the plan stands.
    """
    hp = site.heat_pump
    value = float(row.get("value_store_eur_per_mwh", math.nan))
    if hp is None or store_wh is None or not math.isfinite(value) or horizon_s <= 0:
        return 0.0
    if site.heat.store_capacity_wh <= 0:
        return 0.0
    if _value(row, "dry_cooler_th_w") > STORE_FLOW_TOL_W:
        return 0.0  # the plan cools waste heat away itself: it does not want more
    if value <= heat_pump_eur_per_mwh_th(site, row, cop, exporting):
        return 0.0
    supply_w = heat_supply_max_w(site, row, demand_th_w, store_wh, horizon_s)
    target = min(reach_el_w, max(0.0, supply_w) / cop, hp.max_el_w)
    floor_w = hp.min_part_load_pct / 100.0 * hp.max_el_w
    return target if target >= floor_w else 0.0


def correct_heat_pump(
    site: Site,
    snapshot: Snapshot,
    row: pd.Series,
    store_wh: float | None,
    horizon_s: float,
    spare_wh: float | None = None,
) -> list[Setpoint]:
    """The heat pump's setpoint for the measured heat demand (:func:`heat_pump_setpoint`),
    when it differs from the one in force by more than the site's deadband (in heat)."""
    found = heat_pump_setpoint(site, snapshot, row, store_wh, horizon_s, spare_wh)
    hp = site.heat_pump
    if found is None or hp is None:
        return []
    target, cop, demand = found
    reading = snapshot.devices[hp.id].reading
    planned = _value(row, "heat_pump_el_w")
    active = getattr(reading, "el_setpoint_w", None)
    current = planned if active is None else float(active)
    if abs(target - current) * cop < site.run.correction_deadband_w:
        return []
    why = (
        f"correction: heat demand {demand:.0f} W, heat pump {cop * target:.0f} W"
        f" (plan {cop * planned:.0f} W)"
    )
    return [Setpoint(hp.id, DeviceKind.HEAT_PUMP, target, planned, reason=why)]


def curtail_export(
    site: Site, snapshot: Snapshot, export_limit_w: float, charge_added_w: float = 0.0
) -> list[Setpoint]:
    """PV limits that bring a measured export above ``export_limit_w`` back under it.

    When the batteries cannot take the surplus (full, or already charging at their limit),
    forecast error can push the export past the connection's limit. The excess, less the
    extra charging ``charge_added_w`` [W] the batteries were just given, is cut from the
    inverters in proportion to their output, never below their minimum limits.
    """
    grid = measured_grid_w(site, snapshot)
    if grid is None:
        return []
    excess = -grid - export_limit_w - max(0.0, charge_added_w)
    if excess <= 0:
        return []
    producing: list[tuple[str, float, float]] = []
    for pv in site.pv:
        state = snapshot.devices.get(pv.id)
        reading = state.reading if state is not None and state.health.online else None
        out = getattr(reading, "ac_power_w", None)
        if out:
            producing.append((pv.id, float(out), pv.rated_w))
    total = sum(out for _, out, _ in producing)
    if total <= 0:
        return []
    cut = min(1.0, excess / total)
    setpoints = []
    for device_id, out, rated in producing:
        floor_w = site.device(device_id).min_limit_pct / 100.0 * rated
        cap = max(floor_w, out * (1.0 - cut))
        why = f"correction: export {-grid:.0f} W over its limit {export_limit_w:.0f} W"
        setpoints.append(Setpoint(device_id, DeviceKind.PV, cap, rated, reason=why))
    return setpoints
