"""The strategies the controller is measured against, on the same plant and the same day.

- ``no_control``: PV uncurtailed, batteries idle, the heat pump follows the heat demand (as
  far as its power, its source and the COP allow), the store buffers what it can and the
  boiler covers the rest;
- ``self_consumption``: the same, and the batteries charge from PV surplus and discharge into
  the site's load (heat pump and dry coolers included), shared by what each can do in the
  quarter hour. The rule reacts to the true net load of the same quarter hour, as a battery's
  own controller does within seconds, which flatters it slightly against the planned
  strategies;
- ``oracle``: perfect foresight. The optimiser plans with the true future (``perfect``
  forecast) and plans again only when its plan runs out (once a day with a horizon over 24 h),
  and its plan goes through the same dispatch, safety code and plant as the controller's: the
  best plan the controller's own model can make for the day.
- ``controller``: ``vpp run`` as it would have run (:func:`vpp.replay.loop.run_loop`,
  re-planning every quarter hour, forecasts ``asof`` unless told ``perfect``).
"""

from __future__ import annotations

import time

import numpy as np

from vpp.replay import plant as k
from vpp.replay.layout import PlantInputs, PlantParams
from vpp.replay.loop import LoopContext, run_loop, when_uncovered
from vpp.replay.trace import Trace

NO_CONTROL = "no_control"
SELF_CONSUMPTION = "self_consumption"
CONTROLLER = "controller"
ORACLE = "oracle"
#: Strategies in the order reports list them.
STRATEGIES = (NO_CONTROL, SELF_CONSUMPTION, CONTROLLER, ORACLE)
_RULES = {NO_CONTROL: k.RULE_NO_CONTROL, SELF_CONSUMPTION: k.RULE_SELF_CONSUMPTION}


def run_rule_strategy(
    name: str, params: PlantParams, inputs: PlantInputs, steps: int | None = None
) -> Trace:
    """A rule-based baseline (``no_control`` or ``self_consumption``) over the day."""
    n = len(inputs.index) if steps is None else min(steps, len(inputs.index))
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
    )
    trace = Trace.empty(inputs.index[:n], len(params.battery_ids), len(params.pv_ids), False)
    trace.out, trace.bat_w, trace.bat_soc_wh, trace.pv_w = out, bat_w, bat_soc, pv_w
    trace.bat_ch_w = np.maximum(-bat_w, 0.0)
    trace.stats["plant_s"] = time.perf_counter() - tic
    return trace


def run_oracle(ctx: LoopContext, steps: int | None = None) -> Trace:
    """Perfect foresight: plans from the true future, re-planned only when a plan runs out."""
    return run_loop(ctx, "perfect", when_uncovered, steps)
