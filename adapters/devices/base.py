"""Device drivers: the registry by kind and protocol, and plausibility checks on readings.

A driver turns one device's registers into a normalised Snapshot reading (units in names,
signs as in docs/architecture.md). Drivers register themselves with :func:`register_driver` under
a device kind and a protocol ("sunspec", or "regmap" for devices with a register map), and
:func:`driver_for` picks one for a configured device: no chain of ifs over kinds.

A value that cannot be true (state of charge of 300 %, a 5 kW inverter making 2 GW, NaN where
a number is needed) raises :class:`DeviceDataError` naming device and point: the poll of that
device fails and its circuit breaker counts it, the rest of the fleet is not affected.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from adapters.bridge import DeviceLink
from adapters.snapshot import Reading

DriverT = TypeVar("DriverT", bound="Driver")

_REGISTRY: dict[tuple[str, str], type[Driver]] = {}


class DeviceDataError(ValueError):
    """A device answered, but with values that cannot be used (garbage, missing, misfit)."""


class Driver(ABC):
    """Reads one device into a Snapshot reading; keeps what it learned about the device.

    ``device`` is the device's config (``vpp.core.site`` device model), ``link`` its registers.
    """

    kind: ClassVar[str]
    protocol: ClassVar[str]

    def __init__(self, device: Any, link: DeviceLink) -> None:
        self.device = device
        self.link = link
        #: The device's id, named in every message (kept: it is read several times a poll).
        self.device_id = str(device.id)

    @abstractmethod
    async def read(self) -> Reading:
        """Read and normalise the device; raises CommsError, DeviceDataError or SunSpecError."""

    def forget(self) -> None:
        """Drop what was learned about the device (called after a failure: it may have been
        replaced or reconfigured while it was away). Drivers without a cache keep nothing."""
        return None


def register_driver(kind: str, protocol: str) -> Callable[[type[DriverT]], type[DriverT]]:
    """Class decorator: ``cls`` drives devices of ``kind`` spoken to over ``protocol``."""

    def add(cls: type[DriverT]) -> type[DriverT]:
        key = (str(kind), protocol)
        if key in _REGISTRY:
            raise ValueError(f"a driver for {key} is registered already: {_REGISTRY[key]}")
        cls.kind, cls.protocol = str(kind), protocol
        _REGISTRY[key] = cls
        return cls

    return add


def protocol_of(device: Any) -> str:
    """ "regmap" for a device configured with a register map, else "sunspec"."""
    return "regmap" if getattr(device, "register_map", None) else "sunspec"


def driver_for(device: Any, link: DeviceLink) -> Driver:
    """A new driver for ``device`` (a ``vpp.core.site`` device) talking through ``link``."""
    key = (str(device.kind), protocol_of(device))
    try:
        cls = _REGISTRY[key]
    except KeyError:
        raise LookupError(
            f"{device.id}: no driver for kind {key[0]!r} over {key[1]!r} "
            f"(known: {sorted(_REGISTRY)})"
        ) from None
    return cls(device, link)


def registered() -> list[tuple[str, str]]:
    """(kind, protocol) of every registered driver."""
    return sorted(_REGISTRY)


def plausible(value: Any, lo: float, hi: float) -> float | None:
    """``value`` as a float if it is a finite number (not a bool) in ``lo..hi``, else None:
    the values :func:`checked` lets through, without naming anything (no string is built
    on the way of a good value)."""
    cls = value.__class__
    if (cls is float or cls is int) and lo <= value <= hi and math.isfinite(value):
        return float(value)
    return None


def checked(
    device_id: str,
    point: str,
    value: Any,
    lo: float,
    hi: float,
    unit: str,
    *,
    required: bool = False,
) -> float | None:
    """``value`` as a float if it lies in ``lo..hi``; None if absent and not ``required``.

    Raises DeviceDataError naming device and point for NaN, infinities, values outside the
    range, and a missing value that is required.
    """
    good = plausible(value, lo, hi)
    if good is not None:
        return good  # the usual case, decided before any of the checks below
    if value is None:
        if required:
            raise DeviceDataError(f"{device_id}: {point} is not available (needed)")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceDataError(f"{device_id}: {point} = {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise DeviceDataError(f"{device_id}: {point} = {number} is not a finite number")
    if not lo <= number <= hi:
        raise DeviceDataError(
            f"{device_id}: {point} = {number:g} {unit} outside the plausible "
            f"{lo:g}..{hi:g} {unit} (garbage from the device?)"
        )
    return number
