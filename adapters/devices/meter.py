"""SunSpec grid meter: models 201-204 (integer) or 211-214 (float)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.devices.base import register_driver
from adapters.devices.sunspec import Models, Role, SunSpecDriver, Variant
from adapters.snapshot import MeterReading
from vpp.core.site import DeviceKind

#: Three-phase wye first: the usual grid-connection meter.
METER_IDS = (203, 204, 202, 201, 213, 214, 212, 211)
#: No rating in the config: anything beyond this is garbage for a district connection [W].
MAX_POWER_W = 1e8
MAX_ENERGY_WH = 1e14

METER_VARIANT = Variant("meter", (Role("measure", METER_IDS),))


@register_driver(DeviceKind.METER, "sunspec")
class MeterDriver(SunSpecDriver):
    """Grid meter. Reading: power [W] > 0 importing, import and export energy [Wh]."""

    def variants(self) -> Sequence[Variant]:
        return (METER_VARIANT,)

    def normalise(self, models: Models) -> MeterReading:
        return MeterReading(
            power_w=models.number("measure", "W", -MAX_POWER_W, MAX_POWER_W, "W", required=True),
            import_energy_wh=models.number("measure", "TotWhImp", 0.0, MAX_ENERGY_WH, "Wh"),
            export_energy_wh=models.number("measure", "TotWhExp", 0.0, MAX_ENERGY_WH, "Wh"),
        )
