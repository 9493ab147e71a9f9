"""Simulated PV inverter: models 1, 103 (or 113 float), 120, 123 (or 704), optional 160.

Output follows the plane irradiance of the module field, clipped at the AC rating and capped
by the active limit ``WMaxLimPct`` while ``WMaxLim_Ena`` = 1. A limit reverts (the enable
flag is cleared) when ``WMaxLimPct_RvrtTms`` seconds pass without a new write to the limit,
its timer or its enable flag. Inverters above ``MPPT_SPLIT_ABOVE_W`` also present model 160
with two MPPT inputs sharing the DC power 55/45.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from adapters.sim import physics
from adapters.sim.device import Environment, SimulatedDevice, common_values, register
from adapters.sim.images import ModelSpec, RegisterImage, build_sunspec_image, pick_sf
from vpp.core.clock import Clock
from vpp.core.site import DeviceKind, PvDevice, Site

#: Inverters rated above this [W] present model 160 with two MPPT inputs.
MPPT_SPLIT_ABOVE_W = 10_000.0
MPPT_SHARES = (0.55, 0.45)
PHASE_VOLTAGE_V = 230.0
LINE_VOLTAGE_V = 400.0
DC_VOLTAGE_V = 620.0
#: Lifetime energy a simulated inverter has already produced, per W of rating [Wh/W].
INITIAL_YIELD_WH_PER_W = 950.0
#: 103 operating states.
ST_SLEEPING, ST_MPPT, ST_THROTTLED = 2, 4, 5

# (limit, revert timer, enable, remaining time or None) points per control model.
_LIMIT_POINTS: dict[str, tuple[str, str, str, str | None]] = {
    "123": ("123.WMaxLimPct", "123.WMaxLimPct_RvrtTms", "123.WMaxLim_Ena", None),
    "704": ("704.WMaxLimPct", "704.WMaxLimPctRvrtTms", "704.WMaxLimPctEna",
            "704.WMaxLimPctRvrtRem"),
}  # fmt: skip


@dataclass(slots=True)
class PvState:
    """Physics state of a PV inverter."""

    irradiance_w_per_m2: float = 0.0
    #: DC power the modules could deliver [W] (before the limit).
    dc_available_w: float = 0.0
    #: AC power the inverter could deliver without a limit [W].
    available_w: float = 0.0
    #: AC output [W].
    pv_w: float = 0.0
    #: Lifetime AC energy [Wh].
    energy_wh: float = 0.0
    #: Limit setting as last written [% of rated].
    limit_setting_pct: float = 100.0
    limit_enabled: bool = False
    #: Revert timer as last written [s] (0 = never reverts).
    revert_s: float = 0.0
    #: When a limit point was last written [POSIX s].
    last_write_s: float | None = None

    @property
    def limit_pct(self) -> float | None:
        """Active limit [% of rated], None when disabled."""
        return self.limit_setting_pct if self.limit_enabled else None

    @property
    def power_w(self) -> float:
        """AC output [W] (same as ``pv_w``)."""
        return self.pv_w


def _sfs(rated_w: float, serial: str) -> dict[str, int]:
    w_sf = pick_sf(rated_w * 1.1, signed=True, lowest=-1)
    # Real fleets mix both conventions for the limit: exercise both.
    lim_sf = -1 if zlib.crc32(serial.encode()) % 2 else 0
    a_sf = pick_sf(rated_w / PHASE_VOLTAGE_V * 1.1, signed=False, lowest=-2)
    return {"W_SF": w_sf, "VA_SF": w_sf, "VAr_SF": w_sf, "DCW_SF": w_sf, "A_SF": a_sf,
            "DCA_SF": a_sf, "V_SF": -1, "DCV_SF": -1, "Hz_SF": -2, "PF_SF": -1, "WH_SF": 0,
            "Tmp_SF": -1, "WMaxLimPct_SF": lim_sf}  # fmt: skip


@register(DeviceKind.PV, 103, 113)
class PvSim(SimulatedDevice):
    """A rooftop PV inverter."""

    order = 2
    config: PvDevice

    def __init__(self, config: PvDevice, site: Site, clock: Clock, base: int = 40000) -> None:
        self._state = PvState()
        super().__init__(config, site, clock, base)
        self._state.energy_wh = self.config.rated_w * INITIAL_YIELD_WH_PER_W
        self._limit_keys = _LIMIT_POINTS[self.config.control]

    @property
    def state(self) -> PvState:
        return self._state

    @property
    def measurement_model(self) -> int:
        return 113 if self.config.sim.sunspec_model == 113 else 103

    @property
    def mppt_inputs(self) -> int:
        return len(MPPT_SHARES) if self.config.rated_w > MPPT_SPLIT_ABOVE_W else 0

    def build_image(self, base: int) -> RegisterImage:
        cfg = self.config
        sfs = _sfs(cfg.rated_w, cfg.id)
        models = [
            ModelSpec(1, common_values(f"SIM-PV-{self.measurement_model}", cfg.id, self.unit)),
            ModelSpec(self.measurement_model, {**sfs, "St": ST_SLEEPING, "Evt1": 0, "Evt2": 0,
                                               "WH": cfg.rated_w * INITIAL_YIELD_WH_PER_W}),
            ModelSpec(120, self._nameplate()),
            self._control_model(sfs["WMaxLimPct_SF"]),
        ]  # fmt: skip
        if self.mppt_inputs:
            models.append(self._mppt_model())
        return build_sunspec_image(models, base)

    def _nameplate(self) -> dict[str, Any]:
        rated = self.config.rated_w
        w_sf = pick_sf(rated, signed=False)
        var = rated * 0.44
        return {"DERTyp": 4, "WRtg": rated, "WRtg_SF": w_sf, "VARtg": rated, "VARtg_SF": w_sf,
                "VArRtgQ1": var, "VArRtgQ2": var, "VArRtgQ3": -var, "VArRtgQ4": -var,
                "VArRtg_SF": w_sf, "ARtg": rated / PHASE_VOLTAGE_V / 3, "ARtg_SF": -1,
                "PFRtgQ1": 0.8, "PFRtgQ2": 0.8, "PFRtgQ3": -0.8, "PFRtgQ4": -0.8,
                "PFRtg_SF": -3}  # fmt: skip

    def _control_model(self, lim_sf: int) -> ModelSpec:
        if self.config.control == "704":
            der = {"WMaxLimPctEna": 0, "WMaxLimPct": 100.0, "WMaxLimPctRvrtTms": 0,
                   "WMaxLimPctRvrtRem": 0, "WMaxLimPct_SF": lim_sf, "PF_SF": -3, "WSet_SF": 0,
                   "WSetPct_SF": -2, "VarSet_SF": 0, "VarSetPct_SF": -2}  # fmt: skip
            return ModelSpec(704, der)
        controls = {"Conn": 1, "WMaxLimPct": 100.0, "WMaxLimPct_WinTms": 0,
                    "WMaxLimPct_RvrtTms": 0, "WMaxLimPct_RmpTms": 0, "WMaxLim_Ena": 0,
                    "OutPFSet": 1.0, "OutPFSet_Ena": 0, "VArPct_Ena": 0,
                    "WMaxLimPct_SF": lim_sf, "OutPFSet_SF": -3, "VArPct_SF": 0}  # fmt: skip
        return ModelSpec(123, controls)

    def _mppt_model(self) -> ModelSpec:
        modules = [
            {"ID": i + 1, "IDStr": f"MPPT{i + 1}", "DCA": 0, "DCV": 0, "DCW": 0, "DCWH": 0,
             "Tms": 0, "Tmp": 25, "DCSt": ST_SLEEPING, "DCEvt": 0}
            for i in range(self.mppt_inputs)
        ]  # fmt: skip
        sfs = {
            "DCA_SF": -2,
            "DCV_SF": -1,
            "DCW_SF": 0,
            "DCWH_SF": 0,
            "Evt": 0,
            "TmsPer": 0,
            "N": self.mppt_inputs,
        }
        return ModelSpec(160, sfs, {"module": modules})

    # -- controls ------------------------------------------------------------------------------

    def accept(self, changed: dict[str, Any]) -> bool:
        limit_key, _timer, enable_key, _rem = self._limit_keys
        limit = changed.get(limit_key)
        if limit is not None and not 0.0 <= limit <= 100.0:
            return False
        return changed.get(enable_key) in (None, 0, 1)

    def apply_controls(self, keys: frozenset[str], now_s: float) -> None:
        limit_key, timer_key, enable_key, _rem = self._limit_keys
        if not keys & {limit_key, timer_key, enable_key}:
            return
        st = self._state
        st.last_write_s = now_s
        st.limit_setting_pct = float(self.image.get(limit_key) or 0.0)
        st.revert_s = float(self.image.get(timer_key) or 0.0)
        st.limit_enabled = self.image.get(enable_key) == 1

    # -- physics -------------------------------------------------------------------------------

    def advance(self, env: Environment) -> None:
        cfg, st = self.config, self._state
        if st.limit_enabled and physics.timer_expired(st.last_write_s, env.now_s, st.revert_s):
            st.limit_enabled = False
            self.image.set(self._limit_keys[2], 0)  # the enable flag reads 0 from now on
        st.irradiance_w_per_m2 = env.plane_irradiance_w_per_m2(cfg.tilt_deg, cfg.azimuth_deg)
        st.dc_available_w = physics.pv_dc_power_w(st.irradiance_w_per_m2, cfg.dc_peak_w)
        st.available_w = physics.pv_available_ac_w(st.dc_available_w, cfg.rated_w)
        st.pv_w = physics.pv_limited_ac_w(st.available_w, cfg.rated_w, st.limit_pct)
        st.energy_wh += physics.energy_wh(st.pv_w, env.dt_s)
        env.pv_w += st.pv_w

    def _status(self) -> int:
        st = self._state
        if st.pv_w <= 0.0:
            return ST_SLEEPING
        return ST_THROTTLED if st.available_w > st.pv_w + 1.0 else ST_MPPT

    def publish(self) -> None:
        st, img, m = self._state, self.image, self.measurement_model
        amps = st.pv_w / PHASE_VOLTAGE_V / 3.0
        dc_w = st.pv_w / physics.INVERTER_EFFICIENCY
        dc_v = DC_VOLTAGE_V if dc_w > 0 else 0.0
        values = {"W": st.pv_w, "VA": st.pv_w, "VAr": 0.0, "PF": 100.0, "A": 3 * amps,
                  "AphA": amps, "AphB": amps, "AphC": amps, "PhVphA": PHASE_VOLTAGE_V,
                  "PhVphB": PHASE_VOLTAGE_V, "PhVphC": PHASE_VOLTAGE_V,
                  "PPVphAB": LINE_VOLTAGE_V, "PPVphBC": LINE_VOLTAGE_V,
                  "PPVphCA": LINE_VOLTAGE_V, "Hz": 50.0, "WH": round(st.energy_wh),
                  "DCW": dc_w, "DCV": dc_v, "DCA": dc_w / DC_VOLTAGE_V, "St": self._status(),
                  "TmpCab": 25.0 + 20.0 * st.pv_w / self.config.rated_w}  # fmt: skip
        for name, value in values.items():
            img.set(f"{m}.{name}", value)
        _limit, _timer, enable_key, rem_key = self._limit_keys
        img.set(enable_key, 1 if st.limit_enabled else 0)
        if rem_key is not None:
            img.set(rem_key, self._remaining_s())
        if self.mppt_inputs:
            self._publish_mppt(dc_w, dc_v)

    def _remaining_s(self) -> int:
        st, env = self._state, self._env
        if not st.limit_enabled or st.revert_s <= 0 or st.last_write_s is None or env is None:
            return 0
        return max(0, round(st.revert_s - (env.now_s - st.last_write_s)))

    def _publish_mppt(self, dc_w: float, dc_v: float) -> None:
        energy_dc_wh = self._state.energy_wh / physics.INVERTER_EFFICIENCY
        for i, share in enumerate(MPPT_SHARES, start=1):
            key = f"160.module[{i}]."
            self.image.set(key + "DCW", dc_w * share)
            self.image.set(key + "DCV", dc_v)
            self.image.set(key + "DCA", dc_w * share / DC_VOLTAGE_V)
            self.image.set(key + "DCWH", round(energy_dc_wh * share))
            self.image.set(key + "DCSt", ST_MPPT if dc_w > 0 else ST_SLEEPING)
