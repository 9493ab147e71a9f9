"""Estimate of the thermal store's energy between plans.

The store has no meter of its own in the demo site, so the controller carries its energy
forward: it starts from the site file (or the recorder after a restart), follows the plan's
store trajectory, and corrects it by the measured heat pump output and, where the plant's
heat meter at the network's feed is read, the measured heat demand that depart from the
plan (the store takes a surplus and gives a shortfall first, the boiler only when it is
empty):

    E(t + dt) = E_plan(t + dt) + sum over polls of
                ((q_hp_measured - q_hp_planned) - (d_measured - d_planned)) * dt

clipped to ``0..store_capacity_wh``. A site with a store meter would replace this estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd


@dataclass
class StoreEstimate:
    capacity_wh: float
    energy_wh: float
    #: Measured minus planned heat into the store since the plan was made, Wh.
    drift_wh: float = 0.0

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
        if measured_hp_th_w is not None and "heat_pump_th_w" in plan_row:
            self.drift_wh += (measured_hp_th_w - float(plan_row["heat_pump_th_w"])) * dt_s / 3600
        if measured_demand_th_w is not None and "heat_demand_th_w" in plan_row:
            planned_demand = float(plan_row["heat_demand_th_w"])
            self.drift_wh -= (measured_demand_th_w - planned_demand) * dt_s / 3600
        self.energy_wh = min(max(planned_energy + self.drift_wh, 0.0), self.capacity_wh)
