"""The plant simulator of replay: one quarter hour of what really happens to the site.

Given the setpoints in force and what really happened (PV available, load, heat demand, waste
heat and its COP), :func:`plant_step` moves the batteries and the thermal store on by one step
and returns every flow. Powers are quarter-hour means [W], energies [Wh], signs as in
docs/architecture.md (battery > 0 discharges, grid > 0 imports).

Physics of one step (``dt`` = step length [h]):

- battery ``i``: the setpoint is clamped to the power limits, then so that the stored energy
  ends the step inside the SoC window (a battery that reaches its limit mid-step delivers the
  step's mean power), exactly as the simulated devices do (:mod:`adapters.sim.physics`)::

      e' = e - p * dt / eta_d   (p > 0)      e' = e + eta_c * (-p) * dt   (p < 0)

- PV inverter ``j``: ``pv = min(available, limit)``;
- heat pump: a running setpoint below the minimum part load is raised to it (as the device
  does); the source heat ``(COP - 1) * el`` may not exceed the waste heat on offer; the
  heat it makes cannot exceed what the network takes (heat demand plus the store's free room),
  beyond that it throttles (cycles within the quarter hour). COP = 0 means the source is too
  cold and the unit stays off;
- thermal store: the hydraulic buffer. Heat-pump surplus charges it; a deficit is taken from
  it first, within its discharge limit, and the backup boiler covers the rest (the boiler
  is the physical balancer: heat demand is always met while the boiler can)::

      s' = keep * s + (q_ch - q_dis) * dt,     keep = (1 - loss_per_h) ** dt

- dry coolers reject the waste heat the heat pump does not take: ``el = k * (Q_waste - src)``;
- grid: ``load + hp_el + dry_el - sum(pv) - sum(battery)``.

The same rules drive the baselines: :func:`run_rule` loops over a day with the setpoints of
"no control" or "self-consumption" computed inside the loop. Everything here is compiled with
numba (``cache=True``); :mod:`vpp.replay.reference` is the plain-Python reference that the
tests hold equal to it.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

F64 = NDArray[np.float64]

# Battery parameter columns, one row per battery (see vpp.replay.layout.plant_params).
B_CAP, B_SOC_MIN, B_SOC_MAX, B_MAX_CH, B_MAX_DIS, B_ETA_C, B_ETA_D, B_WEAR = range(8)
N_BAT_PARAMS = 8
# Site parameters.
H_DT, H_STORE_CAP, H_KEEP, H_STORE_CH, H_STORE_DIS, H_BOILER, H_HP_MAX, H_HP_MIN, H_DRY_K = range(9)
N_HEAT_PARAMS = 9
# Inputs per step (what really happened).
I_LOAD, I_DEMAND, I_WASTE, I_COP, I_PRICE_IMP, I_PRICE_EXP, I_CO2 = range(7)
INPUT_COLUMNS = (
    "load_w",
    "heat_demand_th_w",
    "waste_heat_th_w",
    "heat_pump_cop",
    "price_import_eur_per_mwh",
    "price_export_eur_per_mwh",
    "co2_g_per_kwh",
)
# Outputs per step.
OUTPUT_COLUMNS = (
    "pv_w",
    "pv_available_w",
    "load_w",
    "battery_w",
    "battery_charge_w",
    "battery_discharge_w",
    "battery_soc_wh",
    "heat_pump_el_w",
    "heat_pump_th_w",
    "waste_heat_used_th_w",
    "dry_cooler_th_w",
    "dry_cooler_el_w",
    "store_charge_th_w",
    "store_discharge_th_w",
    "store_wh",
    "store_loss_th_w",
    "boiler_th_w",
    "unmet_heat_th_w",
    "heat_demand_th_w",
    "waste_heat_th_w",
    "grid_w",
)
(
    O_PV,
    O_PV_AVAIL,
    O_LOAD,
    O_BAT,
    O_BAT_CH,
    O_BAT_DIS,
    O_SOC,
    O_HP_EL,
    O_HP_TH,
    O_SOURCE,
    O_DRY_TH,
    O_DRY_EL,
    O_STORE_CH,
    O_STORE_DIS,
    O_STORE,
    O_STORE_LOSS,
    O_BOILER,
    O_UNMET,
    O_DEMAND,
    O_WASTE,
    O_GRID,
) = range(21)
N_OUT = 21
#: Baseline rules for :func:`run_rule`.
RULE_NO_CONTROL = 0
RULE_SELF_CONSUMPTION = 1


@njit(cache=True)
def battery_power(setpoint_w: float, soc_wh: float, p: F64, dt_h: float) -> float:
    """Mean AC power [W] one battery delivers for ``setpoint_w`` [W] over ``dt_h`` [h]."""
    power = min(max(setpoint_w, -p[B_MAX_CH]), p[B_MAX_DIS])
    if power > 0.0:
        room = max(0.0, soc_wh - p[B_SOC_MIN])
        return float(min(power, room * p[B_ETA_D] / dt_h))
    if power < 0.0:
        room = max(0.0, p[B_SOC_MAX] - soc_wh)
        return float(max(power, -room / p[B_ETA_C] / dt_h))
    return 0.0


@njit(cache=True)
def battery_energy(soc_wh: float, power_w: float, p: F64, dt_h: float) -> float:
    """Stored energy [Wh] after ``dt_h`` [h] at AC power ``power_w`` [W], within 0..capacity."""
    if power_w > 0.0:
        soc_wh -= power_w * dt_h / p[B_ETA_D]
    else:
        soc_wh += -power_w * dt_h * p[B_ETA_C]
    return float(min(max(soc_wh, 0.0), p[B_CAP]))


@njit(cache=True)
def heat_step(heat: F64, inp: F64, hp_set_w: float, store: F64, out: F64) -> None:
    """Heat pump, store, boiler and dry coolers for one step; ``store[0]`` [Wh] moves on."""
    heat_flows(heat, inp, hp_set_w, store, heat[H_KEEP] * store[0], out)


@njit(cache=True)
def heat_flows(heat: F64, inp: F64, hp_set_w: float, store: F64, kept: float, out: F64) -> None:
    """:func:`heat_step` with the store's content after its standing loss given: ``kept``
    [Wh] (the replay plant's minutes take the quarter hour's loss in its first minute)."""
    dt = heat[H_DT]
    cop, waste, demand = inp[I_COP], inp[I_WASTE], inp[I_DEMAND]
    kept = max(0.0, kept)
    el = hp_set_w
    if 0.0 < el < heat[H_HP_MIN]:
        el = heat[H_HP_MIN]
    el = max(0.0, min(el, heat[H_HP_MAX]))
    el = 0.0 if cop <= 1.0 else min(el, waste / (cop - 1.0))
    th = cop * el
    room = min(heat[H_STORE_CH], max(0.0, (heat[H_STORE_CAP] - kept) / dt))
    if th > demand + room:
        th = demand + room
        el = th / cop
    charge = max(0.0, th - demand)
    need = max(0.0, demand - th)
    discharge = min(need, heat[H_STORE_DIS], kept / dt)
    boiler = min(need - discharge, heat[H_BOILER])
    source = (cop - 1.0) * el if el > 0.0 else 0.0
    dry = max(0.0, waste - source)
    store_new = min(max(kept + (charge - discharge) * dt, 0.0), heat[H_STORE_CAP])
    out[O_HP_EL], out[O_HP_TH], out[O_SOURCE] = el, th, source
    out[O_DRY_TH], out[O_DRY_EL] = dry, heat[H_DRY_K] * dry
    out[O_STORE_CH], out[O_STORE_DIS] = charge, discharge
    out[O_STORE_LOSS] = (store[0] - kept) / dt
    out[O_STORE], out[O_BOILER], out[O_UNMET] = store_new, boiler, need - discharge - boiler
    out[O_DEMAND], out[O_WASTE] = demand, waste
    store[0] = store_new


@njit(cache=True)
def electric_step(
    bat: F64,
    pv_rated: F64,
    heat: F64,
    pv_avail: F64,
    inp: F64,
    bat_set: F64,
    pv_limit: F64,
    soc: F64,
    bat_w: F64,
    pv_w: F64,
    out: F64,
) -> None:
    """Batteries, PV and the grid for one step, after :func:`heat_step` filled ``out``."""
    dt = heat[H_DT]
    charge = discharge = stored = 0.0
    for i in range(bat.shape[0]):
        p = battery_power(bat_set[i], soc[i], bat[i], dt)
        soc[i] = battery_energy(soc[i], p, bat[i], dt)
        bat_w[i] = p
        charge += max(-p, 0.0)
        discharge += max(p, 0.0)
        stored += soc[i]
    pv = avail = 0.0
    for j in range(pv_rated.shape[0]):
        pv_w[j] = max(0.0, min(pv_avail[j], pv_limit[j]))
        pv += pv_w[j]
        avail += pv_avail[j]
    out[O_PV], out[O_PV_AVAIL], out[O_LOAD] = pv, avail, inp[I_LOAD]
    out[O_BAT], out[O_BAT_CH], out[O_BAT_DIS] = discharge - charge, charge, discharge
    out[O_SOC] = stored
    out[O_GRID] = inp[I_LOAD] + out[O_HP_EL] + out[O_DRY_EL] - pv - (discharge - charge)


@njit(cache=True)
def plant_step(
    bat: F64,
    pv_rated: F64,
    heat: F64,
    pv_avail: F64,
    inp: F64,
    bat_set: F64,
    pv_limit: F64,
    hp_set_w: float,
    soc: F64,
    store: F64,
    bat_w: F64,
    pv_w: F64,
    out: F64,
) -> None:
    """One step with given setpoints: battery W (> 0 discharge), PV limits W, heat pump W.

    ``soc`` [Wh] and ``store[0]`` [Wh] are updated in place; ``bat_w``, ``pv_w`` [W] and
    ``out`` (:data:`OUTPUT_COLUMNS`) are written.
    """
    heat_step(heat, inp, hp_set_w, store, out)
    electric_step(bat, pv_rated, heat, pv_avail, inp, bat_set, pv_limit, soc, bat_w, pv_w, out)


@njit(cache=True)
def heat_led_w(heat: F64, inp: F64) -> float:
    """Heat pump electric setpoint [W] that follows the heat demand (its own control)."""
    if inp[I_COP] <= 1.0:
        return 0.0
    return float(min(inp[I_DEMAND] / inp[I_COP], heat[H_HP_MAX]))


@njit(cache=True)
def share_fleet(target_w: float, bat: F64, soc: F64, dt_h: float, bat_set: F64) -> None:
    """Split a fleet power [W, > 0 discharge] over the batteries in proportion to what each
    can deliver in this step (power limit and SoC window), none beyond its own share."""
    n = bat.shape[0]
    able = np.zeros(n)
    total = 0.0
    for i in range(n):
        probe = bat[i, B_MAX_DIS] if target_w > 0.0 else -bat[i, B_MAX_CH]
        able[i] = abs(battery_power(probe, soc[i], bat[i], dt_h))
        total += able[i]
    share = min(1.0, abs(target_w) / total) if total > 0.0 else 0.0
    sign = 1.0 if target_w > 0.0 else -1.0
    for i in range(n):
        bat_set[i] = sign * able[i] * share


@njit(cache=True)
def export_curtailed(
    bat: F64,
    heat: F64,
    pv_avail: F64,
    inp: F64,
    bat_set: F64,
    pv_limit: F64,
    soc: F64,
    export_cap_w: float,
    out: F64,
) -> None:
    """Lower the PV limits [W] in place so that the grid export stays within
    ``export_cap_w`` [W] (inf: no cap), all inverters by the same share of their output, as
    an inverter's own export limiter does; after :func:`heat_step` filled ``out``."""
    if not np.isfinite(export_cap_w):
        return
    dt = heat[H_DT]
    pv = 0.0
    for j in range(pv_limit.shape[0]):
        pv_limit[j] = max(0.0, min(pv_avail[j], pv_limit[j]))
        pv += pv_limit[j]
    battery = 0.0
    for i in range(bat.shape[0]):
        battery += battery_power(bat_set[i], soc[i], bat[i], dt)
    grid = inp[I_LOAD] + out[O_HP_EL] + out[O_DRY_EL] - pv - battery
    excess = -grid - export_cap_w
    if excess <= 0.0 or pv <= 0.0:
        return
    keep = max(0.0, 1.0 - excess / pv)
    for j in range(pv_limit.shape[0]):
        pv_limit[j] *= keep


@njit(cache=True)
def run_rule(
    rule: int,
    bat: F64,
    pv_rated: F64,
    heat: F64,
    pv_avail: F64,
    inp: F64,
    soc0: F64,
    store0: float,
    pv_cap: F64,
    charge_cap: F64,
    export_cap: F64,
) -> tuple[F64, F64, F64, F64]:
    """A baseline over ``inp.shape[0]`` steps: PV uncurtailed, heat pump heat-led, and the
    batteries idle (``RULE_NO_CONTROL``) or covering the net load from their own surplus
    (``RULE_SELF_CONSUMPTION``: charge from PV surplus, discharge into the load, as a home
    battery's own controller does within the quarter hour).

    The grid operator's signals hold as they hold for the controller: ``pv_cap`` (steps,
    inverters) caps each inverter's output [W], ``charge_cap`` (steps, batteries) each
    battery's charging [W] (a §14a dim) and ``export_cap`` (steps) the grid export [W],
    which the PV gives way to (inf where nothing caps).

    Returns ``out`` (steps, :data:`OUTPUT_COLUMNS`), battery power and energy (steps,
    batteries) and PV output (steps, inverters).
    """
    steps, nb, nv = inp.shape[0], bat.shape[0], pv_rated.shape[0]
    out = np.zeros((steps, N_OUT))
    bat_w = np.zeros((steps, nb))
    bat_soc = np.zeros((steps, nb))
    pv_w = np.zeros((steps, nv))
    soc = soc0.copy()
    store = np.array([store0])
    bat_set = np.zeros(nb)
    limit = np.zeros(nv)
    for t in range(steps):
        heat_step(heat, inp[t], heat_led_w(heat, inp[t]), store, out[t])
        for j in range(nv):
            limit[j] = min(pv_rated[j], pv_cap[t, j])
        if rule == RULE_SELF_CONSUMPTION:
            pv = 0.0
            for j in range(nv):
                pv += min(pv_avail[t, j], limit[j])
            net = inp[t, I_LOAD] + out[t, O_HP_EL] + out[t, O_DRY_EL] - pv
            share_fleet(net, bat, soc, heat[H_DT], bat_set)
            for i in range(nb):
                bat_set[i] = max(bat_set[i], -charge_cap[t, i])
        export_curtailed(bat, heat, pv_avail[t], inp[t], bat_set, limit, soc, export_cap[t], out[t])
        electric_step(
            bat,
            pv_rated,
            heat,
            pv_avail[t],
            inp[t],
            bat_set,
            limit,
            soc,
            bat_w[t],
            pv_w[t],
            out[t],
        )
        bat_soc[t] = soc
    return out, bat_w, bat_soc, pv_w


def no_limits(steps: int, batteries: int, inverters: int) -> tuple[F64, F64, F64]:
    """``pv_cap``, ``charge_cap`` and ``export_cap`` of :func:`run_rule` when nothing caps."""
    return (
        np.full((steps, inverters), np.inf),
        np.full((steps, batteries), np.inf),
        np.full(steps, np.inf),
    )


def warm_up() -> None:
    """Compile (or load from the cache) every kernel once, on a one-step toy plant."""
    bat = np.array([[1e4, 1e3, 9e3, 5e3, 5e3, 0.95, 0.95, 20.0]])
    heat = np.array([0.25, 1e5, 0.999, 5e4, 5e4, 1e6, 1e4, 2e3, 0.05])
    inp = np.array([[1e3, 2e4, 3e4, 3.5, 100.0, 90.0, 300.0]])
    pv_rated = np.array([5e3])
    pv_avail = np.array([[2e3]])
    run_rule(
        RULE_SELF_CONSUMPTION, bat, pv_rated, heat, pv_avail, inp, np.array([5e3]), 5e4,
        *no_limits(1, 1, 1),
    )  # fmt: skip
    out = np.zeros(N_OUT)
    plant_step(
        bat,
        pv_rated,
        heat,
        pv_avail[0],
        inp[0],
        np.zeros(1),
        pv_rated,
        1e3,
        np.array([5e3]),
        np.array([5e4]),
        np.zeros(1),
        np.zeros(1),
        out,
    )
