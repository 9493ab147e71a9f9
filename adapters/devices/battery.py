"""SunSpec battery: 103 + 120 + 124 (``control = "124"``) or 701 + 702 + 704 + 802 ("802")."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.devices.base import register_driver
from adapters.devices.pv import MEASURE_IDS, OVER_RATING
from adapters.devices.sunspec import Models, Role, SunSpecDriver, Variant
from adapters.snapshot import BatteryReading
from vpp.core.site import DeviceKind

#: StorCtl_Mod bits (model 124): bit 0 CHARGE, bit 1 DISCHARGE.
CHARGE_BIT = 1
DISCHARGE_BIT = 2
#: Both bits: the window [-InWRte, OutWRte] bounds the battery's power from both sides.
WINDOW_MODE = CHARGE_BIT | DISCHARGE_BIT


def window_124(mode: int | None, out_pct: float, in_pct: float) -> tuple[float, float] | None:
    """The power window model 124 sets, [% of ``WChaMax``, > 0 discharging] (DEVICES.md).

    The CHARGE bit bounds charging by ``InWRte`` (a negative rate forces a discharge of at
    least its size), the DISCHARGE bit bounds discharging by ``OutWRte`` (a negative rate
    forces a charge); a direction without its bit is bounded by the device alone (100 %).
    Inside the window the device runs its own control. None: neither bit, the device's own
    mode.
    """
    if not mode:
        return None
    low = -in_pct if mode & CHARGE_BIT else -100.0
    high = out_pct if mode & DISCHARGE_BIT else 100.0
    return low, high


def point_124(mode: int | None, out_pct: float, in_pct: float) -> float | None:
    """The power [% of ``WChaMax``] a window of zero width holds the device at; None when
    the window leaves the device room (or the device is in its own mode)."""
    window = window_124(mode, out_pct, in_pct)
    if window is None or abs(window[1] - window[0]) > 1e-9:
        return None
    return window[1]


VARIANTS = {
    "124": Variant(
        "124",
        (
            Role("measure", MEASURE_IDS),
            Role("rating", (120,), required=False, static=True),
            Role("storage", (124,)),
        ),
    ),
    "802": Variant(
        "802",
        (
            Role("measure", (701,)),
            Role("rating", (702,), required=False, static=True),
            Role("control", (704,), required=False),
            Role("battery", (802,)),
        ),
    ),
}


@register_driver(DeviceKind.BATTERY, "sunspec")
class BatteryDriver(SunSpecDriver):
    """Home battery. Reading: SoC [%], AC power [W] > 0 discharging, capacity [Wh], maximum
    charge and discharge power [W], state, and the active setpoint [W] if any."""

    def variants(self) -> Sequence[Variant]:
        # The configured control first; a device that has only the other still reads.
        first = VARIANTS[self.device.control]
        return (first, *(v for v in VARIANTS.values() if v is not first))

    def _limit_w(self, models: Models, role: str, point: str, cfg: float) -> float:
        """A device power rating [W] if it has one (plausible: up to 10x config), else cfg."""
        own = models.number(role, point, 0.0, 10 * cfg, "W")
        return own if own else cfg

    def normalise(self, models: Models) -> BatteryReading:
        return _NORMALISE[models.variant](self, models)

    def _power_bound_w(self, *ratings: float) -> float:
        cfg = float(max(self.device.max_charge_w, self.device.max_discharge_w))
        return OVER_RATING * max(cfg, *ratings)

    def normalise_124(self, models: Models) -> BatteryReading:
        dev = self.device
        wchamax = self._limit_w(models, "storage", "WChaMax", dev.max_charge_w)
        max_charge = self._limit_w(models, "rating", "MaxChaRte", wchamax)
        max_discharge = self._limit_w(models, "rating", "MaxDisChaRte", wchamax)
        bound = self._power_bound_w(max_charge, max_discharge)
        return BatteryReading(
            soc_pct=models.number("storage", "ChaState", 0.0, 100.0, "%", required=True),
            power_w=models.number("measure", "W", -bound, bound, "W", required=True),
            capacity_wh=self._limit_w(models, "rating", "WHRtg", dev.capacity_wh),
            max_charge_w=max_charge,
            max_discharge_w=max_discharge,
            status=models.symbol("storage", "ChaSt"),
            setpoint_w=self._setpoint_124(models, wchamax),
        )

    def _setpoint_124(self, models: Models, wchamax: float) -> float | None:
        mode = models.value("storage", "StorCtl_Mod")
        if not mode:
            return None  # the device runs its own self-consumption mode
        out_pct = models.number("storage", "OutWRte", -100.0, 100.0, "%") or 0.0
        in_pct = models.number("storage", "InWRte", -100.0, 100.0, "%") or 0.0
        point = point_124(int(mode), out_pct, in_pct)
        return None if point is None else point / 100.0 * wchamax

    def normalise_802(self, models: Models) -> BatteryReading:
        dev = self.device
        max_charge = self._limit_w(
            models,
            "battery",
            "WChaRteMax",
            self._limit_w(models, "rating", "WChaRteMaxRtg", dev.max_charge_w),
        )
        max_discharge = self._limit_w(
            models,
            "battery",
            "WDisChaRteMax",
            self._limit_w(models, "rating", "WDisChaRteMaxRtg", dev.max_discharge_w),
        )
        bound = self._power_bound_w(max_charge, max_discharge)
        setpoint = None
        if models.value("control", "WSetEna") == 1 and models.value("control", "WSetMod") == 1:
            setpoint = models.number("control", "WSet", -bound, bound, "W")
        return BatteryReading(
            soc_pct=models.number("battery", "SoC", 0.0, 100.0, "%", required=True),
            power_w=models.number("measure", "W", -bound, bound, "W", required=True),
            capacity_wh=self._limit_w(models, "battery", "WHRtg", dev.capacity_wh),
            max_charge_w=max_charge,
            max_discharge_w=max_discharge,
            status=models.symbol("battery", "ChaSt"),
            setpoint_w=setpoint,
        )


_NORMALISE: dict[str, Callable[[BatteryDriver, Models], BatteryReading]] = {
    "124": BatteryDriver.normalise_124,
    "802": BatteryDriver.normalise_802,
}
