"""What each kind of device can measure and be told: one registry instead of if-chains.

Every place that needs to know about a kind (dispatch, safety, the plants, the operator page)
asks :data:`KINDS`. A setpoint is always a power in watts (``setpoint_w``); for PV it is the
cap on AC output, which the Modbus layer turns into the SunSpec percentage of the rating at
the very edge.

Readings are named by their field in :mod:`adapters.snapshot` (a string, so that this floor
imports nothing above it).
"""

from __future__ import annotations

from dataclasses import dataclass

from vpp.core.site import DeviceKind


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One device kind's capabilities.

    setpoint : name of what the controller tells the device, with its unit, or None when
        the kind takes no setpoint
    plan_column : the plan column the setpoint comes from; ``{id}`` stands for the device id
    power_reading : the reading field with the device's present AC power [W]
    confirm_reading : the reading field that shows the setpoint the device holds
    grid_effect : change of the site's grid import per W of ``power_reading`` (a battery
        discharging or PV producing lowers import: -1; a heat pump raises it: +1)
    caps_output : the setpoint is a cap on what the device produces (PV), not a power it
        runs at: the device may deliver less
    measures : the site totals the kind adds to, as (total, reading field): what the
        operator page sums per poll (``grid_w`` from the site's grid meter only)
    """

    kind: DeviceKind
    setpoint: str | None
    plan_column: str | None
    power_reading: str | None
    confirm_reading: str | None
    grid_effect: float
    caps_output: bool = False
    measures: tuple[tuple[str, str], ...] = ()

    def column(self, device_id: str) -> str | None:
        """The plan column of ``device_id``'s setpoint (None for kinds without one)."""
        return self.plan_column.format(id=device_id) if self.plan_column else None

    @property
    def controllable(self) -> bool:
        return self.setpoint is not None


KINDS: dict[DeviceKind, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            DeviceKind.BATTERY,
            setpoint="battery_w",
            plan_column="{id}.battery_w",
            power_reading="power_w",
            confirm_reading="setpoint_w",
            grid_effect=-1.0,
            measures=(("battery_w", "power_w"),),
        ),
        KindSpec(
            DeviceKind.PV,
            setpoint="pv_limit_w",
            plan_column="{id}.pv_limit_w",
            power_reading="ac_power_w",
            confirm_reading="limit_pct",
            grid_effect=-1.0,
            caps_output=True,
            measures=(("pv_w", "ac_power_w"),),
        ),
        KindSpec(
            DeviceKind.HEAT_PUMP,
            setpoint="heat_pump_el_w",
            plan_column="heat_pump_el_w",
            power_reading="el_power_w",
            confirm_reading="el_setpoint_w",
            grid_effect=1.0,
            measures=(("heat_pump_el_w", "el_power_w"), ("heat_pump_th_w", "th_power_w")),
        ),
        KindSpec(
            DeviceKind.METER,
            setpoint=None,
            plan_column=None,
            power_reading="power_w",
            confirm_reading=None,
            grid_effect=0.0,
            measures=(("grid_w", "power_w"),),
        ),
        KindSpec(
            DeviceKind.DATACENTRE,
            setpoint=None,
            plan_column=None,
            power_reading="it_power_w",
            confirm_reading=None,
            grid_effect=0.0,
            measures=(("waste_heat_th_w", "waste_heat_w"),),
        ),
    )
}


#: The device kind of each setpoint quantity ("battery_w" -> battery, ...).
BY_SETPOINT: dict[str, DeviceKind] = {
    spec.setpoint: spec.kind for spec in KINDS.values() if spec.setpoint is not None
}


def kind_of(value: str | DeviceKind) -> KindSpec:
    """The spec of a kind given by name or enum (KeyError naming it otherwise)."""
    try:
        return KINDS[DeviceKind(value)]
    except ValueError:
        raise KeyError(f"unknown device kind {value!r}") from None
