"""Simulated data-centre heat meter and waste-heat pump (non-SunSpec register maps).

The data centre draws IT power around its nominal ``it_power_w`` and offers
``heat_recovery_ratio`` of it as waste heat at ``waste_heat_temp_c``; the cooling-water flow
follows from Q = m * cp * dT with a 10 K spread. Heat the pump does not recover goes to the
dry coolers, whose electric power the grid meter sees.

The heat pump follows ``el_setpoint_w`` (ramped, between its minimum part load and
``max_el_w``; 0 stops it); thermal output = COP * electric with
COP = carnot_efficiency * T_supply / (T_supply - T_source), T_source = waste-heat temperature
- ``source_approach_k``. After ``setpoint_revert_s`` without a write it returns to its own
heat-led control at ``HEAT_LED_LOAD_PCT`` of ``max_el_w`` and shows that in ``el_setpoint_w``
(``setpoint_revert_s`` = 0 means the setpoint never times out).

The heat pump's plant also meters the heat the district heating network takes at its feed
(``network_th_w``): the world's heat demand (:class:`adapters.sim.profiles.SimWorld`, the same
data the forecasts are made from, minute by minute as the replay plant steps it) or, without
a world, the site's ``heat.annual_demand_wh`` spread evenly over the year. Heat pump, store and
boiler together cover it; the simulator models no store or boiler, so the meter shows the
demand whatever the heat pump delivers.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.regmap import load_map
from adapters.sim import physics
from adapters.sim.device import Environment, SimulatedDevice, register
from adapters.sim.images import RegisterImage, build_map_image
from adapters.sim.profiles import it_load_ratio
from vpp.core.clock import Clock
from vpp.core.site import DatacentreDevice, DeviceKind, HeatPumpDevice, Site

#: Temperature spread of the data centre's cooling water [K].
COOLING_SPREAD_K = 10.0
#: Electric load of the heat pump in its own heat-led control [% of max_el_w].
HEAT_LED_LOAD_PCT = 50.0
#: Time the heat pump takes to ramp over its full electric range [s].
FULL_RAMP_S = 120.0
#: Source temperature when the site has no data centre [degC].
DEFAULT_SOURCE_TEMP_C = 30.0
#: Setpoint timeout a fresh heat pump starts with [s].
DEFAULT_REVERT_S = 900
#: Hours of a (non-leap) year, for the flat heat demand without a world [h].
HOURS_PER_YEAR = 8760.0


@dataclass(slots=True)
class DatacentreState:
    """IT power [W], waste heat [W] at its temperature [degC], cooling-water flow [m^3/h]."""

    it_w: float = 0.0
    waste_heat_w: float = 0.0
    waste_heat_temp_c: float = 0.0
    flow_m3_per_h: float = 0.0


@register(DeviceKind.DATACENTRE)
class DatacentreSim(SimulatedDevice):
    """The data centre's IT power and waste-heat meter."""

    order = 0
    config: DatacentreDevice

    def __init__(
        self, config: DatacentreDevice, site: Site, clock: Clock, base: int = 40000
    ) -> None:
        self._state = DatacentreState()
        super().__init__(config, site, clock, base)

    @property
    def state(self) -> DatacentreState:
        return self._state

    def build_image(self, base: int) -> RegisterImage:
        return build_map_image(load_map(self.config.register_map), {})

    def advance(self, env: Environment) -> None:
        cfg, st = self.config, self._state
        if env.it_power_w is not None:
            st.it_w = env.it_power_w
        else:
            st.it_w = cfg.it_power_w * it_load_ratio(env.now, env.local_hour)
        st.waste_heat_w = cfg.heat_recovery_ratio * st.it_w
        temp = env.world_waste_heat_temp_c
        st.waste_heat_temp_c = cfg.waste_heat_temp_c if temp is None else temp
        st.flow_m3_per_h = physics.water_flow_m3_per_h(st.waste_heat_w, COOLING_SPREAD_K)
        env.waste_heat_w += st.waste_heat_w
        env.waste_heat_temp_c = st.waste_heat_temp_c
        env.dry_cooler_el_per_th = cfg.dry_cooler_el_per_th

    def publish(self) -> None:
        st, img = self._state, self.image
        img.set("it_power_w", st.it_w)
        img.set("waste_heat_temp_c", st.waste_heat_temp_c)
        img.set("flow_m3_per_h", st.flow_m3_per_h)
        img.set("waste_heat_w", st.waste_heat_w)


@dataclass(slots=True)
class HeatPumpState:
    """Physics state of the heat pump: powers [W], temperatures [degC], COP [-]."""

    el_w: float
    th_w: float = 0.0
    cop: float = 0.0
    #: Electric power the unit is heading for [W] (setpoint or heat-led, clamped).
    target_w: float = 0.0
    #: True while it follows a written setpoint, False in its own heat-led control.
    remote: bool = False
    setpoint_w: float = 0.0
    revert_s: float = DEFAULT_REVERT_S
    last_write_s: float | None = None
    source_temp_c: float = DEFAULT_SOURCE_TEMP_C
    supply_temp_c: float = 0.0
    #: Heat the network takes at the plant's feed (its heat meter) [W thermal].
    network_th_w: float = 0.0

    @property
    def power_w(self) -> float:
        """Electric power [W] (same as ``el_w``)."""
        return self.el_w


@register(DeviceKind.HEAT_PUMP)
class HeatPumpSim(SimulatedDevice):
    """The waste-heat pump feeding the district heating network."""

    order = 1
    config: HeatPumpDevice
    _CONTROL = frozenset({"el_setpoint_w", "setpoint_revert_s"})

    def __init__(self, config: HeatPumpDevice, site: Site, clock: Clock, base: int = 40000) -> None:
        self._state = HeatPumpState(el_w=self._heat_led_w(config))
        super().__init__(config, site, clock, base)

    @staticmethod
    def _heat_led_w(cfg: HeatPumpDevice) -> float:
        return cfg.max_el_w * HEAT_LED_LOAD_PCT / 100.0

    @property
    def state(self) -> HeatPumpState:
        return self._state

    def build_image(self, base: int) -> RegisterImage:
        initial = {"el_setpoint_w": self._heat_led_w(self.config),
                   "setpoint_revert_s": DEFAULT_REVERT_S}  # fmt: skip
        return build_map_image(load_map(self.config.register_map), initial)

    def apply_controls(self, keys: frozenset[str], now_s: float) -> None:
        if not keys & self._CONTROL:
            return
        st = self._state
        st.remote = True
        st.last_write_s = now_s
        st.setpoint_w = float(self.image.get("el_setpoint_w") or 0.0)
        st.revert_s = float(self.image.get("setpoint_revert_s") or 0.0)

    def _target_w(self) -> float:
        cfg, st = self.config, self._state
        wanted = st.setpoint_w if st.remote else self._heat_led_w(cfg)
        if wanted <= 0.0:
            return 0.0
        min_w = cfg.max_el_w * cfg.min_part_load_pct / 100.0
        return min(max(wanted, min_w), cfg.max_el_w)

    def advance(self, env: Environment) -> None:
        cfg, st = self.config, self._state
        if st.remote and physics.timer_expired(st.last_write_s, env.now_s, st.revert_s):
            st.remote = False
            self.image.set("el_setpoint_w", self._heat_led_w(cfg))
        st.target_w = self._target_w()
        st.el_w = physics.ramp(st.el_w, st.target_w, cfg.max_el_w / FULL_RAMP_S, env.dt_s)
        if env.waste_heat_temp_c is not None:
            st.source_temp_c = env.waste_heat_temp_c
        st.supply_temp_c = self.site.heat.supply_temp_c
        evaporator_c = st.source_temp_c - cfg.source_approach_k
        st.cop = physics.carnot_cop(st.supply_temp_c, evaporator_c, cfg.carnot_efficiency)
        st.th_w = st.cop * st.el_w
        demand = env.heat_demand_th_w
        if demand is None:
            demand = self.site.heat.annual_demand_wh / HOURS_PER_YEAR
        st.network_th_w = max(0.0, demand)
        env.heat_pump_el_w += st.el_w
        env.recovered_heat_w += max(0.0, st.th_w - st.el_w)

    def publish(self) -> None:
        st, img = self._state, self.image
        img.set("el_power_w", st.el_w)
        img.set("th_power_w", st.th_w)
        img.set("source_temp_c", st.source_temp_c)
        img.set("supply_temp_c", st.supply_temp_c)
        img.set("running", 1 if st.el_w > 0 else 0)
        img.set("network_th_w", st.network_th_w)
