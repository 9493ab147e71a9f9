"""Simulated batteries: 124-type (models 1, 103, 120, 124) and 802-type (1, 701, 702, 704, 802).

A battery follows its setpoint within its power limits and SoC window, losing energy through
the charge and discharge efficiencies of its config. The setpoint comes from the control
model (see DEVICES.md) and lapses when its revert timer runs out without a new write: the
124-type sets ``StorCtl_Mod`` = 0, the 802-type clears ``WSetEna``; both then idle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from adapters.devices.battery import window_124
from adapters.sim import physics
from adapters.sim.device import Environment, SimulatedDevice, common_values, register
from adapters.sim.images import ModelSpec, RegisterImage, build_sunspec_image, pick_sf
from vpp.core.clock import Clock
from vpp.core.site import BatteryDevice, DeviceKind, Site

BATTERY_VOLTAGE_V = 400.0
PHASE_VOLTAGE_V = 230.0
#: 124 ChaSt states.
CHA_EMPTY, CHA_DISCHARGING, CHA_CHARGING, CHA_FULL, CHA_HOLDING = 2, 3, 4, 5, 6
#: 802 ChaSt states (same numbering as 124's) and State CONNECTED, Typ LITHIUM_ION.
STATE_CONNECTED, TYP_LITHIUM_ION = 3, 4


@dataclass(slots=True)
class BatteryState:
    """Physics state of a battery."""

    capacity_wh: float
    stored_wh: float
    #: AC power over the last step [W], > 0 discharging.
    power_w: float = 0.0
    #: Power the control asks for [W], > 0 discharging (0 when idle or reverted).
    setpoint_w: float = 0.0
    #: True while a remote setpoint is active.
    remote: bool = False
    revert_s: float = 0.0
    last_write_s: float | None = None
    charged_wh: float = 0.0
    discharged_wh: float = 0.0

    @property
    def soc_pct(self) -> float:
        """State of charge [% of capacity]."""
        return 100.0 * self.stored_wh / self.capacity_wh


class _Battery(SimulatedDevice):
    """What both battery types share: the SoC integration and the revert timer."""

    order = 3
    config: BatteryDevice

    def __init__(self, config: BatteryDevice, site: Site, clock: Clock, base: int = 40000) -> None:
        cfg = config
        self._state = BatteryState(cfg.capacity_wh, cfg.capacity_wh * cfg.soc_initial_pct / 100)
        self._limits = physics.BatteryLimits(
            capacity_wh=cfg.capacity_wh,
            max_charge_w=cfg.max_charge_w,
            max_discharge_w=cfg.max_discharge_w,
            soc_min_pct=cfg.soc_min_pct,
            soc_max_pct=cfg.soc_max_pct,
            charge_efficiency=cfg.charge_efficiency,
            discharge_efficiency=cfg.discharge_efficiency,
        )
        super().__init__(config, site, clock, base)

    @property
    def state(self) -> BatteryState:
        return self._state

    def _revert(self) -> None:
        """The revert timer ran out: drop the remote setpoint."""
        self._state.remote = False
        self._state.setpoint_w = 0.0

    def advance(self, env: Environment) -> None:
        st = self._state
        expiry_s = self._expiry_s()
        active_s = env.dt_s
        if expiry_s is not None:
            # Split the step at the moment the timer runs out, so the energy is exact.
            active_s = min(env.dt_s, max(0.0, expiry_s - (env.now_s - env.dt_s)))
        energy = self._run(st.setpoint_w if st.remote else 0.0, active_s)
        if expiry_s is not None and env.now_s >= expiry_s:
            self._revert()
            energy += self._run(0.0, env.dt_s - active_s)
        env.battery_w += energy / env.dt_s if env.dt_s > 0 else st.power_w

    def _expiry_s(self) -> float | None:
        """When the active setpoint lapses [POSIX s]; None if it never does."""
        st = self._state
        if not st.remote or st.revert_s <= 0 or st.last_write_s is None:
            return None
        return st.last_write_s + st.revert_s

    def _run(self, target_w: float, dt_s: float) -> float:
        """Follow ``target_w`` [W] for ``dt_s`` [s]; returns the AC energy delivered [W s]."""
        st, lim = self._state, self._limits
        st.power_w = physics.battery_power_w(target_w, st.stored_wh, dt_s, lim)
        st.stored_wh = physics.battery_stored_wh(st.stored_wh, st.power_w, dt_s, lim)
        if st.power_w > 0:
            st.discharged_wh += physics.energy_wh(st.power_w, dt_s)
        else:
            st.charged_wh += physics.energy_wh(-st.power_w, dt_s)
        return st.power_w * dt_s

    def _charge_state(self) -> int:
        st, lim = self._state, self._limits
        if st.power_w > 0:
            return CHA_DISCHARGING
        if st.power_w < 0:
            return CHA_CHARGING
        if st.soc_pct >= lim.soc_max_pct - 0.05:
            return CHA_FULL
        return CHA_EMPTY if st.soc_pct <= lim.soc_min_pct + 0.05 else CHA_HOLDING

    def _initial_wh(self) -> float:
        # Lifetime counters start where a few hundred cycles would have left them.
        return self.config.capacity_wh * 300


@register(DeviceKind.BATTERY, 124)
class Battery124Sim(_Battery):
    """A battery behind a 1xx inverter: storage controls in model 124 (rates in % of WChaMax)."""

    _CONTROL = frozenset({"124.StorCtl_Mod", "124.InWRte", "124.OutWRte",
                          "124.InOutWRte_RvrtTms", "124.WChaMax"})  # fmt: skip

    def build_image(self, base: int) -> RegisterImage:
        cfg = self.config
        w_max = max(cfg.max_charge_w, cfg.max_discharge_w)
        w_sf = pick_sf(w_max * 1.1, signed=True, lowest=0)
        amps = w_max / PHASE_VOLTAGE_V
        inverter = {"W_SF": w_sf, "VA_SF": w_sf, "VAr_SF": w_sf, "A_SF": -1, "V_SF": -1,
                    "Hz_SF": -2, "PF_SF": -1, "WH_SF": 0, "DCW_SF": w_sf, "DCA_SF": -1,
                    "DCV_SF": -1, "Tmp_SF": -1, "St": 4, "Evt1": 0, "Evt2": 0,
                    "PhVphA": PHASE_VOLTAGE_V, "PhVphB": PHASE_VOLTAGE_V,
                    "PhVphC": PHASE_VOLTAGE_V, "Hz": 50.0, "TmpCab": 28.0,
                    "WH": self._initial_wh()}  # fmt: skip
        rtg_sf = pick_sf(w_max, signed=False)
        nameplate = {"DERTyp": 82, "WRtg": w_max, "WRtg_SF": rtg_sf, "VARtg": w_max,
                     "VARtg_SF": rtg_sf, "VArRtgQ1": 0, "VArRtgQ2": 0, "VArRtgQ3": 0,
                     "VArRtgQ4": 0, "ARtg": amps, "ARtg_SF": -1, "PFRtgQ1": 1.0,
                     "PFRtgQ2": 1.0, "PFRtgQ3": 1.0, "PFRtgQ4": 1.0, "PFRtg_SF": -2,
                     "WHRtg": cfg.capacity_wh, "WHRtg_SF": pick_sf(cfg.capacity_wh, False),
                     "AhrRtg": cfg.capacity_wh / BATTERY_VOLTAGE_V, "AhrRtg_SF": -1,
                     "MaxChaRte": cfg.max_charge_w, "MaxChaRte_SF": rtg_sf,
                     "MaxDisChaRte": cfg.max_discharge_w, "MaxDisChaRte_SF": rtg_sf}  # fmt: skip
        storage = {"WChaMax": cfg.max_charge_w, "WChaGra": 100, "WDisChaGra": 100,
                   "StorCtl_Mod": 0, "MinRsvPct": cfg.soc_min_pct, "ChaState": 0.0,
                   "InBatV": BATTERY_VOLTAGE_V, "ChaSt": CHA_HOLDING, "OutWRte": 0.0,
                   "InWRte": 0.0, "InOutWRte_WinTms": 0, "InOutWRte_RvrtTms": 0,
                   "InOutWRte_RmpTms": 0, "WChaMax_SF": pick_sf(cfg.max_charge_w, False),
                   "WChaDisChaGra_SF": 0, "MinRsvPct_SF": -1, "ChaState_SF": -1,
                   "StorAval_SF": -1, "InBatV_SF": -1, "InOutWRte_SF": -2}  # fmt: skip
        models = [
            ModelSpec(1, common_values("SIM-BAT-124", cfg.id, self.unit)),
            ModelSpec(103, inverter),
            ModelSpec(120, nameplate),
            ModelSpec(124, storage),
        ]
        return build_sunspec_image(models, base)

    def accept(self, changed: dict[str, Any]) -> bool:
        reserve = changed.get("124.MinRsvPct")
        if reserve is not None and not 0.0 <= reserve < self.config.soc_max_pct:
            return False
        mode = changed.get("124.StorCtl_Mod")
        rates = [changed.get("124.InWRte"), changed.get("124.OutWRte")]
        if mode is not None and not 0 <= mode <= 3:
            return False
        return all(r is None or -100.0 <= r <= 100.0 for r in rates)

    def apply_controls(self, keys: frozenset[str], now_s: float) -> None:
        if "124.MinRsvPct" in keys:
            reserve = float(self.image.get("124.MinRsvPct") or 0.0)
            self._limits = dataclasses.replace(self._limits, soc_min_pct=reserve)
        if not keys & self._CONTROL:
            return
        st, img = self._state, self.image
        st.last_write_s = now_s
        st.revert_s = float(img.get("124.InOutWRte_RvrtTms") or 0)
        self._follow_registers()

    def _follow_registers(self) -> None:
        """The device's own mode (idle, 0 W) held inside the window [-InWRte, OutWRte] (% of
        WChaMax) that the mode bits switch on (``adapters.devices.battery.window_124``); an
        empty window (its low end above its high end) holds it at the high end."""
        st, img = self._state, self.image
        mode = int(img.get("124.StorCtl_Mod") or 0)
        w_cha_max = float(img.get("124.WChaMax") or 0.0)
        out_pct = float(img.get("124.OutWRte") or 0.0)
        in_pct = float(img.get("124.InWRte") or 0.0)
        window = window_124(mode, out_pct, in_pct)
        st.remote = window is not None
        held = 0.0 if window is None else min(max(0.0, window[0]), window[1])
        st.setpoint_w = held / 100.0 * w_cha_max

    def _revert(self) -> None:
        super()._revert()
        self.image.set("124.StorCtl_Mod", 0)

    def publish(self) -> None:
        st, img = self._state, self.image
        amps = abs(st.power_w) / PHASE_VOLTAGE_V / 3.0
        for name, value in {"W": st.power_w, "VA": abs(st.power_w), "VAr": 0.0, "PF": 100.0,
                            "A": 3 * amps, "AphA": amps, "AphB": amps, "AphC": amps,
                            "WH": round(self._initial_wh() + st.discharged_wh),
                            "DCW": st.power_w, "DCV": BATTERY_VOLTAGE_V,
                            "DCA": abs(st.power_w) / BATTERY_VOLTAGE_V}.items():  # fmt: skip
            img.set(f"103.{name}", value)
        img.set("124.ChaState", st.soc_pct)
        img.set("124.StorAval", max(0.0, st.stored_wh) / BATTERY_VOLTAGE_V)
        img.set("124.ChaSt", self._charge_state())


@register(DeviceKind.BATTERY, 802)
class Battery802Sim(_Battery):
    """A battery with 7xx DER models: ``WSet`` [W] in model 704, state in model 802."""

    _CONTROL = frozenset({"704.WSetEna", "704.WSetMod", "704.WSet", "704.WSetPct",
                          "704.WSetRvrtTms"})  # fmt: skip

    def build_image(self, base: int) -> RegisterImage:
        cfg = self.config
        w_max = max(cfg.max_charge_w, cfg.max_discharge_w)
        w_sf = pick_sf(w_max * 1.1, signed=True, lowest=0)
        measure = {"ACType": 2, "St": 1, "InvSt": 3, "ConnSt": 1, "Alrm": 0, "DERMode": 0,
                   "LLV": 400.0, "LNV": PHASE_VOLTAGE_V, "Hz": 50.0, "W_SF": w_sf,
                   "VA_SF": w_sf, "Var_SF": w_sf, "A_SF": -1, "V_SF": -1, "Hz_SF": -2,
                   "PF_SF": -2, "TotWh_SF": 0, "TotVarh_SF": 0, "Tmp_SF": -1,
                   "TmpCab": 28.0}  # fmt: skip
        capacity = {"WMaxRtg": w_max, "WChaRteMaxRtg": cfg.max_charge_w,
                    "WDisChaRteMaxRtg": cfg.max_discharge_w, "VAMaxRtg": w_max,
                    "VNomRtg": PHASE_VOLTAGE_V, "WMax": w_max, "WChaRteMax": cfg.max_charge_w,
                    "WDisChaRteMax": cfg.max_discharge_w, "VAMax": w_max,
                    "W_SF": pick_sf(w_max, False), "VA_SF": pick_sf(w_max, False),
                    "V_SF": -1, "PF_SF": -2, "Var_SF": 0, "A_SF": -1, "S_SF": 0}  # fmt: skip
        control = {"WSetEna": 0, "WSetMod": 1, "WSet": 0, "WSetRvrt": 0, "WSetPct": 0.0,
                   "WSetPctRvrt": 0.0, "WSetEnaRvrt": 0, "WSetRvrtTms": 0, "WSetRvrtRem": 0,
                   "WSet_SF": 0, "WSetPct_SF": -2, "PF_SF": -3, "WMaxLimPct_SF": -1,
                   "VarSet_SF": 0, "VarSetPct_SF": -2}  # fmt: skip
        bat_sf = pick_sf(w_max, False)
        battery = {"AHRtg": cfg.capacity_wh / BATTERY_VOLTAGE_V, "AHRtg_SF": -1,
                   "WHRtg": cfg.capacity_wh, "WHRtg_SF": pick_sf(cfg.capacity_wh, False),
                   "WChaRteMax": cfg.max_charge_w, "WDisChaRteMax": cfg.max_discharge_w,
                   "WChaDisChaMax_SF": bat_sf, "SoCMax": cfg.soc_max_pct,
                   "SoCMin": cfg.soc_min_pct, "SoC_SF": -1, "SoH": 100.0, "SoH_SF": 0,
                   "LocRemCtl": 0, "AlmRst": 0, "Typ": TYP_LITHIUM_ION,
                   "State": STATE_CONNECTED, "Evt1": 0, "Evt2": 0, "EvtVnd1": 0,
                   "EvtVnd2": 0, "V": BATTERY_VOLTAGE_V, "V_SF": -1, "CellV_SF": -3,
                   "A_SF": -1, "AMax_SF": -1, "W_SF": w_sf, "SetOp": 1,
                   "SetInvState": 3}  # fmt: skip
        models = [
            ModelSpec(1, common_values("SIM-BAT-802", cfg.id, self.unit)),
            ModelSpec(701, measure),
            ModelSpec(702, capacity),
            ModelSpec(704, control),
            ModelSpec(802, battery),
        ]
        return build_sunspec_image(models, base)

    def accept(self, changed: dict[str, Any]) -> bool:
        flags = (changed.get("704.WSetEna"), changed.get("704.WSetMod"))
        return all(flag in (None, 0, 1) for flag in flags)

    def apply_controls(self, keys: frozenset[str], now_s: float) -> None:
        if not keys & self._CONTROL:
            return
        st, img = self._state, self.image
        st.last_write_s = now_s
        st.revert_s = float(img.get("704.WSetRvrtTms") or 0)
        st.remote = img.get("704.WSetEna") == 1
        if img.get("704.WSetMod") == 0:  # W_MAX_PCT: WSetPct of WMax
            w_max = float(img.get("702.WMax") or 0.0)
            st.setpoint_w = float(img.get("704.WSetPct") or 0.0) / 100.0 * w_max
        else:
            st.setpoint_w = float(img.get("704.WSet") or 0.0)
        if not st.remote:
            st.setpoint_w = 0.0

    def _revert(self) -> None:
        super()._revert()
        self.image.set("704.WSetEna", 0)

    def _remaining_s(self) -> int:
        expiry_s = self._expiry_s()
        if expiry_s is None or self._env is None:
            return 0
        return max(0, round(expiry_s - self._env.now_s))

    def publish(self) -> None:
        st, img = self._state, self.image
        amps = abs(st.power_w) / PHASE_VOLTAGE_V / 3.0
        base_wh = self._initial_wh()
        for name, value in {"W": st.power_w, "VA": abs(st.power_w), "Var": 0.0, "PF": 1.0,
                            "A": 3 * amps, "TotWhInj": round(base_wh + st.discharged_wh),
                            "TotWhAbs": round(base_wh * 1.05 + st.charged_wh)}.items():  # fmt: skip
            img.set(f"701.{name}", value)
        img.set("704.WSetEna", 1 if st.remote else 0)
        img.set("704.WSetRvrtRem", self._remaining_s())
        img.set("802.SoC", st.soc_pct)
        img.set("802.W", st.power_w)
        img.set("802.A", st.power_w / BATTERY_VOLTAGE_V)
        img.set("802.ChaSt", self._charge_state())
