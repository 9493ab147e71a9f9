"""Estimate of the thermal store's energy between plans.

The store has no meter of its own in the demo site, so the controller carries its energy
forward: it starts from the site file (or the recorder after a restart). The store takes a
surplus and gives a shortfall first, the boiler only when it is empty. Where both the heat
pump's output ``q_hp`` and the plant's heat meter at the network's feed ``d`` are read, the
estimate follows them, poll by poll, as the plant does::

    E(t + dt) = keep(dt) * E(t) + clip(q_hp - d, -discharge rating, charge rating) * dt

clipped to ``0..store_capacity_wh`` (``keep(dt) = (1 - loss per hour) ** dt_h``; what the
store cannot give, the boiler makes). This holds whatever the plan split between store and
boiler: a plan that burns gas while the store holds heat is not what the plant does, and a
demand below such a plan lowers the boiler, it does not fill an empty store. Without the
heat meter (or the heat pump's output) the estimate follows the plan's store trajectory,
corrected by what of the two is measured and departs from the plan::

    E(t + dt) = E_plan(t + dt) + sum over polls of
                ((q_hp_measured - q_hp_planned) - (d_measured - d_planned)) * dt

A site with a store meter would replace this estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from vpp.core.site import HeatSystem


@dataclass
class StoreEstimate:
    capacity_wh: float
    energy_wh: float
    #: Measured minus planned heat into the store since the plan was made, Wh.
    drift_wh: float = 0.0
    #: Standing loss [% of the content per hour] and the store's ratings [W], for the
    #: estimate from the measured heat (:meth:`for_site`).
    loss_pct_per_h: float = 0.0
    max_charge_w: float = math.inf
    max_discharge_w: float = math.inf

    @classmethod
    def for_site(cls, heat: HeatSystem, energy_wh: float) -> StoreEstimate:
        """The estimate of the site's store, starting from ``energy_wh`` [Wh]."""
        return cls(
            heat.store_capacity_wh,
            energy_wh,
            loss_pct_per_h=heat.store_loss_pct_per_h,
            max_charge_w=heat.store_max_charge_th_w,
            max_discharge_w=heat.store_max_discharge_th_w,
        )

    def on_plan(self, energy_wh: float) -> None:
        """A new plan starts from ``energy_wh``; drift is reset."""
        self.energy_wh = min(max(energy_wh, 0.0), self.capacity_wh)
        self.drift_wh = 0.0

    def on_poll(
        self,
        plan_row: pd.Series | Mapping[str, float] | None,
        measured_hp_th_w: float | None,
        dt_s: float,
        step_fraction: float = 1.0,
        step_h: float = 0.25,
        measured_demand_th_w: float | None = None,
    ) -> None:
        """Advance by one poll interval of ``dt_s`` seconds.

        step_fraction : share of the plan's current step that has passed (0..1)
        step_h : the plan's step length [h]
        measured_demand_th_w : the network's heat demand now [W], None where not metered
        """
        if plan_row is None or dt_s <= 0:
            return
        # The plan gives energy at the step's end and the store's mean discharge power.
        end = float(plan_row.get("store_wh", self.energy_wh))
        discharge_w = float(plan_row.get("store_th_w", 0.0))
        planned_energy = end + discharge_w * (1.0 - step_fraction) * step_h
        measured = (measured_hp_th_w, measured_demand_th_w)
        if all(v is not None and math.isfinite(v) for v in measured):
            hp_w, demand_w = float(measured_hp_th_w), float(measured_demand_th_w)  # type: ignore[arg-type]
            keep = (1.0 - self.loss_pct_per_h / 100.0) ** (dt_s / 3600.0)
            flow_w = min(max(hp_w - demand_w, -self.max_discharge_w), self.max_charge_w)
            energy = keep * self.energy_wh + flow_w * dt_s / 3600.0
            self.energy_wh = min(max(energy, 0.0), self.capacity_wh)
            # Kept so that a poll without the meter goes on from here.
            self.drift_wh = self.energy_wh - planned_energy
            return
        if measured_hp_th_w is not None and "heat_pump_th_w" in plan_row:
            self.drift_wh += (measured_hp_th_w - float(plan_row["heat_pump_th_w"])) * dt_s / 3600
        if measured_demand_th_w is not None and "heat_demand_th_w" in plan_row:
            planned_demand = float(plan_row["heat_demand_th_w"])
            self.drift_wh -= (measured_demand_th_w - planned_demand) * dt_s / 3600
        self.energy_wh = min(max(planned_energy + self.drift_wh, 0.0), self.capacity_wh)
