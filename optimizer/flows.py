"""Unit-level dispatch: what the LP (or the fallback rules) decided, in W and Wh."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass
class Flows:
    """One value per step (T,), or per unit and step (U, T) / (V, T). Powers W, energies Wh.

    Stored energies are at the end of each step; powers are averages over the step.
    """

    bat_charge_w: F64
    bat_discharge_w: F64
    bat_soc_wh: F64
    pv_w: F64
    grid_import_w: F64
    grid_export_w: F64
    el_unserved_w: F64
    el_spilled_w: F64
    hp_el_w: F64
    hp_th_w: F64
    dry_cooler_th_w: F64
    dry_cooler_el_w: F64
    boiler_th_w: F64
    store_charge_w: F64
    store_discharge_w: F64
    store_wh: F64
    heat_unmet_w: F64

    @property
    def bat_net_w(self) -> F64:
        """Net battery power per unit, W, > 0 discharging."""
        return self.bat_discharge_w - self.bat_charge_w
