"""Devices with a declarative register map (``adapters/maps/*.toml``): heat pump, data centre.

The map's channel names are the reading's field names (``el_power_w`` -> ``el_power_w``), so
one driver serves every mapped kind; a kind only adds its reading type and plausible ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, ClassVar

from adapters.bridge import DeviceLink
from adapters.devices.base import Driver, checked, register_driver
from adapters.regmap import RegisterMap, load_map
from adapters.snapshot import DatacentreReading, HeatPumpReading, Reading
from vpp.core.site import DeviceKind

#: Plausible range of a channel for a device config: (lo, hi, unit).
Bounds = Callable[[Any], tuple[float, float, str]]
TEMP_BOUNDS: Bounds = lambda _d: (-50.0, 150.0, "degC")  # noqa: E731
#: Heat out per electric watt in: no heat pump reaches a COP of 10.
MAX_COP = 10.0
#: Headroom over a rating before a value counts as garbage.
OVER_RATING = 1.5
#: Largest plausible heat flow at a network's feed [W thermal].
MAX_NETWORK_TH_W = 1e9


class MappedDriver(Driver):
    """Reads every table of the device's map in the fewest requests; checks each channel."""

    reading_type: ClassVar[type[Any]]
    #: Channel -> plausible range for this device; channels not listed must be finite.
    bounds: ClassVar[Mapping[str, Bounds]]

    def __init__(self, device: Any, link: DeviceLink) -> None:
        super().__init__(device, link)
        self.map: RegisterMap = load_map(device.register_map)

    async def read_channels(self) -> dict[str, float | None]:
        """Raw channel values (scaled, engineering units) of every table of the map."""
        values: dict[str, float | None] = {}
        readers = {"holding": self.link.read, "input": self.link.read_input}
        for table, read in readers.items():
            for address, count in self.map.blocks(table):
                values.update(self.map.decode(table, address, await read(address, count)))
        return values

    async def read(self) -> Reading:
        values = await self.read_channels()
        out: dict[str, Any] = {}
        for f in fields(self.reading_type):
            bounds = self.bounds.get(f.name)
            lo, hi, unit = bounds(self.device) if bounds else (-1e15, 1e15, "")
            out[f.name] = checked(
                self.device_id, f"{self.map.name} {f.name}", values.get(f.name), lo, hi, unit
            )
        return self.convert(out)

    def convert(self, values: dict[str, Any]) -> Reading:
        """The reading from checked channel values."""
        return self.reading_type(**values)  # type: ignore[no-any-return]


@register_driver(DeviceKind.HEAT_PUMP, "regmap")
class HeatPumpDriver(MappedDriver):
    """Waste-heat pump. Reading: electric power and setpoint [W], heat output [W], source and
    supply temperatures [degC], compressor running, and the heat the network takes at the
    plant's feed [W] where the map has that meter."""

    reading_type = HeatPumpReading
    bounds: ClassVar[Mapping[str, Bounds]] = {
        "el_power_w": lambda d: (0.0, OVER_RATING * d.max_el_w, "W"),
        "el_setpoint_w": lambda d: (0.0, OVER_RATING * d.max_el_w, "W"),
        "th_power_w": lambda d: (0.0, MAX_COP * d.max_el_w, "W"),
        "source_temp_c": TEMP_BOUNDS,
        "supply_temp_c": TEMP_BOUNDS,
        "running": lambda _d: (0.0, 1.0, ""),
        # The network's heat meter: the boiler and store feed it too, so no bound from the
        # heat pump's rating; 1 GW thermal is beyond any district heating plant here.
        "network_th_w": lambda _d: (0.0, MAX_NETWORK_TH_W, "W"),
    }

    def convert(self, values: dict[str, Any]) -> Reading:
        running = values.get("running")
        return HeatPumpReading(**{**values, "running": None if running is None else running > 0})


@register_driver(DeviceKind.DATACENTRE, "regmap")
class DatacentreDriver(MappedDriver):
    """Data-centre meter. Reading: IT power [W], waste-heat temperature [degC], cooling-water
    flow [m3/h], waste heat offered [W]."""

    reading_type = DatacentreReading
    bounds: ClassVar[Mapping[str, Bounds]] = {
        "it_power_w": lambda d: (0.0, 2 * d.it_power_w, "W"),
        "waste_heat_temp_c": TEMP_BOUNDS,
        "flow_m3_per_h": lambda _d: (0.0, 1e4, "m3/h"),
        "waste_heat_w": lambda d: (0.0, 2 * d.it_power_w, "W"),
    }
