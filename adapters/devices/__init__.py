"""Device drivers by kind and protocol; importing the package registers all of them."""

from __future__ import annotations

from adapters.devices import battery, mapped, meter, pv
from adapters.devices.base import (
    DeviceDataError,
    Driver,
    checked,
    driver_for,
    protocol_of,
    register_driver,
    registered,
)
from adapters.devices.sunspec import (
    Layout,
    MissingPointError,
    Models,
    Role,
    SunSpecDriver,
    Variant,
    missing_reason,
)

__all__ = [
    "DeviceDataError",
    "Driver",
    "Layout",
    "MissingPointError",
    "Models",
    "Role",
    "SunSpecDriver",
    "Variant",
    "battery",
    "checked",
    "driver_for",
    "mapped",
    "meter",
    "missing_reason",
    "protocol_of",
    "pv",
    "register_driver",
    "registered",
]
