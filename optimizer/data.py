"""The numbers one plan is built from: site, state and forecast reduced to arrays.

:func:`build_problem` turns the inputs into a :class:`ModelData` (unit level, what the LP sees)
plus the device-level context the split needs. Everything here is in W, Wh, EUR and hours; the
Pyomo model rescales to kW internally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from optimizer.aggregate import (
    BatteryFleet,
    BatteryUnits,
    Clusters,
    PvFleet,
    battery_fleet,
    battery_units,
    cluster_batteries,
    cluster_pv,
    pv_available,
    pv_fleet,
    share_lines,
    taper_lines,
)
from optimizer.carnot import cop_series
from optimizer.inputs import DEVICE_CAP_SUFFIX, PV_OVERRIDE_SUFFIX, State
from optimizer.params import OptimizerParams
from vpp.core.site import Site

F64 = NDArray[np.float64]


@dataclass
class ModelData:
    """Unit-level inputs of the LP. Arrays are per step (T,) or per unit and step (U, T)."""

    index: pd.DatetimeIndex
    dt_h: float
    milp: bool
    bat: BatteryUnits
    #: Per-step power limits of each battery unit, W; start at the unit's rating and are
    #: tightened where the split found the devices could not follow the unit.
    bat_charge_max_w: F64
    bat_discharge_max_w: F64
    #: SoC bounds per unit and step, Wh: the window, widened along the fastest way back for
    #: a unit that starts outside it (:func:`soc_bounds`).
    bat_soc_lo_wh: F64
    bat_soc_hi_wh: F64
    #: Taper lines ``p <= a + b * headroom`` per unit (U, 2): a in W, b in 1/h (see
    #: :func:`optimizer.aggregate.taper_lines`); None when no unit is large enough for one.
    bat_charge_taper: tuple[F64, F64] | None
    bat_discharge_taper: tuple[F64, F64] | None
    #: Value of energy stored at the horizon's end, EUR per MWh stored, per unit; it is
    #: ``bat_terminal_price_eur_per_mwh * eta_c * eta_d``.
    bat_terminal_eur_per_mwh: F64
    bat_terminal_price_eur_per_mwh: float
    pv_names: tuple[str, ...]
    pv_avail_w: F64
    pv_min_w: F64
    load_w: F64
    import_cap_w: F64
    export_cap_w: F64
    price_import_eur_per_mwh: F64
    price_export_eur_per_mwh: F64
    co2_g_per_kwh: F64
    hp_max_el_w: F64
    hp_min_part: float
    cop: F64
    waste_heat_w: F64
    dry_cooler_el_per_th: float
    heat_demand_w: F64
    boiler_max_w: float
    boiler_efficiency: float
    store_capacity_wh: float
    store_max_charge_w: float
    store_max_discharge_w: float
    #: Share of the store's content kept over one step: (1 - loss per hour) ** dt_h.
    store_keep: float
    store0_wh: float
    store_terminal_eur_per_mwh: float
    gas_eur_per_mwh: float
    co2_price_eur_per_t: float
    gas_co2_kg_per_mwh: float
    unserved_el_penalty_eur_per_mwh: float
    spilled_el_penalty_eur_per_mwh: float
    unmet_heat_penalty_eur_per_mwh: float
    #: The store's reserve at the last step in tiers: each tier's energy, Wh thermal, and
    #: what each MWh of it is worth, EUR per MWh thermal (see :func:`set_store_floor`).
    store_tier_wh: F64 = field(default_factory=lambda: np.zeros(0))
    store_tier_eur_per_mwh: F64 = field(default_factory=lambda: np.zeros(0))
    #: The heat forecast's error per step, W thermal, that the store keeps a reserve against
    #: where the heat pump could not catch up (:func:`set_heat_risk`); empty: no such reserve
    #: (and none of its columns and rows in the LP).
    heat_error_w: F64 = field(default_factory=lambda: np.zeros(0))
    #: What each MWh by which the store falls short of that reserve costs, EUR per MWh thermal.
    heat_short_eur_per_mwh: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.index)

    @property
    def n_bat(self) -> int:
        return len(self.bat.names)

    @property
    def n_pv(self) -> int:
        return len(self.pv_names)

    def structure_key(self) -> tuple[object, ...]:
        """What fixes the model's shape; a plan with the same key reuses the built model."""
        return (
            self.steps,
            self.dt_h,
            self.n_bat,
            self.n_pv,
            self.milp,
            self.milp and self.hp_min_part > 0,
            self.bat_charge_taper is not None,
            self.heat_risk,
            self.store_tier_wh.size,
        )

    @property
    def heat_risk(self) -> bool:
        """Whether the LP carries the store's heat-risk reserve (:func:`set_heat_risk`)."""
        return self.heat_error_w.size > 0

    def import_eur_per_mwh(self) -> F64:
        """Cost of one MWh imported: price plus its CO2 at the CO2 price, EUR/MWh."""
        return self.price_import_eur_per_mwh + self.co2_price_eur_per_t * self.co2_g_per_kwh / 1e3

    def boiler_eur_per_mwh_th(self) -> float:
        """Cost of one MWh of boiler heat: gas and its CO2, divided by the efficiency."""
        gas = self.gas_eur_per_mwh + self.co2_price_eur_per_t * self.gas_co2_kg_per_mwh / 1e3
        return gas / self.boiler_efficiency


@dataclass
class Problem:
    """A plan's inputs at unit level (``data``) and device level (for the split)."""

    data: ModelData
    batteries: BatteryFleet
    bat_clusters: Clusters
    pv: PvFleet
    pv_clusters: Clusters
    #: Available AC power and lowest reachable output per inverter and step, W.
    pv_avail_w: F64
    pv_min_w: F64
    forecast: pd.DataFrame
    mode: str
    #: Charging limit per battery and step, W: its rating, or a signal's ``<id>.cap_w`` where
    #: lower (the split keeps every device under its own; None: the ratings).
    bat_charge_max_w: F64 | None = None
    warnings: list[str] = field(default_factory=list)
    #: PV the sun would give but the devices' caps (``<id>.cap_w``: grid-operator signals,
    #: the law's feed-in limit) take away, site total per step, W.
    pv_cap_cut_w: F64 | None = None


def build_problem(
    site: Site, state: State, forecast: pd.DataFrame, mode: str, milp: bool, params: OptimizerParams
) -> Problem:
    """Reduce site, state and a prepared forecast (one row per step) to a :class:`Problem`."""
    index = pd.DatetimeIndex(forecast.index)
    dt_h = float((index[1] - index[0]) / pd.Timedelta(hours=1)) if len(index) > 1 else 0.25
    fleet, warnings = battery_fleet(site, state)
    bat_cl = cluster_batteries(fleet, mode, params)
    units = battery_units(fleet, bat_cl)
    pvf = pv_fleet(site, state)
    pv_cl = cluster_pv(pvf, mode)
    avail = pv_available(
        pvf, forecast["pv_w_per_kwp"].to_numpy(float), _pv_overrides(pvf, forecast)
    )
    capped = np.minimum(avail, device_caps(pvf.ids, forecast, np.inf))
    pv_cut_w = (avail - capped).sum(axis=0)
    avail = capped
    pv_min = np.minimum(avail, pvf.min_limit_w[:, None])
    price_imp = forecast["price_import_eur_per_mwh"].to_numpy(float)
    steps = len(index)
    tapers = _tapers(fleet, bat_cl, params, dt_h)
    bat_charge_max = np.minimum(
        fleet.max_charge_w[:, None], device_caps(fleet.ids, forecast, np.inf)
    )
    heat = _heat_inputs(site, state, forecast, dt_h, params, warnings)
    data = ModelData(
        index=index,
        dt_h=dt_h,
        milp=milp,
        bat=units,
        bat_charge_max_w=bat_cl.sum(bat_charge_max) if len(fleet.ids) else np.zeros((0, steps)),
        bat_discharge_max_w=np.repeat(units.max_discharge_w[:, None], steps, axis=1),
        bat_soc_lo_wh=np.zeros((len(units.names), steps)),
        bat_soc_hi_wh=np.zeros((len(units.names), steps)),
        bat_charge_taper=tapers[0],
        bat_discharge_taper=tapers[1],
        bat_terminal_eur_per_mwh=np.zeros(len(units.names)),
        bat_terminal_price_eur_per_mwh=0.0,
        pv_names=pv_cl.names,
        pv_avail_w=pv_cl.sum(avail),
        pv_min_w=pv_cl.sum(pv_min),
        load_w=forecast["load_w"].to_numpy(float),
        import_cap_w=_cap(forecast["import_limit_w"], site.grid.import_limit_w),
        export_cap_w=_cap(forecast["export_limit_w"], site.grid.export_limit_w),
        price_import_eur_per_mwh=price_imp,
        price_export_eur_per_mwh=forecast["price_export_eur_per_mwh"].to_numpy(float),
        co2_g_per_kwh=forecast["co2_g_per_kwh"].to_numpy(float),
        hp_max_el_w=_hp_capped(site, heat.hp_max_el_w, forecast),
        hp_min_part=heat.hp_min_part,
        cop=heat.cop,
        waste_heat_w=heat.waste_heat_w,
        dry_cooler_el_per_th=heat.dry_cooler_el_per_th,
        heat_demand_w=forecast["heat_demand_th_w"].to_numpy(float),
        boiler_max_w=site.heat.boiler_max_th_w,
        boiler_efficiency=site.heat.boiler_efficiency,
        store_capacity_wh=site.heat.store_capacity_wh,
        store_max_charge_w=site.heat.store_max_charge_th_w,
        store_max_discharge_w=site.heat.store_max_discharge_th_w,
        store_keep=(1.0 - site.heat.store_loss_pct_per_h / 100) ** dt_h,
        store0_wh=heat.store0_wh,
        store_terminal_eur_per_mwh=0.0,
        gas_eur_per_mwh=site.heat.gas_price_eur_per_mwh,
        co2_price_eur_per_t=site.economics.co2_price_eur_per_t,
        gas_co2_kg_per_mwh=site.economics.gas_co2_kg_per_mwh,
        unserved_el_penalty_eur_per_mwh=params.unserved_el_penalty_eur_per_mwh,
        spilled_el_penalty_eur_per_mwh=params.spilled_el_penalty_eur_per_mwh,
        unmet_heat_penalty_eur_per_mwh=site.heat.unmet_heat_penalty_eur_per_mwh,
    )
    set_soc_bounds(data)
    set_terminal_values(data, params)
    set_store_floor(data, state.store_reserve)
    set_heat_risk(data, state.heat_level_error, params)
    return Problem(
        data=data,
        batteries=fleet,
        bat_clusters=bat_cl,
        pv=pvf,
        pv_clusters=pv_cl,
        pv_avail_w=avail,
        pv_min_w=pv_min,
        forecast=forecast,
        mode=mode,
        warnings=warnings,
        pv_cap_cut_w=pv_cut_w,
        bat_charge_max_w=bat_charge_max,
    )


def set_soc_bounds(data: ModelData) -> None:
    """SoC bounds per unit and step, Wh::

        E_lo[t] = min(E_min, soc0 + eta_c * dt * sum_{s<=t} P_ch[s])
        E_hi[t] = max(E_max, soc0 - dt / eta_d * sum_{s<=t} P_dis[s])

    Inside the window from the start this is just the window; a unit that starts below (above)
    it must climb (fall) back at full power and may not leave it again. Recomputed whenever
    the per-step power limits change.
    """
    bat = data.bat
    dt = data.dt_h
    up = bat.soc0_wh[:, None] + bat.eta_charge[:, None] * dt * np.cumsum(data.bat_charge_max_w, 1)
    down = bat.soc0_wh[:, None] - dt / bat.eta_discharge[:, None] * np.cumsum(
        data.bat_discharge_max_w, 1
    )
    data.bat_soc_lo_wh = np.minimum(bat.soc_min_wh[:, None], up)
    data.bat_soc_hi_wh = np.maximum(bat.soc_max_wh[:, None], down)


def set_terminal_values(data: ModelData, params: OptimizerParams) -> None:
    """Value energy left at the horizon's end at a low quantile of what it displaces.

    Battery: ``q(import cost) * eta_c * eta_d`` per MWh stored -- a stored MWh delivers
    ``eta_d`` MWh later, and is worth a round trip less than buying it now, so the plan keeps
    energy it would otherwise dump at the end but does not buy energy just to hold it.
    Store: ``q(heat_cost_eur_per_mwh(data))``, the cheapest heat of each step as the LP itself
    prices it. ``q`` is ``params.terminal_price_quantile``.
    """
    q = params.terminal_price_quantile
    price = max(0.0, float(np.quantile(data.import_eur_per_mwh(), q)))
    data.bat_terminal_price_eur_per_mwh = price
    data.bat_terminal_eur_per_mwh = price * data.bat.eta_charge * data.bat.eta_discharge
    cheapest = heat_cost_eur_per_mwh(data)
    finite = cheapest[np.isfinite(cheapest)]
    data.store_terminal_eur_per_mwh = (
        max(0.0, float(np.quantile(finite, q))) if finite.size else 0.0
    )


def heat_pump_reach_th_w(cop: F64, hp_max_el_w: F64, waste_heat_w: F64) -> F64:
    """Most heat the heat pump can give per step, W thermal: ``COP * min(P_max, Q_waste /
    (COP - 1))`` (its source is the data centre's waste heat); 0 where it cannot run."""
    runs = (cop > 1.0) & (hp_max_el_w > 0)
    lift = np.where(runs, cop - 1.0, 1.0)
    out: F64 = np.where(runs, cop * np.minimum(hp_max_el_w, waste_heat_w / lift), 0.0)
    return out


def set_store_floor(data: ModelData, tiers: Sequence[tuple[float, float]]) -> None:
    """The store's reserve at the plan's end in ``tiers`` ``(energy Wh, chance it is
    needed)`` (heat needed after the horizon that the heat pump cannot give then, for
    several quantiles of the forecast: :mod:`optimizer.reserve`), cut to the capacity from
    the last tier down, and each tier's value per MWh (call after
    :func:`set_terminal_values`).

    It is no hard floor: each MWh of a tier is worth, with its chance ``p``, what it saves
    then, the boiler's heat (gas and its CO2 over the efficiency; without a boiler, unmet
    heat's penalty) less one step's standing loss, and otherwise the store's terminal value:
    ``p * later * keep + (1 - p) * terminal``, never less than the terminal value; the
    content above the tiers keeps the terminal value. The tiers' chances fall as the store
    fills, so the LP fills them in order. So the plan keeps a tier with heat cheaper than
    what it is worth (the heat pump's, as a rule, and for an unlikely tier only cheap heat
    pump heat or waste heat otherwise cooled away), never fires the boiler to hold heat
    (boiler heat made now reaches the end with at least one step's loss, so it costs more
    than it is worth there), and where the heat pump cannot reach the reserve (grid limits,
    caps, a grid operator's dimming) the plan stays feasible and ends short of it. The
    number of tiers is kept (empty tiers have width 0), so the model's shape does not
    change from plan to plan.
    """
    width = np.array([max(float(w), 0.0) for w, _ in tiers])
    chance = np.array([min(max(float(p), 0.0), 1.0) for _, p in tiers])
    if data.steps == 0:
        width[:] = 0.0
    room = data.store_capacity_wh - np.cumsum(width) + width
    data.store_tier_wh = np.clip(np.minimum(width, room), 0.0, None)
    later = (
        data.boiler_eur_per_mwh_th()
        if data.boiler_max_w > 0
        else data.unmet_heat_penalty_eur_per_mwh
    )
    terminal = data.store_terminal_eur_per_mwh
    value = chance * later * data.store_keep + (1.0 - chance) * terminal
    data.store_tier_eur_per_mwh = np.maximum(terminal, value)


def set_heat_risk(data: ModelData, level_error: float, params: OptimizerParams) -> None:
    """The store's reserve against the heat forecast's error.

    Where the plan runs the heat pump at what it can give, heat demand above the forecast
    comes out of the store, and what the store cannot give the boiler makes; a re-plan can
    make up only with the heat pump's spare heat. So over the steps ``t`` the demand's
    error ``e[t] = level_error * Q_demand[t]`` (:func:`vpp.forecast.heat_level_error`: the
    level errs for a whole day alike, so the errors of a stretch add up) accumulates
    against the heat pump's spare heat ``R[t] - COP[t] * p_hp[t] - q_boiler[t]`` (``R``
    its reach under the import limit, :func:`heat_risk_reach_th_w`) into a deficit the
    store must be able to cover::

        d[t] >= keep * d[t-1] + (e[t] - R[t] + COP[t] * p_hp[t] + q_boiler[t]) * dt
        m[t] >= m[t-1]       m[t] >= d[t] - (e_store[t] + r[t])       d[t], m[t] >= 0

    and ``m[T-1]``, the largest shortfall of the store's content against that deficit, is
    priced at the boiler's heat (gas and its CO2 over the efficiency; without a boiler,
    unmet heat's penalty) times ``params.heat_short_chance``. So the plan holds heat in the
    store ahead of a stretch in which the heat pump is at its limit where the heat pump's
    heat costs less than that, never fires the boiler to hold it (its heat costs the whole
    price), and stays feasible whatever the reserve. A level error below
    ``params.heat_error_min``, a site without a heat pump's reach or without a store: none.

    The planned boiler heat counts as heat the heat pump makes: otherwise the plan could
    buy the heat pump room by burning gas now against a shortfall that, when it comes, the
    boiler's heat would cover at the same price (where the boiler runs while the heat pump
    has room, this overstates the deficit, which then costs only some store heat held).
    """
    reach = heat_pump_reach_th_w(data.cop, data.hp_max_el_w, data.waste_heat_w)
    off = (
        not level_error >= params.heat_error_min
        or data.steps == 0
        or not data.store_capacity_wh > 0
        or not np.any(reach > 0)
    )
    if off:
        data.heat_error_w = np.zeros(0)
        data.heat_short_eur_per_mwh = 0.0
        return
    data.heat_error_w = float(level_error) * np.maximum(np.nan_to_num(data.heat_demand_w), 0.0)
    later = (
        data.boiler_eur_per_mwh_th()
        if data.boiler_max_w > 0
        else data.unmet_heat_penalty_eur_per_mwh
    )
    data.heat_short_eur_per_mwh = float(params.heat_short_chance * later)


def heat_risk_reach_th_w(data: ModelData) -> F64:
    """``R[t]`` of :func:`set_heat_risk`: the heat pump's reach (:func:`heat_pump_reach_th_w`),
    at most what the import limit leaves it, W thermal (a heat pump held back by the grid
    has no heat to spare). The import limit leaves the heat pump::

        p_hp <= (P_imp - P_load + P_pv - k_dry * Q_waste) / (1 - k_dry * (COP - 1))

    (the base load, the PV available and the dry coolers' electricity for the waste heat
    the heat pump does not take; the batteries left out, so it errs low).
    """
    reach = heat_pump_reach_th_w(data.cop, data.hp_max_el_w, data.waste_heat_w)
    pv = data.pv_avail_w.sum(axis=0) if data.pv_avail_w.size else 0.0
    k = data.dry_cooler_el_per_th
    free = data.import_cap_w - data.load_w + pv - k * data.waste_heat_w
    saves = 1.0 - k * (data.cop - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(saves > 0, np.maximum(free, 0.0) / saves, np.inf)
    out: F64 = np.minimum(reach, np.maximum(data.cop, 0.0) * room)
    return out


def heat_risk_rhs_w(data: ModelData) -> F64:
    """``e[t] - R[t]`` of :func:`set_heat_risk`'s deficit rows, W thermal."""
    out: F64 = data.heat_error_w - heat_risk_reach_th_w(data)
    return out


def heat_cost_eur_per_mwh(data: ModelData) -> F64:
    """The cheapest heat of each step [EUR/MWh thermal], priced as the LP prices it.

    Boiler: ``c_boil`` (gas and its CO2 over the efficiency). Heat pump::

        c_imp[t] * (1 - k_dry * (COP[t] - 1)) / COP[t]

    ``c_imp`` the import price with its CO2; ``k_dry * (COP - 1)`` is the dry coolers'
    electricity the heat pump saves by taking their waste heat, which the LP counts (the
    must-cool balance) and a plain ``c_imp / COP`` leaves out. ``inf`` where neither runs.

    The import price is used also where the site exports and the heat pump's electricity
    costs only the export price given up: heat left at the horizon's end replaces heat made
    later, at night as well, and valued at the midday surplus's margin the plans ended
    emptier than the bound (docs/replay-world.md).
    """
    boiler = data.boiler_eur_per_mwh_th() if data.boiler_max_w > 0 else np.inf
    runs = (data.hp_max_el_w > 0) & (data.cop > 0)
    cop = np.where(runs, data.cop, 1.0)
    saved = 1.0 - data.dry_cooler_el_per_th * (cop - 1.0)
    hp = np.where(runs, data.import_eur_per_mwh() * saved / cop, np.inf)
    out: F64 = np.minimum(boiler, hp)
    return out


Taper = tuple[F64, F64] | None


def _tapers(
    fleet: BatteryFleet, clusters: Clusters, params: OptimizerParams, dt_h: float
) -> tuple[Taper, Taper]:
    """Charge and discharge taper lines of the battery units (``params.taper``).

    Units with fewer than ``params.taper_min_members`` members get lines that never bind
    (full power at any headroom); without any such unit, or with ``params.taper == "none"``,
    the model has no taper constraints at all.
    """
    members = np.diff(clusters.start)
    if params.taper == "none" or not (members >= params.taper_min_members).any():
        return None, None
    room = fleet.soc_max_wh - fleet.soc0_wh
    stored = fleet.soc0_wh - fleet.soc_min_wh
    small = members < params.taper_min_members
    lines = []
    for head, power, eta in (
        (room, fleet.max_charge_w, fleet.eta_charge),
        (stored, fleet.max_discharge_w, 1.0 / fleet.eta_discharge),
    ):
        if params.taper == "share":
            a, g = share_lines(head, power, eta, dt_h, clusters)
        else:
            a, g = taper_lines(head, power, eta, clusters)
        a[small], g[small] = clusters.sum(power)[small, None], 0.0
        lines.append((a, g))
    return lines[0], lines[1]


def _cap(operator: pd.Series, site_limit: float) -> F64:
    """Operator cap where given (NaN = none), never above the site's limit nor below 0, W."""
    values = operator.to_numpy(float)
    return np.clip(np.where(np.isnan(values), site_limit, values), 0.0, site_limit)


def device_caps(ids: tuple[str, ...], forecast: pd.DataFrame, default: float) -> F64:
    """Per device and step, the ``<id>.cap_w`` column [W] (``default`` where there is none
    or it is NaN); shape (len(ids), steps)."""
    out = np.full((len(ids), len(forecast)), default)
    columns = set(forecast.columns)  # one hash lookup per device, not a pandas Index lookup
    for i, ident in enumerate(ids):
        col = f"{ident}{DEVICE_CAP_SUFFIX}"
        if col in columns:
            values = forecast[col].to_numpy(float)
            out[i] = np.where(np.isnan(values), default, values)
    return out


def _hp_capped(site: Site, hp_max_el_w: F64, forecast: pd.DataFrame) -> F64:
    """The heat pump's electric limit per step, under its ``<id>.cap_w`` column."""
    hp = site.heat_pump
    if hp is None:
        return hp_max_el_w
    capped: F64 = np.minimum(hp_max_el_w, device_caps((hp.id,), forecast, np.inf)[0])
    return capped


def _pv_overrides(fleet: PvFleet, forecast: pd.DataFrame) -> dict[int, F64]:
    position = {pid: i for i, pid in enumerate(fleet.ids)}
    out: dict[int, F64] = {}
    for col in forecast.columns:
        pid = str(col).removesuffix(PV_OVERRIDE_SUFFIX)
        if str(col).endswith(PV_OVERRIDE_SUFFIX) and pid in position:
            out[position[pid]] = forecast[col].to_numpy(float)
    return out


@dataclass(frozen=True)
class _Heat:
    hp_max_el_w: F64
    hp_min_part: float
    cop: F64
    waste_heat_w: F64
    dry_cooler_el_per_th: float
    store0_wh: float


def _heat_inputs(
    site: Site,
    state: State,
    forecast: pd.DataFrame,
    dt_h: float,
    params: OptimizerParams,
    warnings: list[str],
) -> _Heat:
    """Heat pump and data centre per step, and the store's start (see :class:`ModelData`).

    An offline data centre offers no waste heat (nothing is known about it), so the heat
    pump cannot run either; an offline heat pump leaves all waste heat to the dry coolers.
    """
    steps = len(forecast)
    heat = site.heat
    dc = site.datacentre
    hp = site.heat_pump
    dc_on = dc is not None and dc.id not in state.offline
    waste = (
        forecast["it_power_w"].to_numpy(float) * dc.heat_recovery_ratio
        if dc is not None and dc_on
        else np.zeros(steps)
    )
    cop = np.zeros(steps)
    hp_max = np.zeros(steps)
    if hp is not None and dc_on and hp.id not in state.offline:
        cop = cop_series(
            hp, heat.supply_temp_c, forecast["waste_heat_temp_c"].to_numpy(float), params
        )
        hp_max = np.where(cop > 0, hp.max_el_w, 0.0)
    store0 = heat.store_capacity_wh * heat.store_initial_pct / 100
    if state.store_wh is not None:
        store0 = float(state.store_wh)
    if not np.isfinite(store0) or not 0.0 <= store0 <= heat.store_capacity_wh:
        warnings.append(f"thermal store energy {store0:g} Wh outside 0..capacity: clamped")
        store0 = float(np.clip(np.nan_to_num(store0), 0.0, heat.store_capacity_wh))
    return _Heat(
        hp_max_el_w=hp_max,
        hp_min_part=hp.min_part_load_pct / 100 if hp else 0.0,
        cop=cop,
        waste_heat_w=waste,
        dry_cooler_el_per_th=dc.dry_cooler_el_per_th if dc is not None else 0.0,
        store0_wh=store0,
    )
