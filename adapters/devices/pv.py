"""SunSpec PV inverter: 101-103 or 111-113 measurements, 120/121 rating, 123/704 limit."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.devices.base import register_driver
from adapters.devices.sunspec import Models, Role, SunSpecDriver, Variant
from adapters.snapshot import PvReading
from vpp.core.site import DeviceKind

#: Measurement models, integer three-phase first (the most common), then the float ones.
MEASURE_IDS = (103, 102, 101, 113, 112, 111)
#: Headroom over the rating before a value counts as garbage (meters and ratings disagree).
OVER_RATING = 1.5
#: Night-time self-consumption some inverters report as negative power, share of rating.
NIGHT_DRAW = 0.1

PV_VARIANT = Variant(
    "pv",
    (
        Role("measure", MEASURE_IDS),
        Role("rating", (120, 121), required=False, static=True),
        Role("control", (123, 704), required=False),
    ),
)


@register_driver(DeviceKind.PV, "sunspec")
class PvDriver(SunSpecDriver):
    """Rooftop PV inverter. Reading: AC power >= 0 [W], lifetime energy [Wh], DC power [W],
    operating state, rated power [W] and the active limit [% of rated] (None if disabled)."""

    def variants(self) -> Sequence[Variant]:
        return (PV_VARIANT,)

    def rated_w(self, models: Models) -> float:
        """The device's own rating (120 WRtg, else 121 WMax) if it has one, else the config's."""
        cfg = float(self.device.rated_w)
        point = "WRtg" if models.value("rating", "WRtg") is not None else "WMax"
        own = models.number("rating", point, 0.0, 10 * cfg, "W")
        return own if own else cfg

    def normalise(self, models: Models) -> PvReading:
        rated = self.rated_w(models)
        ref = max(rated, float(self.device.rated_w))
        dc_ref = max(ref, float(self.device.dc_peak_w))
        ac = models.number("measure", "W", -NIGHT_DRAW * ref, OVER_RATING * ref, "W", required=True)
        dc = models.number("measure", "DCW", -NIGHT_DRAW * dc_ref, OVER_RATING * dc_ref, "W")
        return PvReading(
            ac_power_w=max(ac or 0.0, 0.0),
            energy_wh=models.number("measure", "WH", 0.0, 1e13, "Wh"),
            dc_power_w=None if dc is None else max(dc, 0.0),
            status=models.symbol("measure", "St"),
            rated_w=rated,
            limit_pct=self.limit_pct(models),
        )

    def limit_pct(self, models: Models) -> float | None:
        """Active limit from 123 (``WMaxLim_Ena``) or 704 (``WMaxLimPctEna``); None if off."""
        model = models.model("control")
        if model is None:
            return None
        enable = "WMaxLim_Ena" if model.id == 123 else "WMaxLimPctEna"
        if models.value("control", enable) != 1:
            return None
        return models.number("control", "WMaxLimPct", 0.0, 100.0, "%")
