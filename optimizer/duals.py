"""What each constraint of a plan is worth: the duals of its LP, in EUR/MWh per step.

The plan's balances and limits have shadow prices at the optimum: what one more MWh of load
at the connection would cost (the marginal value of electricity), what one more MWh in a
battery or the heat store would save, what a looser import or export cap would save. They
say why the plan does what it does ("charging: 18 EUR/MWh now against 142 at 18:00"; "held at
the export cap") in the solver's own terms.

An LP plan has them at its optimum. A mixed-integer plan (``optimizer.milp``: battery
direction and heat-pump on/off binary) has none; its binaries are fixed at the plan's values
and the LP that remains is solved once more (its optimum is the plan's, within the MIP gap),
with the direct build (:func:`optimizer.direct.build_lp`), which also serves LP plans made
through Pyomo. :func:`from_highs` reads an LP the direct backend has just solved without
solving again.

Signs: values are >= 0 where the thing is worth having (energy stored, a looser cap).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import NDArray

from optimizer.data import ModelData
from optimizer.direct import LpArrays, build_lp
from optimizer.flows import Flows
from optimizer.model.base import KW

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: A unit or heat pump below this is idle when binaries are fixed, W.
IDLE_W = 1.0


@dataclass(frozen=True)
class Duals:
    """Shadow prices of one plan, EUR/MWh (thermal for heat), one per step (T,) or per unit
    and step (U, T)."""

    #: Cost of one more MWh of load at the connection in the step.
    electricity: F64
    #: Value of one more MWh stored in each battery unit at the end of the step.
    stored: F64
    #: Cost of one more MWh of heat demand, and value of one more MWh in the heat store.
    heat: F64
    heat_store: F64
    #: What one more MWh allowed through the import or export cap would save (0: not binding).
    import_cap: F64
    export_cap: F64
    #: Extra seconds spent to get them (0 when read from the plan's own solve).
    seconds: float
    #: Whether a mixed-integer plan's binaries were fixed for a second solve.
    fixed_binaries: bool


def fixed_lp(data: ModelData, flows: Flows) -> LpArrays:
    """The plan's LP with a mixed-integer plan's binaries fixed at ``flows``' values: a unit
    that charges may not discharge and the other way round (an idle one may only charge);
    a heat pump that runs stays above its minimum part load, one that is off stays off."""
    built = build_lp(data)
    lp, blocks = built.arrays(), built.blocks
    if not data.milp:
        return lp
    upper, lower = lp.col_upper.copy(), lp.col_lower.copy()
    charging = flows.bat_charge_w > IDLE_W
    discharging = flows.bat_discharge_w > IDLE_W
    upper[blocks["bat_dis"][~discharging | charging]] = 0.0
    upper[blocks["bat_ch"][discharging & ~charging]] = 0.0
    if data.hp_min_part > 0:
        on = flows.hp_el_w > IDLE_W
        hp = blocks["hp_el"]
        upper[hp[~on]] = 0.0
        lower[hp[on]] = np.minimum(data.hp_min_part * data.hp_max_el_w[on] * KW, upper[hp[on]])
    return LpArrays(
        cost=lp.cost,
        col_lower=lower,
        col_upper=upper,
        row_lower=lp.row_lower,
        row_upper=lp.row_upper,
        start=lp.start,
        index=lp.index,
        value=lp.value,
    )


def solve(data: ModelData, flows: Flows, time_limit_s: float = 5.0) -> Duals:
    """The duals of the plan's LP (binaries fixed at ``flows`` for a mixed-integer plan),
    by one more solve; raises RuntimeError when HiGHS proves no optimum."""
    tic = time.perf_counter()
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", time_limit_s)
    h.passModel(fixed_lp(data, flows).highs_lp())
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"the LP for the duals ended with {h.modelStatusToString(status)}")
    return from_highs(h, data, time.perf_counter() - tic, fixed=data.milp)


def from_highs(
    h: highspy.Highs,
    data: ModelData,
    seconds: float,
    fixed: bool,
    families: tuple[dict[str, I64], dict[str, I64]] | None = None,
) -> Duals:
    """Read the duals of the direct build's LP (:func:`optimizer.direct.build_lp`) that
    ``h`` holds solved; ``families`` are its column and row families when the caller has
    them (building the LP again only to name them costs a fifth of a second at 10,000
    devices)."""
    blocks, row_blocks = families if families is not None else _families(data)
    sol = h.getSolution()
    if not sol.dual_valid:
        raise RuntimeError("HiGHS has no valid duals for this solve")
    rows = np.asarray(sol.row_dual, dtype=float)
    cols = np.asarray(sol.col_dual, dtype=float)
    # Objective in EUR; powers in kW over a step of dt_h hours; energies in kWh.
    per_kw_step = 1.0 / (data.dt_h * 1e-3)  # EUR per kW over one step -> EUR/MWh
    per_kwh = 1e3  # EUR per kWh -> EUR/MWh

    def row(name: str) -> F64:
        return rows[row_blocks[name]]

    def col(name: str) -> F64:
        return cols[blocks[name]]

    return Duals(
        electricity=row("grid") * per_kw_step,
        stored=-row("soc").reshape(data.n_bat, data.steps) * per_kwh,
        heat=row("heat") * per_kw_step,
        heat_store=-row("store") * per_kwh,
        # a column at its upper bound has a reduced cost <= 0 in a minimisation
        import_cap=np.maximum(-col("grid_import"), 0.0) * per_kw_step,
        export_cap=np.maximum(-col("grid_export"), 0.0) * per_kw_step,
        seconds=seconds,
        fixed_binaries=fixed,
    )


def _families(data: ModelData) -> tuple[dict[str, I64], dict[str, I64]]:
    lp = build_lp(data)
    return lp.blocks, lp.row_blocks
