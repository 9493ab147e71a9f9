"""Simulated grid meter: models 1 and 203, showing the whole site's grid power.

grid = base load + heat pump + dry coolers - PV - battery (battery > 0 discharges); > 0
imports. ``TotWhImp``/``TotWhExp`` integrate the imported and exported energy.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.sim import physics
from adapters.sim.device import Environment, SimulatedDevice, common_values, register
from adapters.sim.images import ModelSpec, RegisterImage, build_sunspec_image, pick_sf
from vpp.core.clock import Clock
from vpp.core.site import DeviceKind, MeterDevice, Site

PHASE_VOLTAGE_V = 230.0
LINE_VOLTAGE_V = 400.0
#: Counter readings of a meter that has run for a few years [Wh].
INITIAL_IMPORT_WH = 2.0e8
INITIAL_EXPORT_WH = 0.5e8


@dataclass(slots=True)
class MeterState:
    """What the grid meter sees, and the site terms it is made of [W], counters [Wh]."""

    grid_w: float = 0.0
    base_load_w: float = 0.0
    pv_w: float = 0.0
    battery_w: float = 0.0
    heat_pump_el_w: float = 0.0
    dry_cooler_w: float = 0.0
    import_wh: float = INITIAL_IMPORT_WH
    export_wh: float = INITIAL_EXPORT_WH

    @property
    def power_w(self) -> float:
        """Grid power [W], > 0 importing (same as ``grid_w``)."""
        return self.grid_w


@register(DeviceKind.METER, 203)
class MeterSim(SimulatedDevice):
    """The grid-connection meter (every simulated meter shows the site's sum)."""

    order = 9
    config: MeterDevice

    def __init__(self, config: MeterDevice, site: Site, clock: Clock, base: int = 40000) -> None:
        self._state = MeterState()
        super().__init__(config, site, clock, base)

    @property
    def state(self) -> MeterState:
        return self._state

    def build_image(self, base: int) -> RegisterImage:
        grid = self.site.grid
        peak_w = max(grid.import_limit_w, grid.export_limit_w) * 1.5
        w_sf = pick_sf(peak_w, signed=True, lowest=0)
        a_sf = pick_sf(peak_w / PHASE_VOLTAGE_V / 3, signed=True, lowest=-1)
        values = {"A_SF": a_sf, "V_SF": -1, "Hz_SF": -2, "W_SF": w_sf, "VA_SF": w_sf,
                  "VAR_SF": w_sf, "PF_SF": -1, "TotWh_SF": 0, "Evt": 0,
                  "TotWhImp": INITIAL_IMPORT_WH, "TotWhExp": INITIAL_EXPORT_WH}  # fmt: skip
        for name in ("PhV", "PhVphA", "PhVphB", "PhVphC"):
            values[name] = PHASE_VOLTAGE_V
        for name in ("PPV", "PhVphAB", "PhVphBC", "PhVphCA"):
            values[name] = LINE_VOLTAGE_V
        models = [
            ModelSpec(1, common_values("SIM-METER-203", self.id, self.unit)),
            ModelSpec(203, values),
        ]
        return build_sunspec_image(models, base)

    def advance(self, env: Environment) -> None:
        st = self._state
        st.base_load_w = env.base_load_w
        st.pv_w = env.pv_w
        st.battery_w = env.battery_w
        st.heat_pump_el_w = env.heat_pump_el_w
        st.dry_cooler_w = physics.dry_cooler_power_w(
            env.waste_heat_w, env.recovered_heat_w, env.dry_cooler_el_per_th
        )
        st.grid_w = physics.grid_power_w(
            st.base_load_w, st.heat_pump_el_w, st.dry_cooler_w, st.pv_w, st.battery_w
        )
        if st.grid_w > 0:
            st.import_wh += physics.energy_wh(st.grid_w, env.dt_s)
        else:
            st.export_wh += physics.energy_wh(-st.grid_w, env.dt_s)

    def publish(self) -> None:
        st, img = self._state, self.image
        phase_w = st.grid_w / 3.0
        amps = abs(phase_w) / PHASE_VOLTAGE_V
        for name, value in {"W": st.grid_w, "WphA": phase_w, "WphB": phase_w, "WphC": phase_w,
                            "A": 3 * amps, "AphA": amps, "AphB": amps, "AphC": amps,
                            "VA": abs(st.grid_w), "VAR": 0.0, "PF": 100.0, "Hz": 50.0,
                            "TotWhImp": round(st.import_wh),
                            "TotWhExp": round(st.export_wh)}.items():  # fmt: skip
            img.set(f"203.{name}", value)
