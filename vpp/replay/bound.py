"""A true lower bound on the cost of any operation of the replay plant over a chain of days.

The bound is the optimiser's own LP (:func:`optimizer.direct.build_lp`, the arrays form of
:mod:`optimizer.model`, equal to it to the solver's tolerance) solved once over the whole
replayed chain with perfect foresight of every input, starting from the same stored energy as
every strategy and ending at a given stored energy (per battery and in the thermal store):
``B(e_end)``. With ``e_end`` where the controller ended, ``B`` is the least any operation of
the plant could have paid for what the controller did with its stores, and the controller's
*regret* ``cost - B(e_end)`` needs no value of stored energy. See docs/replay-bound.md for the
argument, summarised here.

Why it is a lower bound: every quarter hour the replay plant can produce (one-minute electric
sub-steps for the controller, quarter-hour steps for the rule baselines) maps to a feasible
point of this LP with the same cost, as the KPIs count it (:func:`vpp.replay.kpi.strategy_kpis`):

- batteries: the quarter's mean charging and discharging powers obey the LP's balance
  ``soc[t] = soc[t-1] + eta_c*ch*dt - dis*dt/eta_d`` exactly (the balance is linear, so minute
  steps add up to it), lie within the power limits, and the energy at the quarter's end lies
  in ``[min(E_min, soc0), max(E_max, soc0)]`` (the plant never moves a battery out of its
  window, nor further out); charging and discharging in the same quarter is allowed in the LP;
- PV: the site's output lies between the sum over inverters of the quarter's mean of
  ``min(available, minimum limit)`` (a cap is never written below the inverter's minimum:
  the safety layer holds it) and its mean available power, taken over both the minute profile
  of the controller's plant and the quarter-hour values of the rule baselines; only the sum
  enters the grid balance, so one PV column is exact;
- heat: the heat pump's minimum part load is relaxed (0..max), its source heat is at most the
  waste heat (the must-cool balance), the plant's throttling keeps the store within its
  capacity, the store's balance with its standing loss is the LP's, the boiler within its
  rating; the COP is the plant's own per quarter hour;
- grid: the plant has no grid limit (the controller keeps to it, the baselines do not), so
  the bound has none either: import and export are bounded only by what the devices could
  physically draw or feed in. Export never pays more than import (the fees are >= 0), so the
  LP's separate import and export columns cost what the plant's net exchange costs;
- money: import at price + CO2, export at its price, gas and its CO2, battery wear per MWh
  discharged, the KPIs' very terms; no terminal value, no penalty is used (the slacks for
  unserved and spilled power are closed; a heat demand left unmet is allowed and costs its
  penalty, so the bound holds for operations that leave none unmet, as the test checks).

So ``B(e)`` <= the cost of every operation that ends at ``e``. The solver's optimum is only
optimal to its tolerances; :attr:`BoundSolve.lower_eur` is therefore computed from the duals
(the Lagrangian ``min_x c'x - y'(Ax - r)`` over the box bounds, valid for any ``y``), a bound
that holds whatever the solver's tolerances, and :attr:`BoundSolve.gap_eur` is how far the
solver's objective lies above it (the tolerance the ordering tests allow).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import highspy
import numpy as np
from numpy.typing import NDArray

from optimizer.aggregate import BatteryUnits
from optimizer.data import ModelData
from optimizer.direct import _Lp, build_lp
from optimizer.model.base import KW
from optimizer.params import OptimizerParams
from vpp.core.site import Site
from vpp.replay import plant as k
from vpp.replay.layout import PlantInputs, PlantParams
from vpp.replay.sim import PER_QUARTER

if TYPE_CHECKING:
    from vpp.replay.baselines import SignalCaps
from vpp.replay.trace import Trace

F64 = NDArray[np.float64]


def pv_interval_w(
    site: Site, params: PlantParams, inputs: PlantInputs, pv_cap_w: F64 | None = None
) -> tuple[F64, F64]:
    """Lowest and highest PV output of the site per quarter hour [W] over every way the
    replay plant can run (minute sub-steps and quarter-hour steps), with caps never below
    each inverter's minimum limit; ``pv_cap_w`` (steps, inverters; inf: none) are the grid
    operator's caps of each inverter over whole quarter hours, held down to that minimum."""
    rated = params.pv_rated_w
    minimum = np.array([p.min_limit_pct / 100 * p.rated_w for p in site.pv], dtype=float)
    steps = len(inputs.index)
    minute = inputs.minute_pv_w(rated, PER_QUARTER).reshape(steps, PER_QUARTER, -1)
    quarter = inputs.pv_avail_w
    if pv_cap_w is not None:
        cap = np.maximum(pv_cap_w, minimum[None, :])
        minute = np.minimum(minute, cap[:, None, :])
        quarter = np.minimum(quarter, cap)
    hi = np.maximum(minute.mean(axis=1), quarter).sum(axis=1)
    lo = np.minimum(np.minimum(minute, minimum).mean(axis=1), np.minimum(quarter, minimum)).sum(
        axis=1
    )
    return lo, hi


def bound_data(
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    pv_w: tuple[F64, F64] | None = None,
    caps: SignalCaps | None = None,
    grid_w: tuple[F64, F64] | None = None,
) -> ModelData:
    """The optimiser's inputs for the bound: the plant's own parameters and what really
    happened, one battery per device, one PV unit (its output within ``pv_w``, default
    :func:`pv_interval_w`), no grid limit, no terminal value; under the grid-operator
    signals' ``caps`` over the quarter hours they cover whole (charging, heat pump, export;
    the PV caps are in ``pv_w``). ``grid_w``: import and export caps per step [W] (the
    bound held to grid limits, :func:`limits_w`)."""
    b, h, inp = params.bat, params.heat, inputs.inp
    steps, n_bat = len(inputs.index), b.shape[0]
    soc0 = params.soc0_wh.copy()
    units = BatteryUnits(
        names=params.battery_ids,
        capacity_wh=b[:, k.B_CAP].copy(),
        max_charge_w=b[:, k.B_MAX_CH].copy(),
        max_discharge_w=b[:, k.B_MAX_DIS].copy(),
        soc_min_wh=b[:, k.B_SOC_MIN].copy(),
        soc_max_wh=b[:, k.B_SOC_MAX].copy(),
        soc0_wh=soc0,
        eta_charge=b[:, k.B_ETA_C].copy(),
        eta_discharge=b[:, k.B_ETA_D].copy(),
        wear_eur_per_mwh=b[:, k.B_WEAR].copy(),
    )
    pv_lo, pv_hi = pv_w if pv_w is not None else pv_interval_w(site, params, inputs)
    cop = inp[:, k.I_COP].copy()
    hp_max = np.where(cop > 1.0, h[k.H_HP_MAX], 0.0)
    charge_max = np.repeat(units.max_charge_w[:, None], steps, axis=1)
    if caps is not None:
        hp_max = np.minimum(hp_max, caps.hp_w)
        charge_max = np.minimum(charge_max, caps.charge_w.T)
    waste, load = inp[:, k.I_WASTE].copy(), inp[:, k.I_LOAD].copy()
    dry_k = float(h[k.H_DRY_K])
    # No grid limit, only what the devices could physically draw or feed in.
    import_max = load + hp_max + dry_k * waste + b[:, k.B_MAX_CH].sum() + 1.0
    export_max = pv_hi + b[:, k.B_MAX_DIS].sum() + 1.0
    if caps is not None:
        export_max = np.minimum(export_max, caps.export_w)
    if grid_w is not None:
        import_max = np.minimum(import_max, grid_w[0])
        export_max = np.minimum(export_max, grid_w[1])
    opt = OptimizerParams()
    return ModelData(
        index=inputs.index,
        dt_h=params.dt_h,
        milp=False,
        bat=units,
        bat_charge_max_w=charge_max,
        bat_discharge_max_w=np.repeat(units.max_discharge_w[:, None], steps, axis=1),
        bat_soc_lo_wh=np.repeat(np.minimum(units.soc_min_wh, soc0)[:, None], steps, axis=1),
        bat_soc_hi_wh=np.repeat(np.maximum(units.soc_max_wh, soc0)[:, None], steps, axis=1),
        bat_charge_taper=None,
        bat_discharge_taper=None,
        bat_terminal_eur_per_mwh=np.zeros(n_bat),
        bat_terminal_price_eur_per_mwh=0.0,
        pv_names=("site",),
        pv_avail_w=pv_hi[None, :],
        pv_min_w=pv_lo[None, :],
        load_w=load,
        import_cap_w=import_max,
        export_cap_w=export_max,
        price_import_eur_per_mwh=inp[:, k.I_PRICE_IMP].copy(),
        price_export_eur_per_mwh=inp[:, k.I_PRICE_EXP].copy(),
        co2_g_per_kwh=inp[:, k.I_CO2].copy(),
        hp_max_el_w=hp_max,
        hp_min_part=0.0,
        cop=cop,
        waste_heat_w=waste,
        dry_cooler_el_per_th=dry_k,
        heat_demand_w=inp[:, k.I_DEMAND].copy(),
        boiler_max_w=float(h[k.H_BOILER]),
        boiler_efficiency=site.heat.boiler_efficiency,
        store_capacity_wh=float(h[k.H_STORE_CAP]),
        store_max_charge_w=float(h[k.H_STORE_CH]),
        store_max_discharge_w=float(h[k.H_STORE_DIS]),
        store_keep=float(h[k.H_KEEP]),
        store0_wh=float(params.store0_wh),
        store_terminal_eur_per_mwh=0.0,
        gas_eur_per_mwh=site.heat.gas_price_eur_per_mwh,
        co2_price_eur_per_t=site.economics.co2_price_eur_per_t,
        gas_co2_kg_per_mwh=site.economics.gas_co2_kg_per_mwh,
        unserved_el_penalty_eur_per_mwh=opt.unserved_el_penalty_eur_per_mwh,
        spilled_el_penalty_eur_per_mwh=opt.spilled_el_penalty_eur_per_mwh,
        unmet_heat_penalty_eur_per_mwh=site.heat.unmet_heat_penalty_eur_per_mwh,
    )


def limits_w(site: Site, exchange_w: F64) -> tuple[F64, F64]:
    """Import and export caps per step [W] that hold the bound to the site's grid limits,
    widened to ``exchange_w`` (a strategy's quarter-hour mean exchange, > 0 importing) where
    the strategy went past them: the bound held to these caps is a lower bound on the cost
    of that strategy (its operation stays a point of the LP) and of every operation that
    keeps to the limits at least as closely."""
    exchange = np.asarray(exchange_w, dtype=float)
    imp = np.maximum(site.grid.import_limit_w, exchange) + 1.0
    exp = np.maximum(site.grid.export_limit_w, -exchange) + 1.0
    return imp, exp


@dataclass(frozen=True)
class BoundSolve:
    """One solve of the bound: the solver's optimum and a certified lower bound [EUR], its
    flows (a :class:`Trace` over the chain) and the cost of each step [EUR]."""

    cost_eur: float
    lower_eur: float
    trace: Trace
    step_cost_eur: F64
    seconds: float

    @property
    def gap_eur(self) -> float:
        """How far the solver's optimum lies above the certified bound [EUR, >= 0]."""
        return max(0.0, self.cost_eur - self.lower_eur)


class Bound:
    """The bound LP of one chain, built once; :meth:`solve` for each end state.

    ``params`` gives the start (``soc0_wh``, ``store0_wh``), ``inputs`` the chain's quarter
    hours in the order the strategies ran them, ``pv_w`` the PV interval if not
    :func:`pv_interval_w` of ``inputs``.
    """

    def __init__(
        self,
        site: Site,
        params: PlantParams,
        inputs: PlantInputs,
        pv_w: tuple[F64, F64] | None = None,
        caps: SignalCaps | None = None,
        grid_w: tuple[F64, F64] | None = None,
    ) -> None:
        self.site, self.params, self.inputs = site, params, inputs
        if caps is not None and pv_w is None:
            pv_w = pv_interval_w(site, params, inputs, caps.pv_w)
        self.data = bound_data(site, params, inputs, pv_w, caps, grid_w)
        #: The PV available without the signals' caps [W] (what the trace shows).
        self._pv_avail_w = (
            self.data.pv_avail_w[0] if caps is None else pv_interval_w(site, params, inputs)[1]
        )
        #: Steps where a signal caps the export (``grid_w`` caps never keep out a
        #: strategy's own exchange: nothing needs spilling under them).
        self._capped = (
            np.isfinite(caps.export_w) if caps is not None else np.zeros(self.data.steps, bool)
        )
        lp = build_lp(self.data)
        self._close_slacks(lp)
        self.lp = lp
        self.blocks = lp.blocks
        self.cost = np.concatenate(lp.cost)
        self.col_lo, self.col_hi = np.concatenate(lp.lower), np.concatenate(lp.upper)
        self.row_lo, self.row_hi = np.concatenate(lp.row_lo), np.concatenate(lp.row_hi)
        self.start, self.index, self.value = lp.csc()
        #: Column of each matrix entry (CSC order).
        self._cols = np.repeat(np.arange(len(self.cost)), np.diff(self.start))
        self._h = highspy.Highs()  # type: ignore[no-untyped-call]
        self._h.setOptionValue("output_flag", False)
        self._h.setOptionValue("threads", 1)
        self._h.passModel(lp.highs_lp())

    def _close_slacks(self, lp: _Lp) -> None:
        """Unserved and spilled power cannot occur without grid limits: their columns get an
        upper bound of 0; dry-cooler heat and unmet heat get finite ones (the waste heat, the
        heat demand), so that every column is boxed and the dual bound is finite.

        Where a signal caps the export, the PV that cannot be curtailed (each inverter's
        minimum) may have nowhere to go but out: up to that much may be spilled at no cost
        in those steps. That only widens what the bound allows (an operation that exports
        it above the cap pays or earns the export price instead), so it stays a bound and
        stays feasible."""
        d = self.data
        spill = np.where(self._capped, d.pv_min_w[0], 0.0) * KW
        upper = dict(
            el_unserved=np.zeros(d.steps),
            el_spilled=spill,
            dry_th=d.waste_heat_w * KW,
            heat_unmet=d.heat_demand_w * KW,
        )
        offsets = np.cumsum([0] + [len(u) for u in lp.upper])
        for name, value in upper.items():
            idx = lp.blocks[name]
            part = int(np.searchsorted(offsets, idx.ravel()[0], side="right") - 1)
            lp.upper[part] = np.asarray(value, dtype=float).copy()
            if name == "el_spilled":
                lp.cost[part] = np.zeros(d.steps)

    def solve(self, end_soc_wh: F64, end_store_wh: float) -> BoundSolve:
        """Least cost over the chain ending with ``end_soc_wh`` in the batteries [Wh, per
        battery] and ``end_store_wh`` in the store [Wh]."""
        tic = time.perf_counter()
        soc_end = self.blocks["bat_soc"][:, -1]
        store_end = self.blocks["store_e"][-1]
        cols = np.concatenate([soc_end, [store_end]]).astype(np.int32)
        target = np.concatenate([np.asarray(end_soc_wh, float), [end_store_wh]]) * KW
        lo, hi = self.col_lo.copy(), self.col_hi.copy()
        # A strategy's end lies within the LP's window up to the plant's float rounding.
        target = np.clip(target, lo[cols], hi[cols])
        lo[cols] = hi[cols] = target
        self._h.changeColsBounds(len(cols), cols, target, target)
        self._h.run()
        status = self._h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"bound LP ended with {self._h.modelStatusToString(status)}")
        sol = self._h.getSolution()
        x = np.asarray(sol.col_value, dtype=float)
        y = np.asarray(sol.row_dual, dtype=float)
        cost = float(self.cost @ x)
        lower = max(self._dual_bound(y, lo, hi), self._dual_bound(-y, lo, hi))
        return BoundSolve(
            cost_eur=cost,
            lower_eur=min(lower, cost),
            trace=self._trace(x),
            step_cost_eur=self._step_costs(x),
            seconds=time.perf_counter() - tic,
        )

    def _dual_bound(self, y: F64, lo: F64, hi: F64) -> float:
        """``min over the box of c'x - y'(Ax - r)``, ``r`` within the row bounds: a lower
        bound on the LP's optimum for any ``y`` (weak duality)."""
        aty = np.bincount(self._cols, weights=y[self.index] * self.value, minlength=len(self.cost))
        d = self.cost - aty
        cols = np.where(d >= 0, d * lo, d * hi)
        rows = np.where(y >= 0, y * self.row_lo, y * self.row_hi)
        return float(cols.sum() + rows.sum())

    def _step_costs(self, x: F64) -> F64:
        """Cost of each step [EUR]: the objective's terms of that step's columns."""
        steps = self.data.steps
        out = np.zeros(steps)
        for idx in self.blocks.values():
            part = self.cost[idx] * x[idx]
            out += part.reshape(-1, steps).sum(axis=0)
        return out

    def _trace(self, x: F64) -> Trace:
        """The bound's flows as a trace of the replay plant's columns [W, Wh]."""
        d, p, b = self.data, self.params, self.blocks
        n = d.steps
        trace = Trace.empty(self.inputs.index, len(p.battery_ids), len(p.pv_ids), False)

        def v(name: str) -> F64:
            out: F64 = x[b[name]] / KW
            return out

        ch, dis = v("bat_ch").T, v("bat_dis").T
        trace.bat_w, trace.bat_ch_w = dis - ch, ch.copy()
        trace.bat_soc_wh = v("bat_soc").T
        # What was spilled (only under an export cap, :meth:`_close_slacks`) counts as PV
        # curtailed below the minimum, so that the trace balances.
        pv = v("pv")[0] - v("el_spilled")
        share = np.divide(p.pv_rated_w, p.pv_rated_w.sum()) if p.pv_rated_w.size else p.pv_rated_w
        trace.pv_w = pv[:, None] * share[None, :]
        o = trace.out
        hp, dry = v("hp_el"), v("dry_th")
        o[:, k.O_PV], o[:, k.O_PV_AVAIL], o[:, k.O_LOAD] = pv, self._pv_avail_w, d.load_w
        o[:, k.O_BAT] = trace.bat_w.sum(axis=1)
        o[:, k.O_BAT_CH], o[:, k.O_BAT_DIS] = ch.sum(axis=1), dis.sum(axis=1)
        o[:, k.O_SOC] = trace.bat_soc_wh.sum(axis=1)
        o[:, k.O_HP_EL], o[:, k.O_HP_TH] = hp, d.cop * hp
        o[:, k.O_SOURCE] = np.maximum(d.cop - 1.0, 0.0) * hp
        o[:, k.O_DRY_TH], o[:, k.O_DRY_EL] = dry, d.dry_cooler_el_per_th * dry
        o[:, k.O_STORE_CH], o[:, k.O_STORE_DIS] = v("store_ch"), v("store_dis")
        store = v("store_e")
        o[:, k.O_STORE] = store
        before = np.concatenate([[d.store0_wh], store[:-1]])
        o[:, k.O_STORE_LOSS] = (1.0 - d.store_keep) * before / d.dt_h
        o[:, k.O_BOILER], o[:, k.O_UNMET] = v("boiler_th"), v("heat_unmet")
        o[:, k.O_DEMAND], o[:, k.O_WASTE] = d.heat_demand_w, d.waste_heat_w
        o[:, k.O_GRID] = v("grid_import") - v("grid_export")
        assert o.shape[0] == n
        return trace

    def point(self, trace: Trace) -> F64:
        """The LP point of an operation of the plant (a strategy's trace over the chain)."""
        b, x = self.blocks, np.zeros(len(self.cost))
        o = trace.out

        def put(name: str, value: F64) -> None:
            x[b[name]] = np.asarray(value) * KW

        put("bat_ch", trace.bat_ch_w.T)
        put("bat_dis", trace.bat_dis_w.T)
        put("bat_soc", trace.bat_soc_wh.T)
        put("pv", o[:, k.O_PV][None, :])
        put("grid_import", np.maximum(o[:, k.O_GRID], 0.0))
        put("grid_export", np.maximum(-o[:, k.O_GRID], 0.0))
        put("hp_el", o[:, k.O_HP_EL])
        put("dry_th", o[:, k.O_DRY_TH])
        put("store_ch", o[:, k.O_STORE_CH])
        put("store_dis", o[:, k.O_STORE_DIS])
        put("store_e", o[:, k.O_STORE])
        put("boiler_th", o[:, k.O_BOILER])
        put("heat_unmet", o[:, k.O_UNMET])
        return x

    def residuals(self, x: F64) -> tuple[float, float]:
        """Largest violation of a row and of a column bound at ``x`` (model units, kW/kWh)."""
        ax = np.bincount(self.index, weights=self.value * x[self._cols], minlength=len(self.row_lo))
        rows = np.maximum(self.row_lo - ax, ax - self.row_hi).max(initial=0.0)
        bounds = np.maximum(self.col_lo - x, x - self.col_hi).max(initial=0.0)
        return float(rows), float(bounds)
