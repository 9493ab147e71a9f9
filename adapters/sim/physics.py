"""Physics of the simulated devices: plain functions, units in every name.

Signs follow docs/architecture.md: battery power > 0 discharges, grid power > 0 imports, PV power
>= 0. Time steps ``dt_s`` are in seconds of simulated time; energies in Wh.
"""

from __future__ import annotations

from dataclasses import dataclass

#: DC output of a module field per W/m^2 of plane irradiance and Wp installed, after
#: temperature, soiling and wiring losses [-].
PV_PERFORMANCE_RATIO = 0.88
#: Inverter DC -> AC conversion efficiency [-].
INVERTER_EFFICIENCY = 0.97
#: Standard test condition irradiance [W/m^2].
STC_IRRADIANCE_W_PER_M2 = 1000.0
#: Specific heat of water [J/(kg K)] and its density at about 30 degC [kg/m^3].
WATER_CP_J_PER_KG_K = 4186.0
WATER_DENSITY_KG_PER_M3 = 995.7
KELVIN = 273.15
SECONDS_PER_HOUR = 3600.0


def pv_dc_power_w(plane_irradiance_w_per_m2: float, peak_wp: float) -> float:
    """DC power of a module field [W] at a plane irradiance [W/m^2] and peak power [Wp]."""
    irradiance = max(0.0, plane_irradiance_w_per_m2)
    return peak_wp * irradiance / STC_IRRADIANCE_W_PER_M2 * PV_PERFORMANCE_RATIO


def pv_available_ac_w(dc_power_w: float, rated_w: float) -> float:
    """AC power [W] the inverter could deliver from ``dc_power_w`` [W], clipped at its rating."""
    return min(max(0.0, dc_power_w) * INVERTER_EFFICIENCY, rated_w)


def pv_limited_ac_w(available_w: float, rated_w: float, limit_pct: float | None) -> float:
    """AC output [W] under an active limit [% of rated_w]; None means no limit."""
    if limit_pct is None:
        return available_w
    cap_w = max(0.0, min(100.0, limit_pct)) / 100.0 * rated_w
    return min(available_w, cap_w)


def timer_expired(last_write_s: float | None, now_s: float, revert_s: float) -> bool:
    """Whether a control written at ``last_write_s`` [s] has reverted by ``now_s`` [s].

    ``revert_s`` [s] <= 0 means the control never reverts (SunSpec: 0 = no timeout).
    """
    if last_write_s is None or revert_s <= 0:
        return False
    return now_s - last_write_s >= revert_s


def energy_wh(power_w: float, dt_s: float) -> float:
    """Energy [Wh] of ``power_w`` [W] held for ``dt_s`` [s]."""
    return power_w * dt_s / SECONDS_PER_HOUR


@dataclass(frozen=True, slots=True)
class BatteryLimits:
    """What a battery can do: capacity [Wh], powers [W], SoC window [%], efficiencies [-]."""

    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    soc_min_pct: float
    soc_max_pct: float
    charge_efficiency: float
    discharge_efficiency: float


def battery_power_w(setpoint_w: float, stored_wh: float, dt_s: float, lim: BatteryLimits) -> float:
    """AC power [W] (> 0 discharge) a battery delivers for ``setpoint_w`` [W] over ``dt_s`` [s].

    Clamped to the power limits, and so that the stored energy ``stored_wh`` [Wh] ends the
    step inside the SoC window: a battery that reaches a limit mid-step delivers the mean
    power of the step. With ``dt_s`` = 0 only the power limits and "already at the limit" apply.
    """
    power = min(max(setpoint_w, -lim.max_charge_w), lim.max_discharge_w)
    floor_wh = lim.capacity_wh * lim.soc_min_pct / 100.0
    ceiling_wh = lim.capacity_wh * lim.soc_max_pct / 100.0
    if power > 0:
        room_wh = max(0.0, stored_wh - floor_wh)
        if dt_s > 0:
            return min(power, room_wh * lim.discharge_efficiency * SECONDS_PER_HOUR / dt_s)
        return power if room_wh > 1e-9 else 0.0
    if power < 0:
        room_wh = max(0.0, ceiling_wh - stored_wh)
        if dt_s > 0:
            return max(power, -room_wh / lim.charge_efficiency * SECONDS_PER_HOUR / dt_s)
        return power if room_wh > 1e-9 else 0.0
    return 0.0


def battery_stored_wh(stored_wh: float, power_w: float, dt_s: float, lim: BatteryLimits) -> float:
    """Stored energy [Wh] after ``dt_s`` [s] at AC power ``power_w`` [W] (> 0 discharge).

    e[t+dt] = e[t] + eta_c * p_ch * dt - p_dis * dt / eta_d, bounded to 0..capacity.
    """
    if power_w > 0:
        stored_wh -= energy_wh(power_w, dt_s) / lim.discharge_efficiency
    else:
        stored_wh += energy_wh(-power_w, dt_s) * lim.charge_efficiency
    return min(max(stored_wh, 0.0), lim.capacity_wh)


def carnot_cop(supply_temp_c: float, source_temp_c: float, carnot_efficiency: float) -> float:
    """Heat-pump COP [-] = eta * T_supply / (T_supply - T_source), temperatures in degC.

    A lift of less than 1 K is treated as 1 K so the COP stays finite.
    """
    t_supply_k = supply_temp_c + KELVIN
    lift_k = max(1.0, supply_temp_c - source_temp_c)
    return carnot_efficiency * t_supply_k / lift_k


def ramp(current: float, target: float, max_rate_per_s: float, dt_s: float) -> float:
    """Move ``current`` towards ``target`` by at most ``max_rate_per_s * dt_s`` (same units)."""
    step = max_rate_per_s * max(0.0, dt_s)
    if target > current:
        return min(target, current + step)
    return max(target, current - step)


def water_flow_m3_per_h(heat_w: float, delta_t_k: float) -> float:
    """Water flow [m^3/h] that carries ``heat_w`` [W] at a temperature spread [K].

    Q = m * cp * dT  ->  m = Q / (cp * dT) [kg/s]; volume flow = m / rho * 3600.
    """
    if delta_t_k <= 0 or heat_w <= 0:
        return 0.0
    mass_kg_per_s = heat_w / (WATER_CP_J_PER_KG_K * delta_t_k)
    return mass_kg_per_s / WATER_DENSITY_KG_PER_M3 * SECONDS_PER_HOUR


def dry_cooler_power_w(waste_heat_w: float, recovered_heat_w: float, el_per_th: float) -> float:
    """Electric power [W] of the dry coolers rejecting the waste heat [W] not recovered."""
    return max(0.0, waste_heat_w - recovered_heat_w) * el_per_th


def grid_power_w(
    base_load_w: float,
    heat_pump_el_w: float,
    dry_cooler_w: float,
    pv_w: float,
    battery_w: float,
) -> float:
    """Site grid power [W], > 0 importing.

    grid = base load + heat pump + dry coolers - PV - battery (battery > 0 discharges).
    """
    return base_load_w + heat_pump_el_w + dry_cooler_w - pv_w - battery_w
